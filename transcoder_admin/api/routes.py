"""The route table: every path, method and query parameter of the API, in one place.

The resources dispatch on it and the OpenAPI document is generated from it, so
the two cannot drift apart.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from twisted.internet.defer import Deferred

from . import schemas
from .errors import APIError

PREFIX = "/api/v1/"
MAX_LIMIT = 500
MAX_BODY_BYTES = 64 * 1024
OUTCOMES = ("done", "failed")


class Admin(Protocol):
    """The admin's public methods, the only ones the API calls."""

    def health(self) -> Mapping[str, Any]: ...
    def status(self) -> Mapping[str, Any]: ...
    def workers(self) -> Sequence[Mapping[str, Any]]: ...
    def queue(self, offset: int = ..., limit: int = ...) -> Mapping[str, Any]: ...
    def tasks(self) -> Sequence[Mapping[str, Any]]: ...
    def components(
        self, kind: str | None = ..., worker: str | None = ...
    ) -> Sequence[Mapping[str, Any]]: ...
    def files(
        self, state: str | None = ..., offset: int = ..., limit: int = ...
    ) -> Mapping[str, Any]: ...
    @property
    def reports(self) -> Callable[..., Deferred[Any]]: ...
    def pause(self) -> Deferred[Any]: ...
    def resume(self) -> Deferred[Any]: ...
    def reload(self) -> Deferred[Any]: ...
    def retry_file(self, customer: str, profile: str, relpath: str) -> Mapping[str, Any]: ...


Params = Mapping[str, str | int]
Handler = Callable[[Admin, Params], Any]


def _shown(raw: str) -> str:
    """A client-supplied value quoted for an error message, cut to a readable length."""
    return repr(raw if len(raw) <= 60 else raw[:60] + "…")


@dataclass(frozen=True)
class Param:
    """One optional query parameter, with the rules its value must follow."""

    name: str
    description: str
    kind: Literal["string", "integer"] = "string"
    enum: tuple[str, ...] = ()
    minimum: int | None = None
    maximum: int | None = None
    max_length: int | None = None

    def parse(self, raw: str) -> str | int:
        """Check ``raw`` and return the value to hand to the admin, or raise a 400 APIError."""
        if self.kind == "integer":
            if not (raw.isascii() and raw.isdigit()) or len(raw) > 12:
                raise APIError(
                    400, f"query parameter {self.name!r}: {_shown(raw)} is not a whole number"
                )
            number = int(raw)
            if self.minimum is not None and number < self.minimum:
                raise APIError(400, f"query parameter {self.name!r} must be ≥ {self.minimum}")
            if self.maximum is not None and number > self.maximum:
                raise APIError(400, f"query parameter {self.name!r} must be ≤ {self.maximum}")
            return number
        if self.enum and raw not in self.enum:
            allowed = ", ".join(self.enum)
            raise APIError(
                400, f"query parameter {self.name!r}: {_shown(raw)} is not one of {allowed}"
            )
        if self.max_length is not None and len(raw) > self.max_length:
            raise APIError(
                400, f"query parameter {self.name!r} is longer than {self.max_length} characters"
            )
        return raw


