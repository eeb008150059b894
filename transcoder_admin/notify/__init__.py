"""The notifier: tells customers and operators what happened (DESIGN.md 8).

It hangs off the core's public events: a finished file's notifications are rendered,
written down (``store.py``) and then delivered, each on its own (``http.py``, ``mail.py``,
``sql.py``), so a slow or dead endpoint never delays jobs or other endpoints.  A failed
attempt is tried again after a growing, jittered delay while it may still succeed; one
that gives up is ``failed``, listed by the API, can be retried, and is mailed to the
emergency recipients (``admin.py``: admin mails, rate-limited).
"""

from __future__ import annotations

import collections
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from twisted.internet import defer, threads
from twisted.logger import Logger
from twisted.python.failure import Failure

from ..config.notify import NotificationsSection
from ..logs import printable
from ..reactors import IFarmReactor
from .delivery import DeliveryFailed, retry_delay
from .render import Message
from .store import DELIVERED, FAILED, QUEUED, NotificationStore, Stored

#: How many due notifications one pass takes from the store.
BATCH = 100
#: How many attempts run at once to one destination (an endpoint, a database, the SMTP
#: server); others to it wait, other destinations do not.
PER_DESTINATION = 2


class Sender(Protocol):
    """Delivers one kind of notification."""

    async def send(self, ident: str, payload: Mapping[str, Any]) -> None:
        """One attempt; raise DeliveryFailed saying why it failed."""

    async def close(self) -> None:
        """Let go of connections."""


