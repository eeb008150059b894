"""The manager's door: a connection must log in within seconds, and few may wait at once.

Anyone who can reach ``manager.listen`` can open connections; without this, each one
that never logs in would hold a broker (and its memory) for as long as it likes.  A
connection that has not logged in after ``login_timeout`` seconds is closed; beyond
``max_waiting`` connections not logged in yet, a new one is closed at once.  Both are
logged with the peer's address.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.interfaces import IDelayedCall
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.spread import pb

from ..pblink import no_delay
from ..reactors import IFarmReactor

#: Seconds a connection may take to log in.
LOGIN_TIMEOUT = 10.0
#: Connections that have not logged in yet, at most, per listening port.
MAX_WAITING = 64

log = Logger()


class GuardedBroker(pb.Broker):
    """A server-side broker that must log in within its factory's time limit."""

    _login_call: IDelayedCall | None = None

    @property
    def guard(self) -> GuardedFactory:
        """The factory that built this broker (typed; Broker declares it ``None``)."""
        factory: GuardedFactory = self.factory  # type: ignore[assignment]
        return factory

    def _close(self, why: str, **fields: Any) -> None:
        """Log why and drop the connection at once."""
        transport: Any = self.transport
        log.warn(
            "manager: closed a connection from {peer}: " + why, peer=transport.getPeer(), **fields
        )
        transport.abortConnection()

    def connectionMade(self) -> None:  # noqa: N802 (Twisted API)
        """Refuse beyond the cap; otherwise start the login clock."""
        guard = self.guard
        if len(guard.waiting) >= guard.max_waiting:
            self._close("{count} connections have not logged in yet", count=len(guard.waiting))
            return
        no_delay(self.transport)
        super().connectionMade()
        guard.waiting.add(self)
        self._login_call = guard.reactor.callLater(guard.login_timeout, self._too_slow)

    def logged_in(self) -> None:
        """The login succeeded: the clock stops."""
        self.guard.waiting.discard(self)
        call, self._login_call = self._login_call, None
        if call is not None and call.active():
            call.cancel()

    def _too_slow(self) -> None:
        self._login_call = None
        self._close("no login within {seconds:g} s", seconds=self.guard.login_timeout)

    def connectionLost(self, reason: Failure) -> None:  # type: ignore[override]  # noqa: N802
        """Forget the connection (logged in or not)."""
        self.logged_in()
        super().connectionLost(reason)


class GuardedFactory(pb.PBServerFactory):
    """A PB server factory whose brokers must log in in time, few waiting at once."""

    protocol = GuardedBroker

    def __init__(
        self,
        root: Any,
        reactor: IFarmReactor,
        login_timeout: float = LOGIN_TIMEOUT,
        max_waiting: int = MAX_WAITING,
    ) -> None:
        super().__init__(root)
        self.reactor = reactor
        self.login_timeout = login_timeout
        self.max_waiting = max_waiting
        self.waiting: set[GuardedBroker] = set()


def note_login(creds: Any) -> None:
    """Tell the broker a login came through (``creds`` is PB's challenger, with ``broker``)."""
    broker = getattr(creds, "broker", None)
    if isinstance(broker, GuardedBroker):
        broker.logged_in()
