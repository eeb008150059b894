"""A worker's job host, and the in-process connection the embedded farm uses.

:class:`JobHost` runs jobs with this host's roots; it is what a worker process runs and
what ``workers.local`` in-process workers run in the admin's own process. It answers
with the jobs' own documents (an outcome, a report); whoever passes them on reads them
into records: the in-process connection here, the admin for a worker process.
"""

from __future__ import annotations

import collections
import socket
from collections.abc import Callable
from typing import Any

from twisted.internet import defer
from twisted.logger import Logger
from zope.interface import implementer

from ..context.paths import Roots
from ..janitor import KeptSnapshot, clean_work_folder, list_kept
from ..job.job import Job, build_report, fail_source
from ..observer import OneShotObserver
from ..prognosis import JobFailure
from ..reactors import IFarmReactor
from ..records import JobSpec, Outcome, Report
from .interfaces import IWorkerConnection, UnknownJob, WorkerGone

#: How many committed reports a host remembers for repeated acknowledgements.
COMMITTED_KEPT = 256


class JobHost:
    """Runs transcoder jobs on this host; keeps each until it is acknowledged."""

    log = Logger()

    def __init__(
        self,
        name: str,
        roots: Roots,
        max_jobs: int,
        reactor: IFarmReactor,
        job_factory: Callable[..., Job] = Job,
    ) -> None:
        self.name = name
        self.roots = roots
        self.max_jobs = max_jobs
        self.reactor = reactor
        self.job_factory = job_factory
        self.jobs: dict[str, Job] = {}
        #: Reports of recently committed jobs: an acknowledgement repeated after a lost
        #: connection gets the same answer instead of an error.
        self.committed: collections.OrderedDict[str, dict[str, Any]] = collections.OrderedDict()
        #: Failed jobs whose work files this host keeps for inspection, by folder
        #: (``root:/.failed/<worker>``), from the latest snapshot of each.
        self._kept_by_parent: dict[str, list[dict[str, Any]]] = {}
        self._kept_seq: dict[str, int] = {}

    def start_job(self, spec: JobSpec) -> defer.Deferred[dict[str, Any]]:
        """Start a job; fires with its outcome document (nothing moved yet)."""
        job_id = spec.job_id
        if job_id in self.jobs:
            raise ValueError(f"job {job_id} is already running on {self.name}")
        job = self.job_factory(spec, self.roots, self.name, self.reactor)
        self.jobs[job_id] = job
        self.log.debug(
            "job {job_id} started on {worker}: {relpath}",
            job_id=job_id,
            worker=self.name,
            relpath=spec.relpath,
        )
        return job.run()

    def acknowledge(
        self, job_id: str, attempt: int | None = None
    ) -> defer.Deferred[dict[str, Any]]:
        """Commit a finished job's outcome and forget the job; fires with its report.

        ``attempt`` is the fencing token: an acknowledgement for another attempt than
        the job's is refused, so files only ever move for the admin's current attempt.
        """
        if job_id in self.committed:
            return defer.succeed(self.committed[job_id])
        job = self.jobs.get(job_id)
        if job is None or job.outcome is None:
            return defer.fail(UnknownJob(job_id))
        if attempt is not None and int(job.spec.attempt) != int(attempt):
            return defer.fail(UnknownJob(f"{job_id} is attempt {job.spec.attempt}"))
        d = job.commit()

        def forget(result: Any) -> Any:
            if self.jobs.get(job_id) is job:
                del self.jobs[job_id]
            if isinstance(result, dict):
                self.committed[job_id] = result
                while len(self.committed) > COMMITTED_KEPT:
                    self.committed.popitem(last=False)
                if job.kept is not None:
                    self._note_kept(job.kept)
            return result

        return d.addBoth(forget)

    def _note_kept(self, snapshot: KeptSnapshot) -> None:
        """The failed jobs kept in one folder, unless a later snapshot of it came first."""
        if snapshot.seq <= self._kept_seq.get(snapshot.parent, -1):
            return
        self._kept_seq[snapshot.parent] = snapshot.seq
        self._kept_by_parent[snapshot.parent] = list(snapshot.entries)

    def load_kept(self) -> defer.Deferred[None]:
        """Find the failed jobs kept by this worker's earlier lives (off the reactor)."""
        from twisted.internet import threads

        def got(snapshots: list[KeptSnapshot]) -> None:
            for snapshot in snapshots:
                self._note_kept(snapshot)

        pool = self.reactor.getThreadPool()
        d = threads.deferToThreadPool(
            self.reactor, pool, list_kept, dict(self.roots.mapping), self.name
        )
        return d.addCallback(got)

    def kept_failed(self) -> list[dict[str, Any]]:
        """The failed jobs kept for inspection, oldest first in each root."""
        return [e for _parent, entries in sorted(self._kept_by_parent.items()) for e in entries]

    def describe_jobs(self, with_specs: bool = False) -> list[dict[str, Any]]:
        """Every job the host holds: running, or finished and waiting for acknowledgement."""
        rows = []
        for job_id, job in self.jobs.items():
            row: dict[str, Any] = {
                "job_id": job_id,
                "attempt": int(job.spec.attempt),
                "key": list(job.spec.key),
                "state": "running" if job.outcome is None else "finished",
                "progress": dict(job.progress),
            }
            if with_specs:
                row["spec"] = job.spec.to_wire()
            rows.append(row)
        return rows

    def outcome(self, job_id: str) -> dict[str, Any] | None:
        """A finished job's outcome (None while it runs); UnknownJob if there is no job."""
        job = self.jobs.get(job_id)
        if job is None:
            raise UnknownJob(job_id)
        return job.outcome

    def cancel_job(self, job_id: str) -> defer.Deferred[None]:
        """Kill a job and remove its work files; the source stays in incoming."""
        job = self.jobs.pop(job_id, None)
        if job is None:
            return defer.succeed(None)
        return job.abort()

    def progress(self, job_id: str) -> dict[str, Any]:
        """The job's latest progress."""
        job = self.jobs.get(job_id)
        return dict(job.progress) if job else {}

    def fail_source(self, spec: JobSpec, failure: JobFailure) -> defer.Deferred[dict[str, Any]]:
        """Move the source to failed and write a failure report for a job that died.

        Errbacks with :class:`~transcoder_admin.job.job.SourceNotFailed`, naming the
        step and the path, when that cannot be done (nothing is then left half done).
        """
        from twisted.internet import threads

        report = build_report(spec, self.name, self.reactor, failure)
        report["comment"] = "the job ended without an acknowledged outcome"
        return threads.deferToThreadPool(
            self.reactor, self.reactor.getThreadPool(), fail_source, self.roots, spec, report
        )

    def clean_job(self, spec: JobSpec) -> defer.Deferred[int]:
        """Kill a dead attempt's leftover process groups and remove its work folder."""
        from twisted.internet import threads

        if str(spec.job_id) in self.jobs:
            return defer.succeed(0)  # it is alive here: nothing to clean
        work = self.roots.local(spec.work)
        return threads.deferToThreadPool(
            self.reactor, self.reactor.getThreadPool(), clean_work_folder, work
        )

    def stop(self) -> defer.Deferred[Any]:
        """Abort every job (shutdown): processes killed, work files removed."""
        jobs = list(self.jobs)
        return defer.gatherResults([self.cancel_job(j) for j in jobs], consumeErrors=True)


