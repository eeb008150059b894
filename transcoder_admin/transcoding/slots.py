"""The workers a job can run on, their slots, and how many of them jobs hold.

A slot is counted the moment a job takes it and freed once, whatever happens to the
job (``take`` gives the one function that frees it).  Jobs that found no free slot wait
for the next change of capacity (a worker joins, a slot is freed).  Picking the worker
with the most free slots across many workers whose capacity changes as they come and
go is what this does; a ``DeferredSemaphore`` per worker could not pick among them.

Waiting jobs are woken in the call that changed the capacity, before the scheduler
hears of it: an attempt that is being retried gets a freed slot before a new file is
dispatched into it (an observer that fires on the next turn would let new files
overtake it).  Each waiter still has its own Deferred, and closing wakes them all.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.internet import defer

from ..events import Event
from ..worker.interfaces import IWorkerConnection


def backend_of(worker: Any) -> str:
    """Which jobs a worker runs: "ffmpeg" (every worker process) or "qmaster"."""
    return str(getattr(worker, "backend", "ffmpeg"))


class WorkerSlots:
    """Workers by name, the slots their jobs hold, and waiting for a free one.

    The free slots are counted as they change (a worker joins or leaves, a slot is
    taken or freed), per backend: the scheduler asks for them before every job it
    starts, and a farm of many workers must not be walked each time.
    """

    def __init__(self) -> None:
        self.workers: dict[str, IWorkerConnection] = {}
        self.load: dict[str, int] = {}
        self.capacity_changed: Event[int] = Event("capacity-changed")
        self._waiting: list[defer.Deferred[None]] = []
        self._by_backend: dict[str, dict[str, IWorkerConnection]] = {}
        self._free: dict[str, int] = {}  # by backend
        self._counted: dict[str, tuple[str, int]] = {}  # worker: (backend, free slots)
        self.closed = False

    def _recount(self, name: str) -> None:
        """Count worker ``name``'s free slots again (it joined, left, or its load changed)."""
        backend, room = self._counted.pop(name, ("", 0))
        if room:
            self._free[backend] -= room
        worker = self.workers.get(name)
        if worker is not None:
            backend = backend_of(worker)
            room = max(0, worker.max_jobs - self.load.get(name, 0))
            self._counted[name] = (backend, room)
            self._free[backend] = self._free.get(backend, 0) + room

    def add(self, conn: IWorkerConnection) -> None:
        """A worker joined: its slots become available."""
        old = self.workers.get(conn.name)
        if old is not None:
            self._by_backend[backend_of(old)].pop(conn.name, None)
        self.workers[conn.name] = conn
        self._by_backend.setdefault(backend_of(conn), {})[conn.name] = conn
        self.load.setdefault(conn.name, 0)
        self._recount(conn.name)
        self.changed()

    def remove(self, name: str) -> None:
        """A worker left (for now): it gets no more jobs; its running ones go on."""
        worker = self.workers.pop(name, None)
        if worker is not None:
            self._by_backend[backend_of(worker)].pop(name, None)
            self._recount(name)
            self.changed()

    def capacity(self) -> int:
        """Sum of every worker's slots."""
        return sum(w.max_jobs for w in self.workers.values())

    def free(self, backend: str | None = None) -> int:
        """Slots not taken by a running job (of workers of one backend, when given)."""
        if self.closed:
            return 0
        if backend is None:
            return sum(self._free.values())
        return self._free.get(backend, 0)

    def pick(self, backend: str = "ffmpeg") -> IWorkerConnection | None:
        """The worker of ``backend`` with the most free slots (ties: least loaded, name)."""
        best: IWorkerConnection | None = None
        best_key: tuple[int, int, str] | None = None
        load = self.load
        for name, worker in self._by_backend.get(backend, {}).items():
            taken = load.get(name, 0)
            free = worker.max_jobs - taken
            if free <= 0:
                continue
            key = (-free, taken, name)
            if best_key is None or key < best_key:
                best, best_key = worker, key
        return best

    def take(self, name: str) -> Callable[[], None]:
        """Count a slot of worker ``name`` as taken; the function returned frees it, once."""
        self.load[name] = self.load.get(name, 0) + 1
        self._recount(name)
        held = [True]

        def release() -> None:
            if not held[0]:
                return
            held[0] = False
            if name in self.load:
                self.load[name] -= 1
                self._recount(name)
                self.changed()

        return release

    def wait(self) -> defer.Deferred[None]:
        """Fires at the next change of capacity (closing is one)."""
        d: defer.Deferred[None] = defer.Deferred(self._waiting.remove)
        self._waiting.append(d)
        return d

    def changed(self) -> None:
        """Capacity changed: wake those waiting, then tell the subscribers."""
        waiting, self._waiting = self._waiting, []
        for d in waiting:
            d.callback(None)
        self.capacity_changed.fire(self.free())

    def close(self) -> None:
        """Shutdown: no slot is free any more; those waiting are woken to see it."""
        self.closed = True
        self.changed()
