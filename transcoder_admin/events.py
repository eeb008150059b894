"""Events as objects: one subscription point per event (CONVENTIONS.md 7).

A subscriber that raises is logged and isolated; Deferreds subscribers return are
tracked until they fire, and their failures are logged.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, TypeVar

from twisted.internet import defer
from twisted.logger import Logger
from twisted.python.failure import Failure

T = TypeVar("T")


class Subscription:
    """A handle returned by :meth:`Event.subscribe`; call ``unsubscribe()`` to stop."""

    def __init__(self, event: Event[Any], callback: Callable[..., Any]) -> None:
        self._event = event
        self.callback = callback

    def unsubscribe(self) -> None:
        """Stop receiving the event (idempotent)."""
        self._event._subscriptions = [s for s in self._event._subscriptions if s is not self]


class Event(Generic[T]):
    """A named event; ``fire(value)`` calls every subscriber with ``value``."""

    log = Logger()

    def __init__(self, name: str) -> None:
        self.name = name
        self._subscriptions: list[Subscription] = []
        self._unsettled: set[defer.Deferred[Any]] = set()

    def subscribe(self, callback: Callable[[T], Any]) -> Subscription:
        """Call ``callback(value)`` on every firing."""
        subscription = Subscription(self, callback)
        self._subscriptions.append(subscription)
        return subscription

    def fire(self, value: T) -> None:
        """Deliver ``value`` to each subscriber, isolating failures."""
        for subscription in list(self._subscriptions):
            try:
                result = subscription.callback(value)
            except Exception:
                self.log.failure("subscriber of {event} failed", event=self.name)
                continue
            if isinstance(result, defer.Deferred):
                self._track(result)

    def _track(self, d: defer.Deferred[Any]) -> None:
        self._unsettled.add(d)

        def done(result: Any) -> None:
            self._unsettled.discard(d)
            if isinstance(result, Failure):
                self.log.failure("subscriber of {event} failed", result, event=self.name)

        d.addBoth(done)

    def __repr__(self) -> str:
        return f"<Event {self.name} ({len(self._subscriptions)} subscribers)>"