@implementer(IWorkerConnection)
class InProcessWorkerConnection:
    """An :class:`IWorkerConnection` to a :class:`JobHost` in this very process."""

    def __init__(self, host: JobHost, backend: str = "ffmpeg") -> None:
        self.host = host
        #: Which jobs it takes: "ffmpeg", or "qmaster" for the Compressor backend.
        self.backend = backend
        self._disconnected: OneShotObserver[None] = OneShotObserver(host.reactor)
        self._connected = True

    @property
    def name(self) -> str:
        """The worker's name."""
        return self.host.name

    @property
    def max_jobs(self) -> int:
        """Slots of the worker."""
        return self.host.max_jobs

    def info(self) -> dict[str, Any]:
        """Basic facts about the worker."""
        return {
            "name": self.host.name,
            "host": socket.gethostname(),
            "roots": dict(self.host.roots.mapping),
            "max_jobs": self.host.max_jobs,
            "running": len(self.host.jobs),
            "state": "connected" if self._connected else "disconnected",
            "kind": "in-process",
            "backend": self.backend,
        }

    def running_jobs(self) -> list[str]:
        """Ids of the worker's jobs."""
        return list(self.host.jobs)

    def start_job(self, spec: JobSpec) -> defer.Deferred[Outcome]:
        """Start a job on the host."""
        if not self._connected:
            return defer.fail(WorkerGone(self.host.name))
        try:
            return self.host.start_job(spec).addCallback(Outcome.from_wire)
        except Exception:
            return defer.fail()

    def job_outcome(self, job_id: str, attempt: int) -> defer.Deferred[Outcome]:
        """In-process jobs never outlive their admin: there is nothing to adopt."""
        return defer.fail(WorkerGone(f"{self.host.name} has no job {job_id} to adopt"))

    def acknowledge(self, job_id: str) -> defer.Deferred[Report]:
        """Commit a finished job."""
        if not self._connected:
            return defer.fail(WorkerGone(self.host.name))
        return self.host.acknowledge(job_id).addCallback(Report.from_document)

    def job_progress(self, job_id: str) -> dict[str, Any]:
        """Progress of a job."""
        return self.host.progress(job_id)

    def cancel_job(self, job_id: str) -> defer.Deferred[None]:
        """Kill a job."""
        return self.host.cancel_job(job_id)

    def fail_source(self, spec: JobSpec, failure: JobFailure) -> defer.Deferred[Report]:
        """Move a dead job's source to failed."""
        return self.host.fail_source(spec, failure).addCallback(Report.from_document)

    def clean_job(self, spec: JobSpec) -> defer.Deferred[int]:
        """Clean a dead attempt's leftovers."""
        return self.host.clean_job(spec)

    def when_disconnected(self) -> defer.Deferred[None]:
        """Fires when :meth:`disconnect` is called."""
        return self._disconnected.when_fired()

    def disconnect(self) -> defer.Deferred[Any]:
        """Stop the worker: abort its jobs and tell whoever waits for the disconnection."""
        self._connected = False
        d = self.host.stop()
        self._disconnected.fire_if_not_fired(None)
        return d