@dataclass(frozen=True)
class Route:
    """One operation: a path under /api/v1/, a method, and the admin call behind it."""

    name: str
    method: Literal["GET", "POST"]
    operation_id: str
    summary: str
    handler: Handler
    response: schemas.Schema
    params: tuple[Param, ...] = ()
    errors: Mapping[int, str] = field(default_factory=dict)
    #: Fields of the JSON object the request body must be (all required strings); an
    #: operation without them ignores its body.
    body: tuple[Param, ...] = ()
    #: The status of a successful answer.
    status: int = 200

    @property
    def path(self) -> str:
        """The full URL path, e.g. ``/api/v1/health``."""
        return PREFIX + self.name

    def parse_query(self, pairs: Iterable[tuple[str, str]]) -> dict[str, str | int]:
        """Check the query string's name/value pairs; empty values count as not given."""
        known = {param.name: param for param in self.params}
        values: dict[str, str | int] = {}
        seen: set[str] = set()
        for name, raw in pairs:
            param = known.get(name)
            if param is None:
                allowed = ", ".join(known) or "none"
                raise APIError(400, f"unknown query parameter {_shown(name)} (allowed: {allowed})")
            if name in seen:
                raise APIError(400, f"query parameter {name!r} given more than once")
            seen.add(name)
            if raw != "":
                values[name] = param.parse(raw)
        return values

    def parse_body(self, raw: bytes) -> dict[str, str | int]:
        """Check the request body against ``body``; a 400 APIError says what is wrong."""
        if not self.body:
            return {}
        try:
            value = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            raise APIError(400, "the request body is not JSON") from None
        if not isinstance(value, dict):
            raise APIError(400, "the request body must be a JSON object")
        known = {param.name: param for param in self.body}
        unknown = sorted(set(value) - set(known))
        if unknown:
            raise APIError(
                400,
                f"unknown field {_shown(str(unknown[0]))} in the request body "
                f"(allowed: {', '.join(known)})",
            )
        fields: dict[str, str | int] = {}
        for name, param in known.items():
            if not isinstance(value.get(name), str) or not value[name]:
                raise APIError(
                    400, f"field {name!r} of the request body must be a non-empty string"
                )
            raw_field = value[name]
            if param.max_length is not None and len(raw_field) > param.max_length:
                raise APIError(400, f"field {name!r} is longer than {param.max_length} characters")
            fields[name] = raw_field
        return fields


