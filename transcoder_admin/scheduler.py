"""The scheduler: the queue of complete files, ordered by priority then detection time.

Priority is customer priority × 1000 + profile priority (higher first); ties go to the
file detected first.  The scheduler starts a job whenever the transcoding part has a
free slot, unless it is paused (running jobs go on).  Emits ``profile-queued``,
``transcoding-started``, ``transcoding-failed``, ``transcoding-done``,
``transcoding-abandoned`` (shutdown, or a source that changed: the file is offered again)
and ``transcoding-stuck`` (no outcome could be committed nor the source failed, or an
unexpected error: the file stays in incoming and is not taken again until it changes).
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from twisted.internet import defer
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure

from .errors import NotQueued
from .events import Event
from .records import Report

FileKey = tuple[str, str, str]


class JobAbandoned(Exception):
    """A job was given up without an outcome (shutdown): its file stays in incoming."""


class SourceChanged(JobAbandoned):
    """The source changed during the job: the attempt is discarded, the file offered again."""


class SourceStuck(Exception):
    """Neither an outcome could be committed nor the source failed: the file is held.

    The message is the reason shown to the operator.
    """


@dataclass(eq=False)
class QueueItem:
    """A file waiting for (or in) transcoding."""

    key: FileKey
    priority: int
    detected_at: float
    queued_at: float = 0.0
    started_at: float | None = None
    seq: int = 0
    #: Attempts already made at this file (by an admin before a crash).
    attempts: int = 0
    #: Which kind of worker runs it: "ffmpeg" workers, or the "qmaster" backend.
    backend: str = "ffmpeg"
    #: The file as it was offered (``FileOffer.identity``): the job checks the source
    #: against it. None when not known (a job adopted from a worker).
    identity: dict[str, Any] | None = field(default=None, repr=False)
    removed: bool = field(default=False, repr=False)
    #: The priority was set by an operator: a profile's new priority leaves it alone.
    pinned: bool = False

    @property
    def customer(self) -> str:
        """The file's customer."""
        return self.key[0]

    @property
    def profile(self) -> str:
        """The file's profile."""
        return self.key[1]

    @property
    def relpath(self) -> str:
        """The file's path under the profile's incoming folder."""
        return self.key[2]

    def sort_key(self) -> tuple[int, float, int]:
        """Heap order: higher priority, then older, then first queued."""
        return (-self.priority, self.detected_at, self.seq)

    def __lt__(self, other: QueueItem) -> bool:
        return self.sort_key() < other.sort_key()


@dataclass(frozen=True)
class Finished:
    """A file's job ended with a report."""

    item: QueueItem
    report: Report


@dataclass(frozen=True)
class Stuck:
    """A file's job ended without a report: the file is held in incoming, with why."""

    item: QueueItem
    reason: str


class Transcoder(Protocol):
    """What the scheduler needs of the transcoding part."""

    def free_slots(self, backend: str = ...) -> int:
        """How many more jobs of that backend (all backends when not given) can start now."""

    def run(self, item: QueueItem) -> defer.Deferred[Report]:
        """Run the file's job (all attempts) and fire with its final report.

        Errbacks with JobAbandoned (shutdown; SourceChanged: offer the file again) or
        SourceStuck (hold the file); any other error also holds the file, as a bug.
        """


