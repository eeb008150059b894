"""The stability rule: a file is complete when its signature (device, inode, size, mtime)
stayed the same for ``stable-for`` seconds and no process on this host has it open for
writing.

Pure logic on an injected clock; fed with scan results, it says which files became
complete and which vanished.  A file handed to a job is remembered until the job
ends; scans that started before the job ended are ignored for it, so a file just
moved to *done* is never taken twice, and the record is dropped once the file is gone.

A scan may cover only part of the folder (its scope): then only files inside the scope
can be judged gone, and the work is proportional to what was examined, not to the
folder.  Files still waiting to become stable are kept in a set of their own, so that
every scan can re-check them cheaply.

Entries the scan refused (links) are remembered with their reason until they disappear
or become an acceptable file, so that each is reported once, not on every scan.
"""

from __future__ import annotations

from collections.abc import Mapping, Set
from dataclasses import dataclass, field

from twisted.internet.interfaces import IReactorTime

from .scanner import Refusal, Scope, Signature

# Clocks add up float seconds: a re-check timer set for "changed_at + stable_for" may
# fire a rounding error early, which must not cost another stable-for.
SLACK = 1e-6
#: The least time between two looks at a file that a process still has open for writing.
BUSY_RECHECK = 1.0

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
    busy: bool = False  # stable, but a process on this host still has it open for writing


@dataclass(slots=True)
class Ignored:
    """An entry that is not taken, why, and since when."""

    relpath: str
    reason: str
    since: float


@dataclass
class Changes:
    """The outcome of one scan: files now complete, files gone, next re-check time."""

    complete: list[Tracked] = field(default_factory=list)
    removed: list[Tracked] = field(default_factory=list)
    next_check: float | None = None
    refused: list[Ignored] = field(default_factory=list)  # newly refused entries

    def check_at(self, when: float) -> None:
        """Ask for a re-check at ``when`` (the earliest asked for wins)."""
        if self.next_check is None or when < self.next_check:
            self.next_check = when


class StabilityTracker:
    """Tracks the files of one incoming folder between scans."""

    def __init__(self, stable_for: float, clock: IReactorTime) -> None:
        self.stable_for = stable_for
        self.clock = clock
        self.files: dict[str, Tracked] = {}
        self._pending: dict[str, None] = {}  # an ordered set
        self.refused: dict[str, Ignored] = {}  # entries not taken, by path
        self._scans = 0

    def begin_scan(self) -> int:
        """A token for a scan about to start; pass it to :meth:`update` with its result."""
        self._scans += 1
        return self._scans

    def update(
        self,
        token: int,
        found: dict[str, Signature],
        scope: Scope | None = None,
        *,
        refused: Mapping[str, Refusal] | None = None,
        quiet: Set[str] | None = None,
        busy: Set[str] = frozenset(),
        arrived: Set[str] = frozenset(),
    ) -> Changes:
        """Apply one scan's result; ``scope`` None means the scan covered the whole folder.

        ``quiet`` are the files the scan found no writer for (see :meth:`due`); None
        means that no such check is made and the timing rule alone decides.  A file that
        is due but not quiet stays pending: soon re-checked when it was not looked at,
        after a while when it was found open for writing (``busy``).  Files that
        ``arrived`` by a rename are due at once (this scan's stat confirms them).
        """
        now = self.clock.seconds()
        changes = Changes()
        if refused:
            found = self._refuse(found, refused, changes, now)
        if self.refused:
            for relpath in found:
                self.refused.pop(relpath, None)  # an acceptable file now
            self._forget_refusals(scope, refused or {})
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
                record.busy = False
            if record.state == PENDING:
                if now - record.changed_at < self.stable_for - SLACK and relpath not in arrived:
                    changes.check_at(record.changed_at + self.stable_for)
                elif quiet is None or relpath in quiet:
                    record.state = TAKEN
                    record.busy = False
                    pending.pop(relpath, None)
                    changes.complete.append(record)
                else:
                    record.busy = relpath in busy
                    wait = max(self.stable_for, BUSY_RECHECK) if record.busy else 0.0
                    changes.check_at(now + wait)
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

    def _refuse(
        self,
        found: dict[str, Signature],
        refused: Mapping[str, Refusal],
        changes: Changes,
        now: float,
    ) -> dict[str, Signature]:
        """Record refused entries (reporting new ones); returns ``found`` plus the tolerated.

        A file already handed to a job keeps its place when it gains hard links but is
        otherwise the same file: its job may have linked it into its work folder.
        """
        tolerated: dict[str, Signature] = {}
        for relpath, refusal in refused.items():
            record = self.files.get(relpath)
            if (
                refusal.sig is not None
                and record is not None
                and record.state != PENDING
                and refusal.sig == record.sig
            ):
                tolerated[relpath] = refusal.sig
                continue
            known = self.refused.get(relpath)
            if known is None or known.reason != refusal.reason:
                ignored = self.refused[relpath] = Ignored(relpath, refusal.reason, now)
                changes.refused.append(ignored)
        return {**found, **tolerated} if tolerated else found

    def _forget_refusals(self, scope: Scope | None, refused: Mapping[str, Refusal]) -> None:
        """Drop refused entries that this scan examined and no longer found refused."""
        for relpath in [
            r for r in self.refused if r not in refused and (scope is None or scope.covers(r))
        ]:
            del self.refused[relpath]

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

    def due(self) -> dict[str, Signature]:
        """Pending files that waited long enough: the next scan checks them for writers."""
        now = self.clock.seconds() + SLACK
        files, wait = self.files, self.stable_for
        return {
            relpath: record.sig
            for relpath in self._pending
            if (record := files[relpath]).changed_at + wait <= now
        }

    def ignored(self) -> list[Ignored]:
        """Entries not taken, with their reasons."""
        return list(self.refused.values())

    def pending_paths(self) -> set[str]:
        """Paths of the files seen but not yet complete (a copy)."""
        return set(self._pending)
