"""An operator's cancel of a running job: who asked, and what becomes of the source.

The job's processes are killed (the whole group) and its work files removed by the
worker's ``cancel_job``; then the source is failed with the reason "cancelled by NAME",
or, at the caller's choice, left in incoming and offered again as a new arrival (the
cancelled attempt does not count).  The caller waits for the file's end: ``ended``
fires with the task's result (a report, or the failure that ended it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from twisted.internet import defer
from twisted.python.failure import Failure

from ..prognosis import CANCELLED, JobFailure

if TYPE_CHECKING:
    from .tasks import Task

#: What becomes of a cancelled job's source: failed, or back to incoming.
THEN_FAIL = "fail"
THEN_INCOMING = "incoming"
CHOICES = (THEN_FAIL, THEN_INCOMING)


@dataclass(eq=False)
class Cancel:
    """An operator's cancel of one task."""

    by: str
    then: str = THEN_FAIL
    #: The worker's kill and clean-up of the job (None while no job runs).
    killed: defer.Deferred[None] | None = None
    ended: defer.Deferred[Any] = field(default_factory=defer.Deferred)

    def __post_init__(self) -> None:
        if self.then not in CHOICES:
            raise ValueError(f"a cancelled job's source goes to one of {', '.join(CHOICES)}")

    @property
    def requeue(self) -> bool:
        """Whether the source goes back to incoming rather than to failed."""
        return self.then == THEN_INCOMING

    def failure(self) -> JobFailure:
        """The source's failure when it is failed."""
        return JobFailure(CANCELLED, f"cancelled by {self.by}")

    def abandon(self) -> None:
        """The admin stops: stop waiting for a worker that is away to kill the job (the
        source then stays in incoming, as every running file's does at a stop)."""
        if self.killed is not None:
            self.killed.cancel()

    def end(self, result: Any) -> None:
        """The task ended: tell the caller (once) how."""
        if self.ended.called:
            return
        if isinstance(result, Failure):
            self.ended.errback(result)
        else:
            self.ended.callback(result)


def too_late(task: Task) -> str | None:
    """Why the task can no longer be cancelled, or None."""
    if task.cancel is not None:
        return f"cancelled already by {task.cancel.by}"
    if task.committing:
        return "its outcome is being committed"
    if task.stopping:
        return "the admin is stopping it"
    if task.current is None:
        return "its job has not started yet"
    return None


__all__ = ["CHOICES", "THEN_FAIL", "THEN_INCOMING", "Cancel", "too_late"]
