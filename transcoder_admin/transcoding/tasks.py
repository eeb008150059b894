"""One file's transcoding task: its current attempt, job and worker."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from twisted.internet.interfaces import IReactorTime

from ..records import JobSpec
from ..scheduler import QueueItem
from ..times import iso
from ..worker.interfaces import IWorkerConnection
from .cancel import Cancel

#: A job's progress while nothing is known of it (not started, between programs, a
#: post-process running): every field the API promises, null.
UNKNOWN_PROGRESS = {"percent": None, "speed": None, "eta": None, "target": None}


def new_job_id(clock: IReactorTime) -> str:
    """A sortable, unique job id: UTC time plus random hex."""
    stamp = datetime.fromtimestamp(clock.seconds(), UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"{stamp}-{uuid.uuid4().hex[:10]}"


@dataclass
class Task:
    """One file's transcoding: its current attempt and worker."""

    item: QueueItem
    job_id: str = ""
    attempt: int = 0
    worker: str | None = None
    started_at: float = 0.0
    #: The current attempt's spec, once built.
    current: JobSpec | None = None
    stopping: bool = False
    #: An operator's cancel, once asked for.
    cancel: Cancel | None = None
    #: The outcome is being committed (files moving): too late to cancel.
    committing: bool = False

    @property
    def spec(self) -> JobSpec:
        """The current attempt's spec (built once a worker is picked for it)."""
        if self.current is None:
            raise LookupError(f"no job is built yet for {self.item.relpath}")
        return self.current

    def describe(self, worker: IWorkerConnection | None) -> dict[str, Any]:
        """The task as the API lists it, with its job's progress from ``worker``."""
        return {
            "job_id": self.job_id,
            "customer": self.item.customer,
            "profile": self.item.profile,
            "relpath": self.item.relpath,
            "worker": self.worker,
            "attempt": self.attempt,
            "started": iso(self.started_at),
            "progress": {
                **UNKNOWN_PROGRESS,
                **(worker.job_progress(self.job_id) if worker and self.job_id else {}),
            },
            "cancelled_by": self.cancel.by if self.cancel is not None else None,
        }
