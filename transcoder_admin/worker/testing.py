"""A scripted worker connection for tests of what uses workers (transcoding, scheduling).

:class:`ScriptedWorker` is an :class:`IWorkerConnection` whose jobs run nowhere and end
when the test says (:meth:`ScriptedWorker.finish`).  It keeps the connection's
contract, the one ``tests/unit/test_worker_connection_contract.py`` holds the real
connections to (the same suite runs against it, except for what happens on disk):
an outcome is the started job's own, a job stays listed until it is acknowledged or
cancelled, an acknowledgement answers the job's committed report (the same report when
repeated), an unknown job is :class:`UnknownJob`, a lost worker is
:class:`WorkerGone`.  Nothing moves on disk.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from twisted.internet import defer, task
from twisted.internet.interfaces import IReactorTime
from zope.interface import implementer

from ..observer import OneShotObserver
from ..prognosis import CANCELLED, CHANGED, SYSTEM, JobFailure
from ..records import JobSpec, Outcome, Report
from .interfaces import IWorkerConnection, UnknownJob, WorkerGone

#: What a scripted acknowledgement does besides committing (``ack_script``).
ACK_STEPS = ("ok", "uncommitted", "changed", "raise")


@dataclass
class ScriptedJob:
    """One job the scripted worker holds."""

    job_id: str
    attempt: int
    spec: JobSpec | None
    waiter: defer.Deferred[Outcome] = field(default_factory=defer.Deferred)
    outcome: Outcome | None = None


@implementer(IWorkerConnection)
class ScriptedWorker:
    """A worker connection whose jobs end when the test says; nothing moves on disk."""

    #: The failure of an "uncommitted" acknowledgement (the commit failed and was undone).
    uncommitted = JobFailure(SYSTEM, "cannot write the report /r/done/x.yaml: No space")
    #: The failure of a "changed" acknowledgement (the source is no longer the one offered).
    changed = JobFailure(CHANGED, "source changed during the job")

    def __init__(self, name: str, max_jobs: int = 1, clock: IReactorTime | None = None):
        self.name = name
        self.max_jobs = max_jobs
        self._clock = clock or task.Clock()
        self.jobs: dict[str, ScriptedJob] = {}
        self.committed: dict[str, Report] = {}
        #: What the worker was asked, in order (for the test's assertions).
        self.started: list[JobSpec] = []
        self.acked: list[str] = []
        self.cancelled: list[str] = []
        self.failed_sources: list[tuple[JobSpec, JobFailure]] = []
        self.cleaned: list[str] = []
        #: What each acknowledgement does, in turn (then "ok"): "uncommitted" (committed
        #: False, a system failure), "changed" (committed False, the source changed), or
        #: "raise" (the commit raised, as a worker of an earlier version does).
        self.ack_script: list[str] = []
        #: When set, fail_source errbacks with it (the failed folder is not writable).
        self.fail_source_error: Exception | None = None
        self.connected = True
        self._disconnected: OneShotObserver[None] = OneShotObserver(self._clock)

    # -- the test's controls

    def finish(self, job_id: str, failure: JobFailure | None = None, lost: bool = False) -> None:
        """End a running job: done, failed with ``failure``, or lost with its worker."""
        job = self.jobs[job_id]
        if job.outcome is not None or job.waiter.called:
            raise AssertionError(f"job {job_id} has ended already")
        if lost:
            del self.jobs[job_id]
            job.waiter.errback(WorkerGone(self.name))
            return
        job.outcome = Outcome(
            job_id=job_id,
            attempt=job.attempt,
            outcome="failed" if failure else "done",
            failure=failure,
            worker=self.name,
        )
        job.waiter.callback(job.outcome)

    def running(self) -> list[str]:
        """Ids of the jobs still running (not finished), oldest first."""
        return [j.job_id for j in self.jobs.values() if j.outcome is None]

    def disconnect(self) -> None:
        """The worker goes away: its running jobs fail with WorkerGone."""
        self.connected = False
        for job in list(self.jobs.values()):
            if not job.waiter.called:
                job.waiter.errback(WorkerGone(self.name))
        self.jobs.clear()
        self._disconnected.fire_if_not_fired(None)
        if isinstance(self._clock, task.Clock):
            self._clock.advance(0)

    # -- IWorkerConnection

    def info(self) -> dict[str, Any]:  # noqa: D102
        return {
            "name": self.name,
            "max_jobs": self.max_jobs,
            "running": len(self.jobs),
            "state": "connected" if self.connected else "disconnected",
            "kind": "scripted",
        }

    def running_jobs(self) -> list[str]:  # noqa: D102
        return list(self.jobs)

    def start_job(self, spec: JobSpec) -> defer.Deferred[Outcome]:  # noqa: D102
        if not self.connected:
            return defer.fail(WorkerGone(self.name))
        if spec.job_id in self.jobs:
            return defer.fail(ValueError(f"job {spec.job_id} is already running on {self.name}"))
        self.started.append(spec)
        job = self.jobs[spec.job_id] = ScriptedJob(spec.job_id, spec.attempt, spec)
        return job.waiter

    def job_outcome(self, job_id: str, attempt: int) -> defer.Deferred[Outcome]:
        """Adopt a job as if it ran here already; it ends through :meth:`finish`."""
        if not self.connected:
            return defer.fail(WorkerGone(self.name))
        job = self.jobs[job_id] = ScriptedJob(job_id, attempt, None)
        return job.waiter

    def acknowledge(self, job_id: str) -> defer.Deferred[Report]:  # noqa: D102
        if job_id in self.committed:
            return defer.succeed(self.committed[job_id])
        if not self.connected:
            return defer.fail(WorkerGone(self.name))
        job = self.jobs.get(job_id)
        if job is None or job.outcome is None:
            return defer.fail(UnknownJob(job_id))
        self.acked.append(job_id)
        step = self.ack_script.pop(0) if self.ack_script else "ok"
        if step not in ACK_STEPS:
            raise ValueError(f"unknown acknowledgement step {step!r}")
        if step == "raise":
            del self.jobs[job_id]  # an earlier worker forgot the job when its commit raised
            return defer.fail(RuntimeError(f"[Errno 20] Not a directory: '/r/done/{job_id}.yaml'"))
        if step != "ok":
            failure = self.uncommitted if step == "uncommitted" else self.changed
            return defer.succeed(self._report(job, failure, committed=False))
        report = self._report(job, job.outcome.failure, committed=True)
        del self.jobs[job_id]
        self.committed[job_id] = report
        return defer.succeed(report)

    def job_progress(self, job_id: str) -> dict[str, Any]:  # noqa: D102
        return {}

    def cancel_job(self, job_id: str) -> defer.Deferred[None]:
        """Forget the job; one still running ends as cancelled (as a real job does)."""
        self.cancelled.append(job_id)
        job = self.jobs.pop(job_id, None)
        if job is not None and not job.waiter.called:
            job.outcome = Outcome(
                job_id=job_id,
                attempt=job.attempt,
                outcome="failed",
                failure=JobFailure(CANCELLED, "cancelled"),
                worker=self.name,
            )
            job.waiter.callback(job.outcome)
        return defer.succeed(None)

    def fail_source(self, spec: JobSpec, failure: JobFailure) -> defer.Deferred[Report]:  # noqa: D102
        self.failed_sources.append((spec, failure))
        if self.fail_source_error is not None:
            return defer.fail(self.fail_source_error)
        job = ScriptedJob(spec.job_id, spec.attempt, spec)
        report = self._report(job, failure, committed=True)
        return defer.succeed(report)

    def clean_job(self, spec: JobSpec) -> defer.Deferred[int]:  # noqa: D102
        self.cleaned.append(spec.job_id)
        return defer.succeed(0)

    def when_disconnected(self) -> defer.Deferred[None]:  # noqa: D102
        return self._disconnected.when_fired()

    # -- reports

    def _report(self, job: ScriptedJob, failure: JobFailure | None, committed: bool) -> Report:
        """The job's report: its own file (unknown for an adopted job: ``?``)."""
        spec = job.spec
        return Report(
            job_id=job.job_id,
            attempt=job.attempt,
            outcome="failed" if failure else "done",
            failure=failure,
            customer=spec.customer if spec else "?",
            profile=spec.profile if spec else "?",
            relpath=spec.relpath if spec else "?",
            source=spec.source if spec else None,
            report_path=spec.report_path(failure is None) or None if spec else None,
            worker=self.name,
            committed=committed,
        )


__all__ = ["ACK_STEPS", "ScriptedJob", "ScriptedWorker"]
