"""A Perspective Broker login that comes back: connect, log in, reconnect with back-off.

Workers and a remote admin both keep one link to the manager this way (Twisted's
``ClientService``): every connection logs in again with fresh credentials, a refused or
failed attempt is logged (never with the secret) and retried after a growing,
jittered delay.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from typing import Any

from twisted.application.internet import ClientService
from twisted.cred.credentials import UsernamePassword
from twisted.internet import defer, endpoints, tcp
from twisted.internet.interfaces import IProtocolFactory, IStreamClientEndpoint
from twisted.internet.protocol import connectionDone
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.spread import pb
from zope.interface import implementer

from .reactors import IFarmReactor

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


def no_delay(transport: Any) -> None:
    """Send each PB message at once (TCP_NODELAY), on TCP and on TLS over TCP.

    With Nagle's algorithm on, a small message written while the peer has not yet
    acknowledged the previous one waits for that acknowledgement, which the peer may
    delay: a job's outcome took 15 ms to cross loopback that way.  (Twisted's UNIX
    socket transports take the call and do nothing.)
    """
    while not isinstance(transport, tcp.Connection):
        transport = getattr(transport, "transport", None)  # below a TLS layer
        if transport is None:
            return
    transport.setTcpNoDelay(True)


class _Broker(pb.Broker):
    """A client broker that sends at once and tells its factory when its connection ends.

    A connector (``reactor.connectTCP``) does that, an endpoint does not: without it a
    login still waiting for the PB handshake (a TLS handshake refused, a manager gone
    at that moment) would wait forever instead of failing with the reason.
    """

    def connectionMade(self) -> None:  # noqa: N802 (Twisted API)
        no_delay(self.transport)
        pb.Broker.connectionMade(self)

    def connectionLost(self, reason: Failure = connectionDone) -> None:  # noqa: N802
        pb.Broker.connectionLost(self, reason)
        factory: Any = self.factory
        factory.clientConnectionLost(None, reason)


class _LinkFactory(pb.PBClientFactory):
    """A PB client factory for endpoints: logins fail when the connection ends."""

    protocol = _Broker


@implementer(IStreamClientEndpoint)
class _ReportingEndpoint:
    """An endpoint that tells its link why a connection attempt failed."""

    def __init__(self, endpoint: IStreamClientEndpoint, failed: Callable[[Failure], None]):
        self._endpoint = endpoint
        self._failed = failed

    def connect(self, factory: IProtocolFactory) -> defer.Deferred[Any]:  # noqa: D102
        def failed(failure: Failure) -> Failure:
            self._failed(failure)
            return failure

        return self._endpoint.connect(factory).addErrback(failed)


class PBLink:
    """Keeps a PB login to ``endpoint`` alive until :meth:`stop`.

    A :class:`~twisted.application.internet.ClientService` keeps the connection: it
    reconnects after a failed attempt or a lost connection, waiting as the link's
    back-off policy says.  Each new connection logs in; a refused login closes it (so
    the service tries again), a successful one resets the back-off.  The login runs
    beside the service, not as its ``prepareConnection``: a connection that drops while
    logging in is then an ordinary lost connection to the service.
    """

    log = Logger()

    def __init__(
        self,
        reactor: IFarmReactor,
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
        self._delay = min(FIRST_DELAY, max_delay)
        self._factory = _LinkFactory()
        self._service: ClientService | None = None

    def start(self) -> None:
        """Begin connecting."""
        if self._service is not None:
            return
        try:
            endpoint = endpoints.clientFromString(self.reactor, self.endpoint)
        except Exception as e:  # a bad endpoint string: config checks make this rare
            self.log.error("{what}: {error}", what=self.what, error=describe_error(e))
            return
        self._service = ClientService(
            _ReportingEndpoint(endpoint, self._connect_failed),
            self._factory,
            retryPolicy=self._retry_delay,
            clock=self.reactor,
            prepareConnection=self._connected,
        )
        self._service.startService()

    def stop(self) -> defer.Deferred[None]:
        """Disconnect and stop reconnecting; fires when the connection is closed."""
        service, self._service = self._service, None
        if service is None:
            return defer.succeed(None)
        return service.stopService()

    # -- the back-off policy

    def _retry_delay(self, _attempt: int) -> float:
        """The wait before the next attempt: doubling up to ``max_delay``, jittered."""
        delay = self._delay * random.uniform(0.8, 1.2)
        self._delay = min(self._delay * 2, self.max_delay)
        return delay

    # -- each connection

    def _connect_failed(self, failure: Failure) -> None:
        if self._service is not None and failure.value is not None:
            self._warn_not_logged_in(failure.value)

    def _warn_not_logged_in(self, error: BaseException) -> None:
        self.log.warn(
            "{what}: cannot log in to the manager at {endpoint} as {user}: {error}; trying again",
            what=self.what,
            endpoint=self.endpoint,
            user=self.username,
            error=describe_error(error),
        )

    def _connected(self, broker: Any) -> None:
        """A new connection: log in beside the service (see the class's note)."""
        d = defer.Deferred.fromCoroutine(self._login(broker))
        d.addErrback(lambda f: self.log.failure("{what} link failed", f, what=self.what))

    async def _login(self, broker: Any) -> None:
        lost = disconnection(broker)
        try:
            creds = UsernamePassword(self.username.encode(), self._password)
            self.perspective = await self._factory.login(creds, client=self.mind)
            await self.on_login(self.perspective)
        except Exception as e:
            self.perspective = None
            if self._service is not None:  # a closed connection says why (a TLS refusal)
                self._warn_not_logged_in(e)
            transport = getattr(broker, "transport", None)
            if transport is not None:
                transport.loseConnection()  # the service tries again after its delay
            return
        self._delay = min(FIRST_DELAY, self.max_delay)
        await lost
        self.perspective = None
        self.on_lost()
        if self._service is not None:
            self.log.warn(
                "{what}: lost the manager at {endpoint}; reconnecting",
                what=self.what,
                endpoint=self.endpoint,
            )
