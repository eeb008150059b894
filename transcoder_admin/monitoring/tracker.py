"""The stability rule: a file is complete when its (inode, size, mtime) stayed the same
for ``stable-for`` seconds.

Pure logic on an injected clock; fed with scan results, it says which files became
complete and which vanished.  A file handed to a job is remembered until the job
ends; scans that started before the job ended are ignored for it, so a file just
moved to *done* is never taken twice, and the record is dropped once the file is gone.

A scan may cover only part of the folder (its scope): then only files inside the scope
can be judged gone, and the work is proportional to what was examined, not to the
folder.  Files still waiting to become stable are kept in a set of their own, so that
every scan can re-check them cheaply.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .scanner import Scope, Signature

# Clocks add up float seconds: a re-check timer set for "changed_at + stable_for" may
# fire a rounding error early, which must not cost another stable-for.
SLACK = 1e-6

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
        self._pending: dict[str, None] = {}  # an ordered set
        self._scans = 0

    def begin_scan(self) -> int:
        """A token for a scan about to start; pass it to :meth:`update` with its result."""
        self._scans += 1
        return self._scans

    def update(
        self, token: int, found: dict[str, Signature], scope: Scope | None = None
    ) -> Changes:
        """Apply one scan's result; ``scope`` None means the scan covered the whole folder."""
        now = self.clock.seconds()
        changes = Changes()
        files = self.files
        pending = self._pending
        for relpath, sig in found.items():
            record = files.get(relpath)
            if record is None or (
                record.state == FINISHED and token > record.finished_scan and sig != record.sig
            ):
                record = files[relpath] = Tracked(relpath, sig, now, now)
                pending[relpath] = None
            elif record.state == PENDING and sig != record.sig:
                record.sig = sig
                record.changed_at = now
            if record.state == PENDING:
                if now - record.changed_at >= self.stable_for - SLACK:
                    record.state = TAKEN
                    pending.pop(relpath, None)
                    changes.complete.append(record)
                else:
                    due = record.changed_at + self.stable_for
                    if changes.next_check is None or due < changes.next_check:
                        changes.next_check = due
        if scope is None:
            if len(found) == len(files):
                return changes  # files holds every found path: equal sizes, same set
            gone = [r for r in files if r not in found]
        else:
            gone = [r for r in scope.paths if r in files and r not in found]
            if scope.prefixes:
                gone.extend(r for r in files if r.startswith(scope.prefixes) and r not in found)
        for relpath in gone:
            record = files.get(relpath)
            if record is None or (record.state == FINISHED and token <= record.finished_scan):
                continue
            del files[relpath]
            pending.pop(relpath, None)
            if record.state == TAKEN:
                changes.removed.append(record)
        return changes

    def release(self, relpath: str) -> None:
        """The job for this file ended: ignore scans already under way for it."""
        record = self.files.get(relpath)
        if record is not None:
            record.state = FINISHED
            record.finished_scan = self._scans
            self._pending.pop(relpath, None)

    def forget(self, relpath: str) -> None:
        """Drop a file's record (it will be seen anew on the next scan)."""
        self.files.pop(relpath, None)
        self._pending.pop(relpath, None)

    def pending(self) -> list[Tracked]:
        """Files seen but not yet complete."""
        return [self.files[r] for r in self._pending]

    def pending_paths(self) -> set[str]:
        """Paths of the files seen but not yet complete (a copy)."""
        return set(self._pending)
