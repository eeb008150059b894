"""The twisted.web resources that serve the route table as JSON."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from enum import Enum
from pathlib import PurePath
from typing import Any, cast
from urllib.parse import parse_qsl

from twisted.internet.defer import CancelledError, Deferred, maybeDeferred
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.resource import IResource, Resource
from twisted.web.server import NOT_DONE_YET, Request, Site

from .access import Access
from .errors import APIError, api_error_for
from .routes import ROUTES
from .table import MAX_BODY_BYTES, Admin, Route
from .ui import DashboardResource

CONTENT_TYPE = b"application/json; charset=utf-8"
#: The Prometheus text exposition format, version 0.0.4.
METRICS_TYPE = b"text/plain; version=0.0.4; charset=utf-8"
_MAX_QUERY_FIELDS = 50


def _plain(value: Any) -> Any:
    """Turn the value types the admin may hand out into JSON-ready ones."""
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, PurePath):
        return str(value)
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, set | frozenset):
        return sorted(value, key=str)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, Sequence) and not isinstance(value, str | bytes):
        return list(value)
    raise TypeError(f"cannot send {type(value).__name__} as JSON")


def encode_json(value: Any) -> bytes:
    """Serialize ``value`` as UTF-8 JSON, escaping undecodable file names instead of failing."""
    text = json.dumps(value, default=_plain, ensure_ascii=False, allow_nan=False)
    try:
        return text.encode("utf-8") + b"\n"
    except UnicodeEncodeError:
        # File names that are not valid UTF-8 carry lone surrogates; \u escapes keep them.
        return json.dumps(value, default=_plain, allow_nan=False).encode("ascii") + b"\n"


def _display_path(request: Request) -> str:
    """The request's URL path, for messages."""
    return bytes(request.path).decode("utf-8", "replace")


class _Exchange:
    """One request being answered: knows whether the client is still there."""

    def __init__(self, request: Request) -> None:
        self.request = request
        self.gone = False
        self._answer: Deferred[Any] | None = None
        self._cancel_on_loss = False
        request.notifyFinish().addErrback(self._lost)

    def watch(self, answer: Deferred[Any], *, cancel: bool) -> None:
        """Remember an unfinished admin call, cancelled if ``cancel`` and the client leaves."""
        self._answer = answer
        self._cancel_on_loss = cancel

    def _lost(self, reason: Failure) -> None:
        """The connection closed before the answer was sent."""
        self.gone = True
        answer, self._answer = self._answer, None
        if answer is not None and self._cancel_on_loss and not answer.called:
            answer.cancel()

    def send(self, code: int, body: Any, headers: Mapping[str, str] | None = None) -> None:
        """Answer with ``body`` as JSON, unless the client has left."""
        if self.gone:
            return
        data = encode_json(body)
        request = self.request
        request.setResponseCode(code)
        for name, value in (headers or {}).items():
            request.setHeader(name.encode("ascii"), value.encode("ascii"))
        request.setHeader(b"Content-Type", CONTENT_TYPE)
        request.setHeader(b"Content-Length", b"%d" % len(data))
        request.setHeader(b"Cache-Control", b"no-store")
        request.setHeader(b"X-Content-Type-Options", b"nosniff")
        request.write(data)  # twisted.web drops the body of a HEAD answer itself
        request.finish()

    def send_error(self, error: APIError) -> None:
        """Answer with the JSON error document of ``error``."""
        self.send(error.code, error.body(), error.headers)

    @property
    def finished(self) -> bool:
        """Whether an answer went out (or the client left): nothing more may be written."""
        return self.gone or bool(self.request.finished)


def _send_not_found(request: Request) -> int:
    """Answer 404 for a path the API does not have."""
    path = _display_path(request)
    _Exchange(request).send_error(APIError(404, f"no such path: {path}"))
    return NOT_DONE_YET


class _NotFound(Resource):
    """Answers a JSON 404 to any method on any path below it."""

    isLeaf = True

    def render(self, request: Request) -> int:
        """Answer 404."""
        return _send_not_found(request)


