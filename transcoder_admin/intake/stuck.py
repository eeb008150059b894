"""File intake bookkeeping: files held as stuck, and attempts carried to a file's next offer.

A file is *stuck* when its job could neither commit an outcome nor fail its source (the
failed folder is not writable…), or when something unexpected broke its job.  It stays in
incoming; monitoring takes it again only once it changes (its signature differs) or an
operator retries it.  A source that changed during its job is offered again as a new
arrival; the attempts it had made are carried to that offer (the discarded one does not
count).  Both records are dropped when the file is offered again or removed, and both are
bounded: the oldest entries go first past ``limit``.  Monitoring says nothing of a file
whose job ended, so :class:`RemovalCheck` looks for stuck files removed by hand at every
poll (in a thread).
"""

from __future__ import annotations

import collections
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from twisted.internet import defer, task, threads
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger

from ..errors import NotStuck
from ..reactors import IFarmReactor
from ..times import iso

FileKey = tuple[str, str, str]

#: Most files remembered in each record.
LIMIT = 10_000


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

    def __init__(self, clock: IReactorTime, limit: int = LIMIT) -> None:
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


class RemovalCheck:
    """Forgets the stuck files that are no longer in incoming, every ``interval`` seconds."""

    log = Logger()

    def __init__(
        self, intake: Intake, locate: Callable[[FileKey], str | None], reactor: IFarmReactor
    ) -> None:
        self.intake = intake
        self.locate = locate  # a stuck file's local path; None: its profile is gone
        self.reactor = reactor
        self._loop: task.LoopingCall | None = None

    def start(self, interval: float) -> None:
        """Check at every ``interval`` (the poll interval)."""
        self._loop = task.LoopingCall(self.check)
        self._loop.clock = self.reactor
        self._loop.start(interval, now=False)

    def stop(self) -> None:
        """Check no more."""
        if self._loop is not None and self._loop.running:
            self._loop.stop()

    def paths(self) -> dict[FileKey, str]:
        """Each stuck file's local path; files of profiles gone are forgotten."""
        paths = {}
        for stuck in self.intake.stuck():
            path = self.locate(stuck.key)
            if path is None:
                self.intake.removed(stuck.key)  # nobody watches its folder any more
            else:
                paths[stuck.key] = path
        return paths

    def check(self) -> defer.Deferred[None] | None:
        """Forget the stuck files that are gone (the stat calls in a thread)."""
        paths = self.paths()
        if not paths:
            return None
        pool = self.reactor.getThreadPool()
        d = threads.deferToThreadPool(self.reactor, pool, gone_paths, paths)

        def forget(gone: list[FileKey]) -> None:
            for key in gone:
                self.intake.removed(key)

        done = d.addCallback(forget)
        done.addErrback(lambda f: self.log.failure("cannot check the stuck files", f))
        return done


def gone_paths(paths: dict[FileKey, str]) -> list[FileKey]:
    """The keys whose path no longer exists (blocking: run it in a thread)."""
    return [key for key, path in paths.items() if not os.path.lexists(path)]


__all__ = ["Intake", "NotStuck", "RemovalCheck", "StuckFile", "gone_paths"]