class Notifier:
    """The durable queue of notifications and their delivery."""

    log = Logger()

    def __init__(
        self,
        store: NotificationStore,
        settings: NotificationsSection,
        senders: Mapping[str, Sender],
        reactor: IFarmReactor,
        *,
        gave_up: Callable[[Stored], None] = lambda _s: None,
    ) -> None:
        self.store = store
        self.settings = settings
        self.senders = dict(senders)
        self.reactor = reactor
        #: Called with a notification that gave up (the admin mails the emergency list).
        self.gave_up = gave_up
        self._running = False
        self._tick: Any = None
        self._passing: defer.Deferred[None] | None = None
        self._in_flight: dict[str, defer.Deferred[None]] = {}
        self._gates: collections.defaultdict[str, defer.DeferredSemaphore] = (
            collections.defaultdict(lambda: defer.DeferredSemaphore(PER_DESTINATION))
        )

    # -- the service

    async def start(self) -> None:
        """Open the queue and deliver what a previous life left queued."""
        await self.store.open()
        self._running = True
        counts = await self.store.counts()
        if counts[QUEUED]:
            self.log.info("{n} notifications queued from before", n=counts[QUEUED])
        self.wake()

    async def stop(self) -> None:
        """Stop delivering; attempts under way are cancelled (they stay queued)."""
        self._running = False
        if self._tick is not None and self._tick.active():
            self._tick.cancel()
        self._tick = None
        while self._passing is not None:
            await self._passing  # a look at the queue under way ends first
        attempts = list(self._in_flight.values())
        for attempt in attempts:
            attempt.cancel()
        # Cancelled, each ends at once; none touches the queue after it closes.
        await defer.DeferredList(attempts, consumeErrors=True)
        for sender in self.senders.values():
            await sender.close()
        await self.store.close()

    # -- what the admin asks

    async def add(self, messages: list[Message]) -> None:
        """Write notifications down, then deliver them."""
        if not messages:
            return
        await self.store.add(messages, self.reactor.seconds())
        for message in messages:
            self.log.debug(
                "notification {id} ({kind}, {trigger}) to {to} queued",
                id=message.id,
                kind=message.kind,
                trigger=message.trigger,
                to=printable(message.destination),
            )
        self.wake()

    def add_soon(self, messages: list[Message]) -> None:
        """:meth:`add` without waiting (a failure to write them down is logged)."""
        d = defer.Deferred.fromCoroutine(self.add(messages))
        d.addErrback(
            lambda f: self.log.failure("cannot queue {n} notifications", f, n=len(messages))
        )

    def listed(self, state: str | None, limit: int, offset: int = 0) -> Any:
        """One page of notifications, newest first, as the API shows them."""
        d = self.store.listed(state, limit, offset)
        return d.addCallback(
            lambda found: {
                "items": [r.describe() for r in found[0]],
                "total": found[1],
                "offset": offset,
                "limit": limit,
            }
        )

    async def retry(self, ident: str) -> dict[str, Any] | None:
        """Queue a notification that gave up again; None when there is no such one."""
        stored = await self.store.retry(ident, self.reactor.seconds())
        if stored is None:
            return None
        self.wake()
        return stored.describe()

    def counts(self) -> defer.Deferred[dict[str, int]]:
        """How many notifications are in each state."""
        return self.store.counts()

    # -- delivery

    def wake(self) -> None:
        """Look for due notifications at the next turn of the event loop."""
        if not self._running:
            return
        if self._tick is not None and self._tick.active():
            self._tick.reset(0)
        else:
            self._tick = self.reactor.callLater(0, self._pass)

    def _pass(self) -> None:
        self._tick = None

        def unreadable(failure: Any) -> None:
            if self._running:
                self.log.failure("cannot read the notification queue; trying in 5 s", failure)
                self._again_in(5.0)

        def over(_: Any) -> None:
            self._passing = None

        self._passing = defer.Deferred.fromCoroutine(self._deliver_due())
        self._passing.addErrback(unreadable).addBoth(over)

    async def _deliver_due(self) -> None:
        now = self.reactor.seconds()
        for stored in await self.store.due(now, BATCH, exclude=set(self._in_flight)):
            if stored.id not in self._in_flight and self._running:
                self._begin(stored)
        if not self._running:
            return
        # The next pass: when the next one not under way is due (one under way wakes the
        # notifier when it ends).
        following = await self.store.next_due(exclude=set(self._in_flight))
        if following is not None and self._running:
            self._again_in(max(0.05, following - self.reactor.seconds()))

    def _again_in(self, delay: float) -> None:
        if not self._running:
            return
        if self._tick is not None and self._tick.active():
            if self._tick.getTime() - self.reactor.seconds() > delay:
                self._tick.reset(delay)
            return
        self._tick = self.reactor.callLater(delay, self._pass)

    def _begin(self, stored: Stored) -> None:
        gate = self._gates[f"{stored.kind}:{stored.destination}"]
        attempt = gate.run(lambda: defer.Deferred.fromCoroutine(self._attempt(stored)))
        self._in_flight[stored.id] = attempt

        def done(result: Any) -> None:
            self._in_flight.pop(stored.id, None)
            if isinstance(result, Failure) and not result.check(defer.CancelledError):
                self.log.failure("notification {id}", result, id=stored.id)
            self.wake()  # what waited for this one (or is due meanwhile) goes on

        attempt.addBoth(done)

    async def _attempt(self, stored: Stored) -> None:
        sender = self.senders.get(stored.kind)
        attempts = stored.attempts + 1
        try:
            if sender is None:
                raise DeliveryFailed(f"no {stored.kind} sender is configured", False)
            await sender.send(stored.id, stored.payload)
        except DeliveryFailed as e:
            await self._failed(stored, attempts, e)
            return
        now = self.reactor.seconds()
        await self.store.attempted(
            stored.id, state=DELIVERED, attempts=attempts, next_at=now, now=now, error=None
        )
        self.log.info(
            "notification {id} ({trigger} of {relpath}) delivered to {to}",
            id=stored.id,
            trigger=stored.trigger,
            relpath=printable(stored.relpath),
            to=printable(stored.destination),
        )

    async def _failed(self, stored: Stored, attempts: int, error: DeliveryFailed) -> None:
        now = self.reactor.seconds()
        retry = self.settings.retry
        giving_up = not error.retryable or attempts >= retry.attempts
        next_at = (
            now if giving_up else now + retry_delay(attempts, retry.first_delay, retry.max_delay)
        )
        await self.store.attempted(
            stored.id,
            state=FAILED if giving_up else QUEUED,
            attempts=attempts,
            next_at=next_at,
            now=now,
            error=error.reason,
        )
        if giving_up:
            self.log.error(
                "notification {id} ({trigger} of {relpath}) to {to} gave up after {n} "
                "attempts: {reason}",
                id=stored.id,
                trigger=stored.trigger,
                relpath=printable(stored.relpath),
                to=printable(stored.destination),
                n=attempts,
                reason=printable(error.reason),
            )
            self.gave_up(stored)
        else:
            self.log.warn(
                "notification {id} to {to} failed (attempt {n}): {reason}; trying again in "
                "{delay:.0f} s",
                id=stored.id,
                to=printable(stored.destination),
                n=attempts,
                reason=printable(error.reason),
                delay=next_at - now,
            )


def read_text(path: str, limit: int = 256 * 1024) -> defer.Deferred[str | None]:
    """A file's text (its first ``limit`` characters) off the reactor; None if unreadable."""

    def read() -> str | None:
        try:
            with open(path, encoding="utf-8", errors="replace") as f:
                return f.read(limit)
        except OSError:
            return None

    return threads.deferToThread(read)


__all__ = ["BATCH", "Notifier", "Sender", "read_text"]