class _Directory(Resource):
    """A fixed folder of the URL space whose own URL and unknown children answer JSON 404."""

    def getChild(self, path: bytes, request: Request) -> Resource:
        """Any child not put here is not found."""
        return _NotFound()

    def render(self, request: Request) -> int:
        """The folder itself is not a resource."""
        return _send_not_found(request)


def _check_body(request: Request) -> None:
    """Refuse a request body over the limit, whichever way it was measured."""
    too_large = bool(getattr(request, "body_too_large", False))
    declared = (request.getHeader(b"content-length") or b"").strip()
    if declared.isdigit():
        too_large = too_large or len(declared) > 12 or int(declared) > MAX_BODY_BYTES
    content = request.content
    if content is not None:
        content.seek(0, 2)
        too_large = too_large or content.tell() > MAX_BODY_BYTES
        content.seek(0)
    if too_large:
        raise APIError(413, f"the request body is larger than {MAX_BODY_BYTES} bytes")


def _query_pairs(request: Request) -> list[tuple[str, str]]:
    """The query string's name/value pairs, decoded as UTF-8."""
    query = bytes(request.uri).partition(b"?")[2]
    try:
        return parse_qsl(
            query.decode("utf-8"),
            keep_blank_values=True,
            encoding="utf-8",
            errors="strict",
            max_num_fields=_MAX_QUERY_FIELDS,
        )
    except UnicodeDecodeError as error:
        raise APIError(400, "the query string is not valid UTF-8") from error
    except ValueError as error:
        raise APIError(400, f"more than {_MAX_QUERY_FIELDS} query parameters") from error


def _allow(methods: Mapping[str, Route]) -> str:
    """The Allow header for a path served by these methods."""
    allowed = set(methods)
    if "GET" in allowed:
        allowed.add("HEAD")
    return ", ".join(sorted(allowed))


class APIResource(Resource):
    """Serves every route of the route table below /api/v1/, as JSON."""

    isLeaf = True
    log = Logger()

    def __init__(
        self, admin: Admin, routes: Sequence[Route] = ROUTES, access: Access | None = None
    ) -> None:
        super().__init__()
        self._admin = admin
        self._access = access or Access()
        self._routes: dict[str, dict[str, Route]] = {}
        for route in routes:
            self._routes.setdefault(route.name, {})[route.method] = route

    def _route_for(self, request: Request) -> Route:
        """The route this request asks for, or a 404/405 APIError."""
        segments = list(request.postpath or [])
        if len(segments) >= 2 and segments[-1] == b"":
            segments.pop()  # a trailing slash
        methods = None
        if segments and all(segments):
            methods = self._routes.get(b"/".join(segments).decode("utf-8", "replace"))
        path = _display_path(request)
        if not methods:
            raise APIError(404, f"no such path: {path}")
        method = bytes(request.method).decode("ascii", "replace")
        route = methods.get("GET" if method == "HEAD" else method)
        if route is None:
            allow = _allow(methods)
            raise APIError(
                405, f"{method} is not allowed on {path}; use {allow}", headers={"Allow": allow}
            )
        return route

    def render(self, request: Request) -> int:
        """Check the request, call the admin, and answer as soon as its result is there."""
        exchange = _Exchange(request)
        try:
            route = self._route_for(request)
            caller = self._access.check(request, route)
            _check_body(request)
            params = route.parse_query(_query_pairs(request))
            if route.body:
                content = request.content
                params.update(route.parse_body(content.read() if content is not None else b""))
            if route.names_caller:
                params.update(caller=caller.name or "", role=caller.role)
        except APIError as error:
            exchange.send_error(error)
            return NOT_DONE_YET
        if route.method != "GET":
            self.log.info(
                "API {method} {path} by {caller}",
                method=route.method,
                path=route.path,
                caller=caller.name or "a loopback client",
            )
        answer = maybeDeferred(route.handler, self._admin, params)
        if not answer.called:
            # Only reads are safe to abandon; an action goes on once asked for.
            exchange.watch(answer, cancel=route.method == "GET")
        answer.addCallbacks(
            lambda value: exchange.send(route.status, value),
            self._failed,
            errbackArgs=(exchange, bool(params)),
        )
        answer.addErrback(self._not_sent, exchange)
        return NOT_DONE_YET

    def _failed(self, failure: Failure, exchange: _Exchange, took_input: bool) -> None:
        """Answer a failed admin call with the status its error maps to."""
        if exchange.gone and failure.check(CancelledError):
            return
        error = api_error_for(cast(BaseException, failure.value), took_input=took_input)
        if error is None:
            self.log.failure(
                "API {method} {path} failed",
                failure,
                method=bytes(exchange.request.method).decode("ascii", "replace"),
                path=_display_path(exchange.request),
            )
            error = APIError(500, "internal error; the admin's log has the details")
        exchange.send_error(error)

    def _not_sent(self, failure: Failure, exchange: _Exchange) -> None:
        """Log an answer that could not be sent, and send a 500 instead if still possible."""
        self.log.failure(
            "API could not answer {path}", failure, path=_display_path(exchange.request)
        )
        if not exchange.finished:
            exchange.send_error(APIError(500, "internal error; the admin's log has the details"))


