"""The stability rule: a file is complete when its (inode, size, mtime) stayed the same
for ``stable-for`` seconds.

Pure logic on an injected clock; fed with scan results, it says which files became
complete and which vanished.  A file handed to a job is remembered until the job
ends; scans that started before the job ended are ignored for it, so a file just
moved to *done* is never taken twice, and the record is dropped once the file is gone.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .scanner import Signature

PENDING = "pending"
TAKEN = "taken"
FINISHED = "finished"


@dataclass(slots=True)
class Tracked:
    """What the tracker knows of one file."""

    relpath: str
    sig: Signature
    first_seen: float
    changed_at: float
    state: str = PENDING
    finished_scan: int = -1


@dataclass
class Changes:
    """The outcome of one scan: files now complete, files gone, next re-check time."""

    complete: list[Tracked] = field(default_factory=list)
    removed: list[Tracked] = field(default_factory=list)
    next_check: float | None = None


class StabilityTracker:
    """Tracks the files of one incoming folder between scans."""

    def __init__(self, stable_for: float, clock: Any) -> None:
        self.stable_for = stable_for
        self.clock = clock
        self.files: dict[str, Tracked] = {}
        self._scans = 0

    def begin_scan(self) -> int:
        """A token for a scan about to start; pass it to :meth:`update` with its result."""
        self._scans += 1
        return self._scans

    def update(self, token: int, found: dict[str, Signature]) -> Changes:
        """Apply one scan's result."""
        now = self.clock.seconds()
        changes = Changes()
        files = self.files
        for relpath, sig in found.items():
            record = files.get(relpath)
            if record is None or (
                record.state == FINISHED and token > record.finished_scan and sig != record.sig
            ):
                record = files[relpath] = Tracked(relpath, sig, now, now)
            elif record.state == PENDING and sig != record.sig:
                record.sig = sig
                record.changed_at = now
            if record.state == PENDING:
                if now - record.changed_at >= self.stable_for:
                    record.state = TAKEN
                    changes.complete.append(record)
                else:
                    due = record.changed_at + self.stable_for
                    if changes.next_check is None or due < changes.next_check:
                        changes.next_check = due
        if len(found) != len(files):  # files holds every found path: equal sizes, same set
            for relpath in [r for r in files if r not in found]:
                record = files[relpath]
                if record.state == FINISHED and token <= record.finished_scan:
                    continue
                del files[relpath]
                if record.state == TAKEN:
                    changes.removed.append(record)
        return changes

    def release(self, relpath: str) -> None:
        """The job for this file ended: ignore scans already under way for it."""
        record = self.files.get(relpath)
        if record is not None:
            record.state = FINISHED
            record.finished_scan = self._scans

    def forget(self, relpath: str) -> None:
        """Drop a file's record (it will be seen anew on the next scan)."""
        self.files.pop(relpath, None)

    def pending(self) -> list[Tracked]:
        """Files seen but not yet complete."""
        return [r for r in self.files.values() if r.state == PENDING]