class Scheduler:
    """The priority queue and the dispatch loop."""

    log = Logger()

    def __init__(self, transcoder: Transcoder, clock: IReactorTime) -> None:
        self.transcoder = transcoder
        self.clock = clock
        self.profile_queued: Event[QueueItem] = Event("profile-queued")
        self.transcoding_started: Event[QueueItem] = Event("transcoding-started")
        self.transcoding_failed: Event[Finished] = Event("transcoding-failed")
        self.transcoding_done: Event[Finished] = Event("transcoding-done")
        self.transcoding_abandoned: Event[QueueItem] = Event("transcoding-abandoned")
        self.transcoding_stuck: Event[Stuck] = Event("transcoding-stuck")
        self._heap: list[QueueItem] = []
        self._queued: dict[FileKey, QueueItem] = {}
        self._running: dict[FileKey, QueueItem] = {}
        self._seq = itertools.count()
        self._jobs: set[defer.Deferred[Any]] = set()
        self.paused = False
        self.started = False
        self._dispatching = False

    # -- queue -------------------------------------------------------------------------

    def enqueue(
        self,
        key: FileKey,
        priority: int,
        detected_at: float,
        attempts: int = 0,
        backend: str = "ffmpeg",
        identity: dict[str, Any] | None = None,
    ) -> QueueItem | None:
        """Queue a complete file; None when it is already queued or running."""
        if key in self._queued or key in self._running:
            return None
        item = QueueItem(
            key,
            priority,
            detected_at,
            self.clock.seconds(),
            seq=next(self._seq),
            attempts=attempts,
            backend=backend,
            identity=identity,
        )
        self._queued[key] = item
        heapq.heappush(self._heap, item)
        self.profile_queued.fire(item)
        self.dispatch()
        return item

    def dequeue(self, key: FileKey) -> bool:
        """Remove a queued file (it vanished, or its profile went away)."""
        item = self._queued.pop(key, None)
        if item is None:
            return False
        item.removed = True
        if len(self._heap) > 64 and len(self._queued) < len(self._heap) // 2:
            self._heap = [i for i in self._heap if not i.removed]
            heapq.heapify(self._heap)
        return True

    def dequeue_where(self, customer: str, profile: str | None = None) -> int:
        """Remove every queued file of a customer (or one of its profiles)."""
        keys = [
            k for k in self._queued if k[0] == customer and (profile is None or k[1] == profile)
        ]
        for k in keys:
            self.dequeue(k)
        return len(keys)

    def reprioritize(self, customer: str, profile: str, priority: int) -> None:
        """A profile's priority changed: re-order its queued files."""
        changed = False
        for item in self._queued.values():
            if (
                item.key[:2] == (customer, profile)
                and item.priority != priority
                and not item.pinned
            ):
                item.priority = priority
                changed = True
        if changed:
            heapq.heapify(self._heap)

    def set_priority(self, key: FileKey, priority: int) -> QueueItem:
        """An operator's priority for one queued file (kept across reloads); NotQueued
        if it is not waiting in the queue."""
        item = self._queued.get(key)
        if item is None:
            raise NotQueued(f"{key[0]}/{key[1]}: {key[2]!r} is not queued")
        item.priority, item.pinned = priority, True
        heapq.heapify(self._heap)
        self.dispatch()
        return item

    def position(self, key: FileKey) -> int:
        """Where a queued file stands: 0 is dispatched next."""
        item = self._queued[key]
        return sum(1 for other in self._queued.values() if other < item)

    def queue(self, first: int | None = None) -> list[QueueItem]:
        """Queued files in dispatch order; only the ``first`` ones when given.

        The first page of a long queue costs one pass over it, not a sort.
        """
        if first is None:
            return sorted(self._queued.values())
        return heapq.nsmallest(first, self._queued.values())

    def queued_keys(self) -> list[FileKey]:
        """The queued files' keys, in no particular order (cheap: no sort)."""
        return list(self._queued)

    def queued_count(self) -> int:
        """How many files wait in the queue."""
        return len(self._queued)

    def running_count(self) -> int:
        """How many jobs run now."""
        return len(self._running)

    def running(self) -> list[QueueItem]:
        """Files whose job runs now."""
        return list(self._running.values())

    def state_of(self, key: FileKey) -> str | None:
        """``queued``, ``transcoding`` or None."""
        if key in self._running:
            return "transcoding"
        if key in self._queued:
            return "queued"
        return None

    # -- control -----------------------------------------------------------------------

    def start(self) -> None:
        """Begin dispatching."""
        self.started = True
        self.dispatch()

    def pause(self) -> None:
        """Start no new jobs; running ones continue."""
        self.paused = True

    def resume(self) -> None:
        """Start jobs again."""
        self.paused = False
        self.dispatch()

    def stop(self) -> defer.Deferred[Any]:
        """Start no new jobs; fires when every running job has ended or been abandoned."""
        self.started = False
        return defer.gatherResults(list(self._jobs), consumeErrors=True).addBoth(lambda _: None)

    # -- dispatch ----------------------------------------------------------------------

    def dispatch(self) -> None:
        """Start as many jobs as there are free slots (never re-entrant).

        Files wait in priority order; a file whose backend has no free slot lets the
        files behind it of another backend go first.
        """
        if self._dispatching:
            return
        self._dispatching = True
        skipped: list[QueueItem] = []
        full: set[str] = set()
        try:
            while self.started and not self.paused and self._heap:
                if self.transcoder.free_slots() <= 0:
                    break
                item = heapq.heappop(self._heap)
                if item.removed:
                    continue
                if item.backend in full or self.transcoder.free_slots(item.backend) <= 0:
                    full.add(item.backend)
                    skipped.append(item)
                    continue
                del self._queued[item.key]
                self._start(item)
        finally:
            for item in skipped:
                heapq.heappush(self._heap, item)
            self._dispatching = False

    def adopt(
        self,
        key: FileKey,
        priority: int,
        detected_at: float,
        run: Callable[[QueueItem], defer.Deferred[Report]],
    ) -> QueueItem | None:
        """A job for this file runs already (it outlived the previous admin): track it.

        ``run(item)`` waits for that job instead of starting one. None if the file is
        already queued or running.
        """
        if key in self._queued or key in self._running:
            return None
        item = QueueItem(key, priority, detected_at, self.clock.seconds(), seq=next(self._seq))
        self._start(item, run)
        return item

    def _start(
        self,
        item: QueueItem,
        run: Callable[[QueueItem], defer.Deferred[Report]] | None = None,
    ) -> None:
        item.started_at = self.clock.seconds()
        self._running[item.key] = item
        d = defer.maybeDeferred(run or self.transcoder.run, item)
        self.transcoding_started.fire(item)
        self._jobs.add(d)
        d.addBoth(self._finished, item, d)

    def _finished(self, result: Report | Failure, item: QueueItem, d: defer.Deferred[Any]) -> None:
        self._jobs.discard(d)
        self._running.pop(item.key, None)
        if isinstance(result, Failure):
            if result.check(JobAbandoned):
                self.transcoding_abandoned.fire(item)
            else:
                # Never "abandoned": that would offer the file again at once, without end.
                if result.check(SourceStuck):
                    reason = str(result.value)
                else:
                    self.log.failure(
                        "job for {relpath} failed unexpectedly", result, relpath=item.relpath
                    )
                    reason = f"unexpected error: {result.getErrorMessage()}"
                self.transcoding_stuck.fire(Stuck(item, reason))
        elif result.done:
            self.transcoding_done.fire(Finished(item, result))
        else:
            self.transcoding_failed.fire(Finished(item, result))
        self.dispatch()
