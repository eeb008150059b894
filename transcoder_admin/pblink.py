"""A Perspective Broker login that comes back: connect, log in, reconnect with back-off.

Workers and a remote admin both keep one link to the manager this way: every
connection logs in again with fresh credentials, a refused or failed attempt is
logged (never with the secret) and retried after a growing, jittered delay.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from typing import Any

from twisted.cred.credentials import UsernamePassword
from twisted.internet import defer, endpoints, task
from twisted.internet.protocol import connectionDone
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.spread import pb

FIRST_DELAY = 0.5


def disconnection(broker: Any) -> defer.Deferred[None]:
    """A Deferred that fires when a PB connection ends."""
    lost: defer.Deferred[None] = defer.Deferred()

    def fire() -> None:
        if not lost.called:
            lost.callback(None)

    broker.notifyOnDisconnect(fire)
    return lost


def describe_error(e: BaseException) -> str:
    """The first line of an error, for a log line."""
    text = str(e) or type(e).__name__
    return text.splitlines()[0][:300]


class _Broker(pb.Broker):
    """A client broker that tells its factory when its connection ends.

    A connector (``reactor.connectTCP``) does that, an endpoint does not: without it a
    login still waiting for the PB handshake (a TLS handshake refused, a manager gone
    at that moment) would wait forever instead of failing with the reason.
    """

    def connectionLost(self, reason: Failure = connectionDone) -> None:  # noqa: N802
        pb.Broker.connectionLost(self, reason)
        factory: Any = self.factory
        factory.clientConnectionLost(None, reason)


class _LinkFactory(pb.PBClientFactory):
    """A PB client factory for endpoints: logins fail when the connection ends."""

    protocol = _Broker


class PBLink:
    """Keeps a PB login to ``endpoint`` alive until :meth:`stop`."""

    log = Logger()

    def __init__(
        self,
        reactor: Any,
        endpoint: str,
        username: str,
        password: bytes,
        mind: pb.Referenceable,
        *,
        on_login: Callable[[Any], Awaitable[Any]],
        on_lost: Callable[[], Any],
        what: str,
        max_delay: float = 5.0,
    ) -> None:
        self.reactor = reactor
        self.endpoint = endpoint
        self.username = username
        self._password = password
        self.mind = mind
        self.on_login = on_login
        self.on_lost = on_lost
        self.what = what
        self.max_delay = max_delay
        self.perspective: Any = None
        self._factory: pb.PBClientFactory | None = None
        self._stopping = False
        self._sleep: defer.Deferred[None] | None = None
        self._loop: defer.Deferred[None] | None = None

    def start(self) -> None:
        """Begin connecting."""
        self._stopping = False
        self._loop = defer.Deferred.fromCoroutine(self._run())
        self._loop.addErrback(lambda f: self.log.failure("{what} link failed", f, what=self.what))

    def stop(self) -> None:
        """Disconnect and stop reconnecting."""
        self._stopping = True
        if self._sleep is not None and not self._sleep.called:
            self._sleep.cancel()
        if self._factory is not None:
            self._factory.disconnect()

    async def _run(self) -> None:
        delay = min(FIRST_DELAY, self.max_delay)
        while not self._stopping:
            factory = _LinkFactory()
            self._factory = factory
            try:
                endpoint = endpoints.clientFromString(self.reactor, self.endpoint)
                broker = await endpoint.connect(factory)
                lost = disconnection(broker)
                creds = UsernamePassword(self.username.encode(), self._password)
                perspective = await factory.login(creds, client=self.mind)
                self.perspective = perspective
                await self.on_login(perspective)
            except Exception as e:
                self.perspective = None
                if self._stopping:
                    return
                self.log.warn(
                    "{what}: cannot log in to the manager at {endpoint} as {user}: {error}; "
                    "trying again in {delay:.1f} s",
                    what=self.what,
                    endpoint=self.endpoint,
                    user=self.username,
                    error=describe_error(e),
                    delay=delay,
                )
                factory.disconnect()
            else:
                delay = min(FIRST_DELAY, self.max_delay)
                await lost
                self.perspective = None
                self.on_lost()
                if self._stopping:
                    return
                self.log.warn(
                    "{what}: lost the manager at {endpoint}; reconnecting",
                    what=self.what,
                    endpoint=self.endpoint,
                )
            self._sleep = task.deferLater(self.reactor, delay * random.uniform(0.8, 1.2))
            try:
                await self._sleep
            except defer.CancelledError:
                return
            delay = min(delay * 2, self.max_delay)
