"""Values the Qmaster client passes around: command results, batches and their status."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

PROCESSING = "Processing"
WAITING = "Waiting"
POST_PROCESSING = "PostProcessing"
HOLD = "Hold"
CANCELLED = "Cancelled"
SUCCESSFUL = "Successful"
FAILED = "Failed"

RUNNING_STATES = frozenset({PROCESSING, WAITING, POST_PROCESSING, HOLD})
FINAL_STATES = frozenset({CANCELLED, SUCCESSFUL, FAILED})
STATES = RUNNING_STATES | FINAL_STATES


@dataclass(frozen=True)
class CommandResult:
    """How one run of Compressor or Batch Monitor ended, with what it printed."""

    argv: tuple[str, ...]
    stdout: str
    stderr: str
    exit_code: int | None
    signal: int | None = None
    timed_out: bool = False
    elapsed: float = 0.0

    @property
    def text(self) -> str:
        """Both streams, standard output first (answers may come on either)."""
        if self.stdout and self.stderr:
            return f"{self.stdout}\n{self.stderr}"
        return self.stdout or self.stderr

    def tail(self, limit: int = 600) -> str:
        """The end of standard error (or of standard output when stderr is empty)."""
        return (self.stderr.strip() or self.stdout.strip())[-limit:].strip()

    def how_it_ended(self) -> str:
        """'exit 3', 'killed by signal 9' or 'timed out'."""
        if self.timed_out:
            return "timed out"
        if self.exit_code is not None:
            return f"exit {self.exit_code}"
        return f"killed by signal {self.signal}"


@dataclass(frozen=True)
class BatchJob:
    """One source encoded with one Compressor setting into one destination file."""

    source: str
    setting: str
    destination: str


@dataclass(frozen=True)
class BatchRef:
    """Where a batch lives: its cluster (after any fallback) and its batch id."""

    cluster: str
    batch_id: str


@dataclass(frozen=True)
class Submission:
    """A batch Compressor accepted."""

    batch_id: str
    job_ids: tuple[str, ...]
    cluster: str
    requested_cluster: str
    batch_name: str
    priority: str
    jobs: tuple[BatchJob, ...]
    argv: tuple[str, ...] = field(default=(), repr=False)

    @property
    def ref(self) -> BatchRef:
        """The batch's cluster and id, for status, wait and cancel."""
        return BatchRef(self.cluster, self.batch_id)

    @property
    def fell_back(self) -> bool:
        """True when the requested cluster was not found and the local one took the batch."""
        return self.cluster != self.requested_cluster


@dataclass(frozen=True)
class JobStatus:
    """One ``jobStatus`` line of Batch Monitor's answer."""

    status: str
    state: str | None
    percent: float | None
    attributes: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class BatchStatus:
    """A batch's status as Batch Monitor told it.

    ``state`` is one of the canonical names (``Processing`` … ``Failed``) or None when
    the word was not one of them; ``text`` is the word as printed, trimmed.
    """

    state: str | None
    text: str
    percent: float | None = None
    jobs: tuple[JobStatus, ...] = ()
    attributes: Mapping[str, str] = field(default_factory=dict)
    raw: str = field(default="", repr=False)

    @property
    def running(self) -> bool:
        """Processing, Waiting, PostProcessing or Hold."""
        return self.state in RUNNING_STATES

    @property
    def successful(self) -> bool:
        """The batch is done and every output was written."""
        return self.state == SUCCESSFUL

    @property
    def known(self) -> bool:
        """The status word is one of the seven Batch Monitor uses."""
        return self.state in STATES


__all__ = [
    "CANCELLED",
    "FAILED",
    "FINAL_STATES",
    "HOLD",
    "POST_PROCESSING",
    "PROCESSING",
    "RUNNING_STATES",
    "STATES",
    "SUCCESSFUL",
    "WAITING",
    "BatchJob",
    "BatchRef",
    "BatchStatus",
    "CommandResult",
    "JobStatus",
    "Submission",
]