def _listing(items: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Wrap a complete list as ``{"items": [...], "total": n}``."""
    return {"items": list(items), "total": len(items)}


def _health(admin: Admin, params: Params) -> Any:
    """The admin's health, as is."""
    return admin.health()


def _status(admin: Admin, params: Params) -> Any:
    """The admin's status, as is."""
    return admin.status()


def _workers(admin: Admin, params: Params) -> Any:
    """The workers as a listing."""
    return _listing(admin.workers())


def _queue(admin: Admin, params: Params) -> Any:
    """One page of the queued files, in dispatch order."""
    return admin.queue(**_paging(params))


def _tasks(admin: Admin, params: Params) -> Any:
    """The running jobs as a listing."""
    return _listing(admin.tasks())


def _components(admin: Admin, params: Params) -> Any:
    """The components on the workers as a listing (of one kind, on one worker)."""
    kind, worker = params.get("kind"), params.get("worker")
    return _listing(
        admin.components(
            str(kind) if kind is not None else None, str(worker) if worker is not None else None
        )
    )


def _files(admin: Admin, params: Params) -> Any:
    """One page of the files in one state (or all)."""
    state = params.get("state")
    return admin.files(str(state) if state is not None else None, **_paging(params))


def _retry_file(admin: Admin, params: Params) -> Any:
    """Offer a stuck file again."""
    return admin.retry_file(str(params["customer"]), str(params["profile"]), str(params["relpath"]))


def _paging(params: Params) -> dict[str, int]:
    """The ``offset`` and ``limit`` a client gave (the admin's defaults otherwise)."""
    return {name: int(params[name]) for name in ("offset", "limit") if name in params}


def _reports(admin: Admin, params: Params) -> Any:
    """One page of reports, filtered by the query parameters."""
    return admin.reports(**params)


def _pause(admin: Admin, params: Params) -> Any:
    """Ask the admin to pause."""
    return admin.pause()


def _resume(admin: Admin, params: Params) -> Any:
    """Ask the admin to resume."""
    return admin.resume()


def _reload(admin: Admin, params: Params) -> Any:
    """Ask the admin to reload its configuration."""
    return admin.reload()


def _openapi(admin: Admin, params: Params) -> Any:
    """This API's OpenAPI document."""
    from .openapi import openapi_document  # the document module imports this one

    return openapi_document(ROUTES)


def _text(name: str, description: str, max_length: int = 256) -> Param:
    """A free-text query parameter."""
    return Param(name, description, max_length=max_length)


def _paging_params(what: str) -> tuple[Param, Param]:
    """``offset`` and ``limit`` of a paginated listing of ``what``."""
    return (
        Param("offset", f"{what} to skip.", kind="integer", minimum=0, maximum=10**9),
        Param("limit", f"{what} to return at most.", kind="integer", minimum=0, maximum=MAX_LIMIT),
    )


_REPORT_PARAMS = (
    _text("customer", "Only reports of this customer."),
    _text("profile", "Only reports of this profile."),
    Param("outcome", "Only reports with this outcome.", enum=OUTCOMES),
    _text("since", "Only reports of jobs finished at or after this ISO 8601 time.", 64),
    _text("until", "Only reports of jobs finished before this ISO 8601 time.", 64),
    _text("search", "Only reports whose source path contains this text."),
    *_paging_params("Reports"),
)

_NOT_NOW = {409: "The admin cannot do that in its current state."}

ROUTES: tuple[Route, ...] = (
    Route("health", "GET", "getHealth", "Whether the admin is healthy.", _health, schemas.HEALTH),
    Route(
        "status",
        "GET",
        "getStatus",
        "The admin's state, counts and capacity.",
        _status,
        schemas.STATUS,
    ),
    Route(
        "workers",
        "GET",
        "getWorkers",
        "The workers.",
        _workers,
        schemas.listing(schemas.WORKER, "Every worker."),
    ),
    Route(
        "queue",
        "GET",
        "getQueue",
        "The queued files in dispatch order.",
        _queue,
        schemas.page(schemas.QUEUED_FILE, "Queued files, next to dispatch first."),
        params=_paging_params("Files"),
    ),
    Route(
        "tasks",
        "GET",
        "getTasks",
        "The running jobs with their progress.",
        _tasks,
        schemas.listing(schemas.TASK, "Running jobs."),
    ),
    Route(
        "components",
        "GET",
        "getComponents",
        "What runs on the workers: monitors, jobs, failed jobs kept for inspection.",
        _components,
        schemas.listing(schemas.COMPONENT, "Components, by worker, kind and name."),
        params=(
            Param("kind", "Only components of this kind.", enum=schemas.COMPONENT_KINDS),
            _text("worker", "Only components on this worker."),
        ),
    ),
    Route(
        "files",
        "GET",
        "getFiles",
        "The files the admin knows, optionally in one state only.",
        _files,
        schemas.page(
            schemas.FILE, "Files: pending, queued, transcoding, recently finished, stuck."
        ),
        params=(
            Param("state", "Only files in this state.", enum=schemas.FILE_STATES),
            *_paging_params("Files"),
        ),
    ),
    Route(
        "files/retry",
        "POST",
        "retryFile",
        "Offer a stuck file again: it is taken at the next scan of its folder.",
        _retry_file,
        schemas.RETRIED,
        body=(
            _text("customer", "The file's customer."),
            _text("profile", "The file's profile."),
            _text("relpath", "The file's path under the profile's incoming folder.", 4096),
        ),
        status=202,
        errors={404: "The file is not stuck (unknown, or taken again already)."},
    ),
    Route(
        "reports",
        "GET",
        "getReports",
        "One page of job reports, filtered.",
        _reports,
        schemas.REPORTS,
        params=_REPORT_PARAMS,
    ),
    Route(
        "openapi.json",
        "GET",
        "getOpenAPI",
        "This OpenAPI document.",
        _openapi,
        schemas.OPENAPI,
    ),
    Route(
        "pause",
        "POST",
        "pause",
        "Pause the admin.",
        _pause,
        schemas.ACTION,
        errors=_NOT_NOW,
    ),
    Route(
        "resume",
        "POST",
        "resume",
        "Resume the admin after a pause.",
        _resume,
        schemas.ACTION,
        errors=_NOT_NOW,
    ),
    Route(
        "reload",
        "POST",
        "reload",
        "Reload the customers' configuration without a restart.",
        _reload,
        schemas.RELOAD,
        errors={
            **_NOT_NOW,
            422: "The new configuration is invalid; `problems` lists every problem.",
        },
    ),
)
