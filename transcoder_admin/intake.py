"""File intake bookkeeping: files held as stuck, and attempts carried to a file's next offer.

A file is *stuck* when its job could neither commit an outcome nor fail its source (the
failed folder is not writable…), or when something unexpected broke its job.  It stays in
incoming; monitoring takes it again only once it changes (its signature differs) or an
operator retries it.  A source that changed during its job is offered again as a new
arrival; the attempts it had made are carried to that offer (the discarded one does not
count).  Both records are dropped when the file is offered again or removed, and both are
bounded: the oldest entries go first past ``limit`` (a stuck file removed while the admin
did not watch it would otherwise stay forever).
"""

from __future__ import annotations

import collections
from dataclasses import dataclass
from typing import Any

from .transcoding.specs import iso

FileKey = tuple[str, str, str]

#: Most files remembered in each record.
LIMIT = 10_000


class NotStuck(LookupError):
    """The file named is not stuck (unknown, or taken again already)."""


@dataclass(frozen=True)
class StuckFile:
    """A file held in incoming, why, and since when (clock seconds)."""

    key: FileKey
    reason: str
    since: float

    def to_dict(self) -> dict[str, Any]:
        """The file as ``/api/v1/files`` lists it."""
        customer, profile, relpath = self.key
        return {
            "customer": customer,
            "profile": profile,
            "relpath": relpath,
            "state": "stuck",
            "reason": self.reason,
            "since": iso(self.since),
        }


class Intake:
    """What the admin remembers of files between their offers (bounded)."""

    def __init__(self, clock: Any, limit: int = LIMIT) -> None:
        self.clock = clock
        self.limit = limit
        self._stuck: collections.OrderedDict[FileKey, StuckFile] = collections.OrderedDict()
        self._carried: collections.OrderedDict[FileKey, int] = collections.OrderedDict()

    def hold(self, key: FileKey, reason: str) -> StuckFile:
        """Hold a file as stuck, with the reason."""
        stuck = StuckFile(key, reason, self.clock.seconds())
        self._stuck.pop(key, None)
        self._stuck[key] = stuck
        while len(self._stuck) > self.limit:
            self._stuck.popitem(last=False)
        return stuck

    def carry(self, key: FileKey, attempts: int) -> None:
        """The file's next offer starts after ``attempts`` attempts already made."""
        self._carried.pop(key, None)
        self._carried[key] = attempts
        while len(self._carried) > self.limit:
            self._carried.popitem(last=False)

    def offered(self, key: FileKey) -> int:
        """The file is offered again: no longer stuck; the attempts carried to it (or 0)."""
        self._stuck.pop(key, None)
        return self._carried.pop(key, 0)

    def removed(self, key: FileKey) -> None:
        """The file left incoming: forget it."""
        self._stuck.pop(key, None)
        self._carried.pop(key, None)

    def retry(self, key: FileKey) -> StuckFile:
        """An operator retries a stuck file: no longer held; NotStuck if it was not."""
        stuck = self._stuck.pop(key, None)
        if stuck is None:
            raise NotStuck(f"{'/'.join(key)} is not stuck")
        return stuck

    def stuck(self) -> list[StuckFile]:
        """The stuck files, oldest first."""
        return list(self._stuck.values())

    def stuck_count(self) -> int:
        """How many files are stuck."""
        return len(self._stuck)

    def is_stuck(self, key: FileKey) -> bool:
        """Whether the file is held as stuck."""
        return key in self._stuck


__all__ = ["Intake", "NotStuck", "StuckFile"]
