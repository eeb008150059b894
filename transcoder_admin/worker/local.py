"""A worker's job host, and the in-process connection the embedded farm uses.

:class:`JobHost` runs jobs with this host's roots; it is what a worker process runs and
what ``workers.local`` in-process workers run in the admin's own process.
"""

from __future__ import annotations

import socket
from typing import Any

from twisted.internet import defer
from twisted.logger import Logger
from zope.interface import implementer

from ..context.paths import Roots
from ..job.runner import Job, build_report, fail_source
from ..prognosis import Failure
from .interfaces import IWorkerConnection, UnknownJob, WorkerGone


class JobHost:
    """Runs transcoder jobs on this host; keeps each until it is acknowledged."""

    log = Logger()

    def __init__(self, name: str, roots: Roots, max_jobs: int, reactor: Any) -> None:
        self.name = name
        self.roots = roots
        self.max_jobs = max_jobs
        self.reactor = reactor
        self.jobs: dict[str, Job] = {}

    def start_job(self, spec: dict[str, Any]) -> defer.Deferred[dict[str, Any]]:
        """Start a job; fires with its outcome (nothing moved yet)."""
        job_id = spec["job_id"]
        if job_id in self.jobs:
            raise ValueError(f"job {job_id} is already running on {self.name}")
        job = Job(spec, self.roots, self.name, self.reactor)
        self.jobs[job_id] = job
        self.log.debug(
            "job {job_id} started on {worker}: {relpath}",
            job_id=job_id,
            worker=self.name,
            relpath=spec["relpath"],
        )
        return job.run()

    def acknowledge(self, job_id: str) -> defer.Deferred[dict[str, Any]]:
        """Commit a finished job's outcome and forget the job."""
        job = self.jobs.get(job_id)
        if job is None or job.outcome is None:
            return defer.fail(UnknownJob(job_id))
        d = job.commit()

        def forget(result: Any) -> Any:
            self.jobs.pop(job_id, None)
            return result

        return d.addBoth(forget)

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

    def fail_source(self, spec: dict[str, Any], failure: dict[str, Any]) -> defer.Deferred[Any]:
        """Move the source to failed and write a failure report for a job that died."""
        from twisted.internet import threads

        report = build_report(spec, self.name, self.reactor, Failure.from_dict(failure))
        report["comment"] = "the job ended without an acknowledged outcome"
        return threads.deferToThreadPool(
            self.reactor, self.reactor.getThreadPool(), fail_source, self.roots, spec, report
        )

    def stop(self) -> defer.Deferred[Any]:
        """Abort every job (shutdown): processes killed, work files removed."""
        jobs = list(self.jobs)
        return defer.gatherResults([self.cancel_job(j) for j in jobs], consumeErrors=True)


@implementer(IWorkerConnection)
class InProcessWorkerConnection:
    """An :class:`IWorkerConnection` to a :class:`JobHost` in this very process."""

    def __init__(self, host: JobHost) -> None:
        self.host = host
        self._disconnected: list[defer.Deferred[None]] = []
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
        }

    def running_jobs(self) -> list[str]:
        """Ids of the worker's jobs."""
        return list(self.host.jobs)

    def start_job(self, spec: dict[str, Any]) -> defer.Deferred[dict[str, Any]]:
        """Start a job on the host."""
        if not self._connected:
            return defer.fail(WorkerGone(self.host.name))
        try:
            return self.host.start_job(spec)
        except Exception:
            return defer.fail()

    def acknowledge(self, job_id: str) -> defer.Deferred[dict[str, Any]]:
        """Commit a finished job."""
        if not self._connected:
            return defer.fail(WorkerGone(self.host.name))
        return self.host.acknowledge(job_id)

    def job_progress(self, job_id: str) -> dict[str, Any]:
        """Progress of a job."""
        return self.host.progress(job_id)

    def cancel_job(self, job_id: str) -> defer.Deferred[None]:
        """Kill a job."""
        return self.host.cancel_job(job_id)

    def fail_source(self, spec: dict[str, Any], failure: dict[str, Any]) -> defer.Deferred[Any]:
        """Move a dead job's source to failed."""
        return self.host.fail_source(spec, failure)

    def when_disconnected(self) -> defer.Deferred[None]:
        """Fires when :meth:`disconnect` is called."""
        d: defer.Deferred[None] = defer.Deferred()
        if not self._connected:
            d.callback(None)
        else:
            self._disconnected.append(d)
        return d

    def disconnect(self) -> defer.Deferred[Any]:
        """Stop the worker: abort its jobs and tell whoever waits for the disconnection."""
        self._connected = False
        d = self.host.stop()
        waiting, self._disconnected = self._disconnected, []
        for w in waiting:
            w.callback(None)
        return d
