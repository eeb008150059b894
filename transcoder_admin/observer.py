"""Waiting for something, each caller with its own Deferred (CONVENTIONS.md 8).

Two shapes cover every "wait until X" of the farm:

- :class:`OneShotObserver`: X happens once (the first scan is done, a connection is
  lost, a database is open); callers after that get the result at once.
- :class:`Waiters`: X happens again and again (a slot frees up, a worker's state
  changes); each caller waits for the next time.

Results are delivered from the event loop (``clock.callLater(0)``), never from inside
the call that fired them, so a waiter's callbacks cannot re-enter the code that fired.
On shutdown :meth:`stop` errbacks every waiter with the reason, and every later wait
fails the same way: nobody waits forever on a part that is gone.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, TypeVar

from twisted.internet import defer
from twisted.internet.interfaces import IReactorTime
from twisted.python.failure import Failure

T = TypeVar("T")


class Stopped(Exception):
    """What a waiter gets when the part it waits on stops."""


class _Deliveries:
    """Deferreds to fire later from the event loop, with one result each."""

    def __init__(self, clock: IReactorTime) -> None:
        self.clock = clock

    def deliver(self, waiting: list[defer.Deferred[Any]], result: Any) -> None:
        if waiting:
            self.clock.callLater(0, _fire_all, waiting, result)


def _fire_all(waiting: list[defer.Deferred[Any]], result: Any) -> None:
    for d in waiting:
        if d.called:  # cancelled by its caller meanwhile
            continue
        if isinstance(result, Failure):
            d.errback(result)
        else:
            d.callback(result)


class OneShotObserver(Generic[T]):
    """Something that happens once; :meth:`when_fired` gives each caller its Deferred."""

    def __init__(self, clock: IReactorTime) -> None:
        self._deliveries = _Deliveries(clock)
        self._waiting: list[defer.Deferred[T]] = []
        self._result: T | Failure | None = None
        self._fired = False

    @property
    def fired(self) -> bool:
        """Whether it happened (or the observer stopped)."""
        return self._fired

    def when_fired(
        self, canceller: Callable[[defer.Deferred[T]], None] | None = None
    ) -> defer.Deferred[T]:
        """A new Deferred that fires with the result (on the next turn if it is known).

        Cancelling it forgets it, then calls ``canceller`` (say, to cancel the work).
        """

        def cancel(d: defer.Deferred[T]) -> None:
            self._forget(d)
            if canceller is not None:
                canceller(d)

        d: defer.Deferred[T] = defer.Deferred(cancel)
        if self._fired:
            self._deliveries.deliver([d], self._result)
        else:
            self._waiting.append(d)
        return d

    def fire(self, result: T | Failure) -> None:
        """It happened: every waiter, now and later, gets ``result``; only once."""
        if self._fired:
            raise RuntimeError("a one-shot observer fires only once")
        self.fire_if_not_fired(result)

    def fire_if_not_fired(self, result: T | Failure) -> None:
        """Like :meth:`fire`, but a second call does nothing."""
        if self._fired:
            return
        self._fired, self._result = True, result
        waiting, self._waiting = self._waiting, []
        self._deliveries.deliver(list(waiting), result)

    def stop(self, reason: str) -> None:
        """The part is going away: waiters (now and later) fail with :class:`Stopped`."""
        self.fire_if_not_fired(Failure(Stopped(reason)))

    def _forget(self, d: defer.Deferred[Any]) -> None:
        if d in self._waiting:
            self._waiting.remove(d)


class Waiters(Generic[T]):
    """Something that happens again and again; :meth:`wait` waits for the next time."""

    def __init__(self, clock: IReactorTime) -> None:
        self._deliveries = _Deliveries(clock)
        self._waiting: list[defer.Deferred[T]] = []
        self._stopped: Failure | None = None

    def __len__(self) -> int:
        return len(self._waiting)

    def wait(self) -> defer.Deferred[T]:
        """A new Deferred that fires the next time :meth:`notify` is called."""
        d: defer.Deferred[T] = defer.Deferred(self._forget)
        if self._stopped is not None:
            self._deliveries.deliver([d], self._stopped)
        else:
            self._waiting.append(d)
        return d

    def notify(self, value: T) -> None:
        """It happened: everyone waiting now gets ``value`` (from the event loop)."""
        waiting, self._waiting = self._waiting, []
        self._deliveries.deliver(list(waiting), value)

    def stop(self, reason: str) -> None:
        """The part is going away: waiters (now and later) fail with :class:`Stopped`."""
        if self._stopped is None:
            self._stopped = Failure(Stopped(reason))
        waiting, self._waiting = self._waiting, []
        self._deliveries.deliver(list(waiting), self._stopped)

    def _forget(self, d: defer.Deferred[Any]) -> None:
        if d in self._waiting:
            self._waiting.remove(d)


__all__ = ["OneShotObserver", "Stopped", "Waiters"]
