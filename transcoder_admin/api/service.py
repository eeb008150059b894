"""The service that listens for the API, on loopback only while there is no authentication."""

from __future__ import annotations

from typing import Any

from twisted.application.service import Service
from twisted.internet.defer import Deferred, maybeDeferred, succeed
from twisted.internet.endpoints import serverFromString
from twisted.logger import Logger

from ..config.endpoints import bound_interfaces, is_loopback
from ..reactors import IFarmReactor, default_reactor
from .access import Access
from .resources import build_site
from .table import Admin

_CHECKABLE_KINDS = ("tcp", "tcp6", "ssl", "unix")


def check_listen(endpoint: str, *, authenticated: bool = False) -> None:
    """Raise ValueError unless the endpoint string is valid and, without tokens
    (``authenticated`` false), listens on loopback or a UNIX socket only.

    The string is parsed by Twisted itself (against a memory reactor, so nothing
    listens), so the check sees the interface Twisted would really bind.  Parsing
    an ``ssl:`` endpoint reads its key and certificate files.
    """
    why = (
        "without api.tokens-file the API has no authentication, so it must listen on "
        "loopback only: use e.g. tcp:7667:interface=127.0.0.1, "
        "tcp6:7667:interface=\\:\\:1 or unix:PATH, or set api.tokens-file"
    )
    kind = endpoint.split(":", 1)[0]
    if kind not in _CHECKABLE_KINDS:
        raise ValueError(
            f"API endpoint {endpoint!r}: kind {kind!r} is not one of "
            f"{', '.join(_CHECKABLE_KINDS)}; {why}"
        )
    try:
        interfaces = bound_interfaces(endpoint)
    except ValueError as error:
        raise ValueError(f"API endpoint {error}") from None
    if interfaces is None or authenticated:
        return
    if not interfaces:
        raise ValueError(f"API endpoint {endpoint!r} does not listen on TCP or UNIX; {why}")
    for interface in interfaces:
        if not is_loopback(interface):
            shown = interface or "every interface"
            raise ValueError(f"API endpoint {endpoint!r} listens on {shown}; {why}")


class APIService(Service):
    """Listens on ``endpoint`` and serves the JSON API of ``admin`` there."""

    name = "api"
    log = Logger()

    def __init__(
        self,
        admin: Admin,
        endpoint: str,
        reactor: IFarmReactor | None = None,
        access: Access | None = None,
    ) -> None:
        self.access = access or Access()
        check_listen(endpoint, authenticated=self.access.authenticates)
        self._admin = admin
        self._endpoint = endpoint
        self._reactor = reactor
        self._listening: Deferred[None] | None = None
        self._port: Any = None  # an IListeningPort once listening

    def startService(self) -> Deferred[None]:  # type: ignore[override]
        """Start listening; the Deferred fires once the port is open."""
        super().startService()
        reactor = self._reactor or default_reactor()  # the global reactor is only a default
        listening = serverFromString(reactor, self._endpoint).listen(
            build_site(self._admin, self.access)
        )
        self._listening = listening.addCallback(self._listened)
        return self._listening

    def _listened(self, port: Any) -> None:
        """Keep the open port and say where the API is."""
        self._port = port
        self.log.info("API listening on {address}", address=port.getHost())

    def stopService(self) -> Deferred[None]:  # type: ignore[override]
        """Stop listening; the Deferred fires once the port is closed."""
        super().stopService()
        listening, self._listening = self._listening, None
        port, self._port = self._port, None
        if listening is not None and not listening.called:
            listening.cancel()
        if port is None:
            return succeed(None)
        return maybeDeferred(port.stopListening)
