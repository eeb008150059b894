"""The twisted.web resources that serve the route table as JSON."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import cast
from urllib.parse import parse_qsl

from twisted.internet.defer import CancelledError, maybeDeferred
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.resource import IResource, Resource
from twisted.web.server import NOT_DONE_YET, Request, Site

from .access import Access
from .errors import APIError, api_error_for
from .exchange import Exchange
from .routes import ROUTES
from .table import MAX_BODY_BYTES, Admin, Route
from .ui import DashboardResource

#: The Prometheus text exposition format, version 0.0.4.
METRICS_TYPE = b"text/plain; version=0.0.4; charset=utf-8"
_MAX_QUERY_FIELDS = 50


def _display_path(request: Request) -> str:
    """The request's URL path, for messages."""
    return bytes(request.path).decode("utf-8", "replace")


def _send_not_found(request: Request) -> int:
    """Answer 404 for a path the API does not have."""
    path = _display_path(request)
    Exchange(request).send_error(APIError(404, f"no such path: {path}"))
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
        exchange = Exchange(request)
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

    def _failed(self, failure: Failure, exchange: Exchange, took_input: bool) -> None:
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

    def _not_sent(self, failure: Failure, exchange: Exchange) -> None:
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
        exchange = Exchange(request)
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
    def _send(exchange: Exchange, text: bytes) -> None:
        if exchange.gone:
            return
        request = exchange.request
        request.setHeader(b"Content-Type", METRICS_TYPE)
        request.setHeader(b"Content-Length", b"%d" % len(text))
        request.setHeader(b"Cache-Control", b"no-store")
        request.write(text)
        request.finish()

    def _failed(self, failure: Failure, exchange: Exchange) -> None:
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
