"""Observers: each waiter its own Deferred, fired from the event loop, failed on stop."""

from __future__ import annotations

import pytest
from twisted.internet import defer
from twisted.internet.task import Clock
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from transcoder_admin.observer import OneShotObserver, Stopped, Waiters


class OneShotObserverTests(SynchronousTestCase):
    """Something that happens once."""

    def setUp(self) -> None:
        self.clock = Clock()
        self.observer: OneShotObserver[str] = OneShotObserver(self.clock)

    def test_each_waiter_gets_the_result_from_the_event_loop_not_from_fire(self) -> None:
        """Two waiters, one fire: neither runs inside fire(); both get the result after."""
        first, second = self.observer.when_fired(), self.observer.when_fired()
        self.observer.fire("scanned")
        self.assertNoResult(first)
        self.assertNoResult(second)
        self.clock.advance(0)
        self.assertEqual(self.successResultOf(first), "scanned")
        self.assertEqual(self.successResultOf(second), "scanned")

    def test_a_waiter_that_comes_late_gets_the_result_too(self) -> None:
        """After the fact, when_fired() still answers (on the next turn)."""
        self.observer.fire("open")
        late = self.observer.when_fired()
        self.clock.advance(0)
        self.assertEqual(self.successResultOf(late), "open")

    def test_it_fires_once(self) -> None:
        """A second fire() is a bug; fire_if_not_fired() is not."""
        self.observer.fire("a")
        with pytest.raises(RuntimeError):
            self.observer.fire("b")
        self.observer.fire_if_not_fired("c")
        d = self.observer.when_fired()
        self.clock.advance(0)
        self.assertEqual(self.successResultOf(d), "a")

    def test_a_callback_that_raises_does_not_stop_the_others(self) -> None:
        """One waiter's error stays in its own Deferred."""
        broken, fine = self.observer.when_fired(), self.observer.when_fired()
        broken.addCallback(lambda _: 1 / 0)
        self.observer.fire("x")
        self.clock.advance(0)
        self.failureResultOf(broken, ZeroDivisionError)
        self.assertEqual(self.successResultOf(fine), "x")

    def test_stop_fails_every_waiter_now_and_later(self) -> None:
        """Shutdown: nobody waits forever, and the reason is said."""
        waiting = self.observer.when_fired()
        self.observer.stop("monitoring stopped")
        self.clock.advance(0)
        failure = self.failureResultOf(waiting, Stopped)
        self.assertIn("monitoring stopped", str(failure.value))
        later = self.observer.when_fired()
        self.clock.advance(0)
        self.failureResultOf(later, Stopped)

    def test_a_failure_is_delivered_as_a_failure(self) -> None:
        """fire(Failure) errbacks each waiter."""
        d = self.observer.when_fired()
        self.observer.fire(Failure(ValueError("no database")))
        self.clock.advance(0)
        self.failureResultOf(d, ValueError)

    def test_a_cancelled_waiter_is_forgotten(self) -> None:
        """Cancelling one Deferred leaves the others alone."""
        gone, kept = self.observer.when_fired(), self.observer.when_fired()
        gone.cancel()
        self.failureResultOf(gone, defer.CancelledError)
        self.observer.fire("y")
        self.clock.advance(0)
        self.assertEqual(self.successResultOf(kept), "y")


class WaitersTests(SynchronousTestCase):
    """Something that happens again and again."""

    def setUp(self) -> None:
        self.clock = Clock()
        self.waiters: Waiters[int] = Waiters(self.clock)

    def test_a_notify_wakes_those_waiting_now_and_not_later_ones(self) -> None:
        """wait() is for the next time: a waiter after notify() waits for the one after."""
        first = self.waiters.wait()
        self.waiters.notify(1)
        second = self.waiters.wait()
        self.clock.advance(0)
        self.assertEqual(self.successResultOf(first), 1)
        self.assertNoResult(second)
        self.waiters.notify(2)
        self.clock.advance(0)
        self.assertEqual(self.successResultOf(second), 2)

    def test_nothing_runs_inside_notify(self) -> None:
        """A waiter that waits again from its callback does not loop inside notify()."""
        seen: list[int] = []

        def again(value: int) -> None:
            seen.append(value)
            self.waiters.wait().addCallback(again)

        self.waiters.wait().addCallback(again)
        self.waiters.notify(1)
        self.assertEqual(seen, [])
        self.clock.advance(0)
        self.assertEqual(seen, [1])
        self.assertEqual(len(self.waiters), 1)

    def test_stop_fails_waiters_now_and_later(self) -> None:
        """Shutdown errbacks everyone with the reason."""
        waiting = self.waiters.wait()
        self.waiters.stop("transcoding stopped")
        later = self.waiters.wait()
        self.clock.advance(0)
        self.assertIn("transcoding stopped", str(self.failureResultOf(waiting, Stopped).value))
        self.failureResultOf(later, Stopped)

    def test_a_cancelled_waiter_is_forgotten(self) -> None:
        """Cancelling a wait removes it (no leak while nothing happens)."""
        d = self.waiters.wait()
        d.cancel()
        self.failureResultOf(d, defer.CancelledError)
        self.assertEqual(len(self.waiters), 0)


class CancellerTests(SynchronousTestCase):
    """A waiter's own canceller."""

    def test_cancelling_a_waiter_calls_its_canceller_and_leaves_the_others(self) -> None:
        """The caller who gives up can stop the work; others still get the result."""
        clock = Clock()
        observer: OneShotObserver[str] = OneShotObserver(clock)
        cancelled: list[object] = []
        mine = observer.when_fired(cancelled.append)
        other = observer.when_fired()
        mine.cancel()
        self.assertEqual(cancelled, [mine])
        self.failureResultOf(mine, defer.CancelledError)
        observer.fire("done")
        clock.advance(0)
        self.assertEqual(self.successResultOf(other), "done")
