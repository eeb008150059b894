"""The prognostician: what kind of failure a job met, and whether to try again.

Source problems (not media, corrupt, wrong streams) are the file's fault: trying again
gives the same answer.  System problems (timeouts, crashes, lost workers, full disks)
may go away, so the job is retried up to the profile's ``max-attempts``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

SOURCE = "source"
SYSTEM = "system"
POST_PROCESS = "post-process"
CANCELLED = "cancelled"
#: The source changed while its job ran (re-uploaded, still being written): the attempt
#: is discarded without counting, and the new file is offered as a new arrival.
CHANGED = "changed"
KINDS = (SOURCE, SYSTEM, POST_PROCESS, CANCELLED, CHANGED)


@dataclass(frozen=True)
class JobFailure:
    """Why a job failed: a kind and a reason a person understands."""

    kind: str
    reason: str
    target: str | None = None
    invalid_output: bool = False

    @property
    def retryable(self) -> bool:
        """Whether another attempt could succeed."""
        return self.kind == SYSTEM

    def to_dict(self) -> dict[str, Any]:
        """Basic types for reports and the wire."""
        return {
            "kind": self.kind,
            "reason": self.reason,
            "target": self.target,
            "invalid_output": self.invalid_output,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> JobFailure:
        """The inverse of :meth:`to_dict`."""
        return cls(
            kind=data.get("kind", SYSTEM),
            reason=data.get("reason", "unknown failure"),
            target=data.get("target"),
            invalid_output=bool(data.get("invalid_output", False)),
        )


class JobFailed(Exception):
    """Raised inside a job to end it with a :class:`JobFailure`."""

    def __init__(self, failure: JobFailure) -> None:
        super().__init__(failure.reason)
        self.failure = failure


def source_failure(reason: str, target: str | None = None) -> JobFailed:
    """A failure caused by the source file itself (not retried)."""
    return JobFailed(JobFailure(SOURCE, reason, target))


def system_failure(reason: str, target: str | None = None, invalid: bool = False) -> JobFailed:
    """A failure of the machine or the program (retried up to max-attempts)."""
    return JobFailed(JobFailure(SYSTEM, reason, target, invalid))


def missing_stream(kind: str, target_type: str, target: str) -> JobFailed:
    """The source lacks a stream the target needs."""
    return source_failure(f"no {kind} stream for {target_type} target {target!r}", target)


def source_changed(reason: str = "source changed during the job") -> JobFailed:
    """The source is no longer the file that was offered: nothing is judged."""
    return JobFailed(JobFailure(CHANGED, reason))


def decode_failure(percent: float | None) -> JobFailed:
    """The source could not be decoded through to its end."""
    where = f" at {percent:.0f}%" if percent is not None else ""
    return source_failure(f"decode error{where}")
