"""One record per job a worker runs for this admin, and its life as a declared table.

A job is *expected* (the admin rebuilt its spec to adopt it), *starting* (the start was
sent), *running*, *finished* (the worker says so; its outcome is on its way: pushed, or
fetched after a heartbeat or a hello), *settled* (the outcome is known and is the job's
own: waiting for the admin's acknowledgement), *rejected* (the outcome was not its own:
its source is failed instead of committing it) or *committing*.  Whichever way the
outcome arrives, it takes the one path :meth:`JobRecord.settle`.  A record ends when the
job is acknowledged, cancelled, or lost.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from twisted.internet import defer
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger

from ..prognosis import JobFailure
from ..records import JobSpec, Outcome, Report, Times
from ..times import iso

EXPECTED, STARTING, RUNNING, FINISHED = "expected", "starting", "running", "finished"
SETTLED, REJECTED, COMMITTING = "settled", "rejected", "committing"
_WORKING = (EXPECTED, STARTING, RUNNING, FINISHED)

#: (state, input) → next state.  Inputs: what the admin did, or what the worker said.
TRANSITIONS: dict[tuple[str, str], str] = {
    (EXPECTED, "adopt"): RUNNING,
    (EXPECTED, "adopt finished"): FINISHED,
    (STARTING, "started"): RUNNING,
    (STARTING, "running"): RUNNING,
    **{(state, "finished"): FINISHED for state in (STARTING, RUNNING, FINISHED)},
    **{(state, "outcome"): SETTLED for state in _WORKING},
    **{(state, "foreign outcome"): REJECTED for state in _WORKING},
    (SETTLED, "acknowledge"): COMMITTING,
    (REJECTED, "acknowledge"): COMMITTING,
}

log = Logger(namespace="transcoder_admin.proxy.jobs")


@dataclass
class JobRecord:
    """What the admin knows of one job on one worker."""

    job_id: str
    attempt: int
    state: str
    #: The admin's own spec (as started, or rebuilt to adopt): outcomes are checked
    #: against it.  None for a job known only by id and attempt.
    spec: JobSpec | None = None
    #: Fires with the outcome (or fails) once; None once settled.
    waiter: defer.Deferred[Outcome] | None = None
    #: The outcome, settled and not yet acknowledged.
    outcome: Outcome | None = None
    #: The job as the worker last reported it (state, progress), while it is listed.
    reported: dict[str, Any] | None = field(default=None)

    def advance(self, event: str) -> None:
        """Take ``event`` by the table; an event the table does not know changes nothing.

        (A worker repeating news, or news arriving after the admin moved on, is expected
        on a network; it is logged, never fatal.)
        """
        following = TRANSITIONS.get((self.state, event))
        if following is None:
            log.debug(
                "job {job_id}: {event!r} while {state}: ignored",
                job_id=self.job_id,
                event=event,
                state=self.state,
            )
            return
        self.state = following

    @property
    def waiting(self) -> bool:
        """Whether the admin still waits for this job's outcome."""
        return self.waiter is not None

    def settle(self, result: Outcome, own: bool) -> None:
        """The outcome arrived (``own``: it is the job's): the one path for it."""
        waiter, self.waiter = self.waiter, None
        self.advance("outcome" if own else "foreign outcome")
        self.outcome = result
        if waiter is not None and not waiter.called:
            waiter.callback(result)

    def fail(self, error: BaseException) -> None:
        """The job is over without an outcome (lost, refused, cancelled)."""
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.called:
            waiter.errback(error)


def failure_report(
    job_id: str,
    attempt: int | None,
    spec: JobSpec | None,
    failure: JobFailure,
    worker: str,
    clock: IReactorTime,
) -> Report:
    """A report of the job's own with ``failure`` and no report file: what the admin
    keeps when a worker's answer is not the job's own.

    (Without its spec, only a test's job: its file is not known.)
    """
    return Report(
        job_id=job_id,
        attempt=attempt or 1,
        customer=spec.customer if spec else "?",
        profile=spec.profile if spec else "?",
        relpath=spec.relpath if spec else "?",
        source=spec.source if spec else None,
        outcome="failed",
        failure=failure,
        backend=spec.backend if spec else None,
        worker=worker,
        times=Times(
            detected=spec.detected if spec else None,
            queued=spec.queued if spec else None,
            finished=iso(clock.seconds()),
        ),
        comment=failure.reason,
    )
