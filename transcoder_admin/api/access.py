"""Who may ask the API what: bearer tokens, the Host a browser used, the Origin of an action.

Three checks, in this order, on every request:

- **Host**: a request whose ``Host`` is neither a loopback name nor one of
  ``api.allowed-hosts`` is refused (403), so a web page whose DNS name was made to
  point at 127.0.0.1 (DNS rebinding) cannot read or steer the farm.
- **Origin**: an action (POST) from a browser page of another origin is refused (403):
  a page anywhere could otherwise POST to ``localhost:7667/api/v1/pause``.  Clients that
  are not browsers send no ``Origin`` and are not concerned.
- **Token**: with ``api.tokens-file`` set, every path but ``GET /api/v1/health`` needs
  ``Authorization: Bearer TOKEN`` (401 with ``WWW-Authenticate: Bearer`` otherwise); a
  read token may read, only an admin token may act (403).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

from twisted.internet import threads
from twisted.internet.defer import Deferred, succeed
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.server import Request

from ..reactors import IFarmReactor, default_reactor
from .errors import APIError
from .table import Route
from .tokens import Tokens, read_tokens

#: Host names that always reach this machine only.
LOOPBACK_NAMES = frozenset({"localhost", "localhost.", "ip6-localhost", "ip6-loopback"})
_CHALLENGE = 'Bearer realm="transcoder-admin"'


@dataclass(frozen=True)
class Caller:
    """Who sent a request: the token's name and role (``None`` without tokens)."""

    name: str | None
    role: str


def _host_name(value: str) -> str:
    """The host part of a Host header or an origin's netloc, lower case, without its port."""
    value = value.strip().lower()
    if value.startswith("["):
        return value[1:].partition("]")[0]
    if value.count(":") == 1:
        return value.partition(":")[0]
    return value


def is_loopback_name(host: str) -> bool:
    """Whether a host name or address reaches this machine only."""
    if host in LOOPBACK_NAMES or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class Access:
    """The API's access rules; the tokens are re-read by :meth:`reload` (SIGHUP, reload)."""

    log = Logger()

    def __init__(
        self,
        tokens_file: str | None = None,
        allowed_hosts: Iterable[str] = (),
        reactor: IFarmReactor | None = None,
    ) -> None:
        self.tokens_file = tokens_file
        self.allowed_hosts = frozenset(_host_name(host) for host in allowed_hosts)
        self._reactor = reactor
        #: ``None`` while there are no tokens (the API then keeps to loopback).
        self.tokens: Tokens | None = None
        if tokens_file is None:
            return
        self.tokens = read_tokens(tokens_file)

    @property
    def authenticates(self) -> bool:
        """Whether requests need a token."""
        return self.tokens_file is not None

    def reload(self) -> Deferred[int]:
        """Re-read the tokens file in a thread; keep the old tokens if it is broken."""
        path = self.tokens_file
        if path is None:
            return succeed(0)
        reactor = self._reactor or default_reactor()
        d = threads.deferToThreadPool(reactor, reactor.getThreadPool(), read_tokens, path)

        def loaded(tokens: Tokens) -> int:
            self.tokens = tokens
            self.log.info("API tokens reloaded: {count} in {path}", count=len(tokens), path=path)
            return len(tokens)

        def refused(failure: Failure) -> Failure:
            self.log.error(
                "API tokens not reloaded, keeping the old ones: {error}", error=failure.value
            )
            return failure

        return d.addCallbacks(loaded, refused)

    def check(self, request: Request, route: Route) -> Caller:
        """The caller of an allowed request; APIError (401, 403) for one refused."""
        return self.check_request(request, action=route.method != "GET", public=route.public)

    def check_request(self, request: Request, *, action: bool, public: bool = False) -> Caller:
        """:meth:`check` for a resource outside the route table (``/metrics``)."""
        self._check_host(request)
        if action:
            self._check_origin(request)
        if self.tokens is None or public:
            return Caller(None, "admin")
        caller = self._caller(request)
        if action and caller.role != "admin":
            raise APIError(
                403, f"token {caller.name!r} may only read; this action needs an admin token"
            )
        return caller

    def _allowed_host(self, host: str) -> bool:
        return is_loopback_name(host) or host in self.allowed_hosts

    def _check_host(self, request: Request) -> None:
        raw = request.getHeader(b"host")
        if raw is None:
            return  # not a browser (they always send one): HTTP/1.0 tools, UNIX sockets
        host = _host_name(raw.decode("latin-1"))
        if not self._allowed_host(host):
            raise APIError(
                403,
                f"host {host[:80]!r} is not a loopback name nor in api.allowed-hosts",
            )

    def _check_origin(self, request: Request) -> None:
        raw = request.getHeader(b"origin")
        site = request.getHeader(b"sec-fetch-site")
        if site is not None and site.strip().lower() == b"cross-site":
            raise APIError(403, "actions are refused to pages of other sites")
        if raw is None:
            return
        origin = raw.decode("latin-1").strip()
        host = (request.getHeader(b"host") or b"").decode("latin-1").strip().lower()
        parts = urlsplit(origin)
        same = parts.scheme in ("http", "https") and parts.netloc.lower() == host
        if not same:
            raise APIError(403, f"actions are refused to pages of other origins ({origin[:80]})")

    def _caller(self, request: Request) -> Caller:
        assert self.tokens is not None
        raw = request.getHeader(b"authorization")
        if raw is None:
            raise _unauthorized("this API needs a token: send Authorization: Bearer TOKEN")
        scheme, _, secret = raw.decode("latin-1").strip().partition(" ")
        if scheme.lower() != "bearer" or not secret.strip():
            raise _unauthorized("send the token as Authorization: Bearer TOKEN")
        holder = self.tokens.holder(secret.strip())
        if holder is None:
            raise _unauthorized("the token is unknown or revoked", error="invalid_token")
        return Caller(holder.name, holder.role)


def _unauthorized(message: str, error: str | None = None) -> APIError:
    """A 401 with the challenge RFC 6750 asks for."""
    challenge = _CHALLENGE + (f', error="{error}"' if error else "")
    return APIError(401, message, headers={"WWW-Authenticate": challenge})