class MetricsResource(Resource):
    """``GET /metrics``: the Prometheus text format, behind the API's access rules."""

    isLeaf = True
    log = Logger()

    def __init__(self, admin: Admin, access: Access) -> None:
        super().__init__()
        self._admin = admin
        self._access = access

    def render_GET(self, request: Request) -> int:  # noqa: N802 (twisted.web API)
        """Check the caller, then answer with the metrics once rendered."""
        exchange = _Exchange(request)
        try:
            self._access.check_request(request, action=False)
        except APIError as error:
            exchange.send_error(error)
            return NOT_DONE_YET
        answer = maybeDeferred(self._admin.metrics)
        exchange.watch(answer, cancel=True)
        answer.addCallbacks(
            lambda text: self._send(exchange, text), self._failed, (), {}, (exchange,)
        )
        return NOT_DONE_YET

    @staticmethod
    def _send(exchange: _Exchange, text: bytes) -> None:
        if exchange.gone:
            return
        request = exchange.request
        request.setHeader(b"Content-Type", METRICS_TYPE)
        request.setHeader(b"Content-Length", b"%d" % len(text))
        request.setHeader(b"Cache-Control", b"no-store")
        request.write(text)
        request.finish()

    def _failed(self, failure: Failure, exchange: _Exchange) -> None:
        if exchange.gone and failure.check(CancelledError):
            return
        self.log.failure("metrics could not be rendered", failure)
        if not exchange.finished:
            exchange.send_error(APIError(500, "internal error; the admin's log has the details"))

    def render_HEAD(self, request: Request) -> int:  # noqa: N802 (twisted.web API)
        """As GET (twisted.web drops the body)."""
        return self.render_GET(request)


class _LimitedRequest(Request):
    """A request that stops storing its body past the API's limit instead of buffering it all."""

    body_too_large = False

    def handleContentChunk(self, data: bytes) -> None:
        """Store a chunk of the body unless the body has grown over the limit."""
        if self.body_too_large:
            return
        if self.content is not None and self.content.tell() + len(data) > MAX_BODY_BYTES:
            self.body_too_large = True
            return
        super().handleContentChunk(data)


def build_resource(admin: Admin, access: Access | None = None) -> Resource:
    """The root resource: the API under /api/v1/, the metrics, the dashboard under /ui/,
    JSON 404 for anything not put there."""
    root = _Directory()
    api = _Directory()
    # mypy sees no zope declarations: Resource does provide IResource.
    root.putChild(b"api", cast(IResource, api))
    access = access or Access()
    api.putChild(b"v1", cast(IResource, APIResource(admin, access=access)))
    root.putChild(b"metrics", cast(IResource, MetricsResource(admin, access)))
    root.putChild(b"ui", cast(IResource, DashboardResource(access)))
    return root


def build_site(admin: Admin, access: Access | None = None) -> Site:
    """The HTTP site serving ``build_resource(admin, access)``, without tracebacks in answers."""
    site = Site(build_resource(admin, access), requestFactory=_LimitedRequest)
    site.displayTracebacks = False
    return site
