"""The parts of a route table: operations, their query parameters and request bodies.

``routes`` holds the table itself; the resources dispatch on it and ``openapi`` turns it
into the OpenAPI document.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

from twisted.internet.defer import Deferred

from .. import prognosis, records
from . import schemas
from .errors import APIError

PREFIX = "/api/v1/"
MAX_LIMIT = 500
MAX_BODY_BYTES = 64 * 1024
#: The highest queue priority (customer 999 × 1000 + profile 999).
MAX_PRIORITY = 999_999
OUTCOMES = records.OUTCOMES
#: The prognostician's verdicts, and ``none`` (a failure it did not expect).
VERDICTS = (*prognosis.VERDICTS, "none")


class Admin(Protocol):
    """The admin's public methods, the only ones the API calls."""

    def health(self) -> Mapping[str, Any]: ...
    def status(self) -> Mapping[str, Any]: ...
    def workers(self) -> Sequence[Mapping[str, Any]]: ...
    def customers(self) -> Sequence[Mapping[str, Any]]: ...
    def metrics(self) -> Deferred[bytes]: ...
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
    def retry_file(
        self, customer: str, profile: str, relpath: str
    ) -> Mapping[str, Any] | Deferred[Any]: ...
    def set_priority(
        self, customer: str, profile: str, relpath: str, priority: int
    ) -> Mapping[str, Any]: ...
    def notifications(
        self, state: str | None = ..., offset: int = ..., limit: int = ...
    ) -> Deferred[Any]: ...
    def retry_notification(self, ident: str) -> Deferred[Any]: ...
    def diagnosis(self, job_id: str) -> Deferred[Any]: ...
    def throughput(self) -> Mapping[str, Any]: ...
    def cancel_task(
        self, customer: str, profile: str, relpath: str, by: str, then: str
    ) -> Deferred[Any]: ...


Params = Mapping[str, str | int]
Handler = Callable[[Admin, Params], Any]


def _shown(raw: str) -> str:
    """A client-supplied value quoted for an error message, cut to a readable length."""
    return repr(raw if len(raw) <= 60 else raw[:60] + "…")


_DATE = r"\d{4}-\d{2}-\d{2}"
#: JSON Schema's formats a text parameter may have, as their grammar (RFC 3339 full-date
#: and date-time, upper case); the calendar is checked by parsing.
FORMATS = {
    "date": re.compile(_DATE, re.ASCII),
    "date-time": re.compile(_DATE + r"T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})", re.ASCII),
}


def _formatted(raw: str, formats: tuple[str, ...], what: str) -> str:
    """``raw`` in upper case (as Python parses it) if it has one of ``formats``, else a 400
    APIError; a time out of Python's range once in UTC becomes the nearest one there is,
    which selects the same reports."""
    text = raw.upper()
    try:
        if not any(FORMATS[name].fullmatch(text) for name in formats):
            raise ValueError(text)
        parsed = datetime.fromisoformat(text)
    except ValueError:
        expected = " or ".join(formats)
        raise APIError(400, f"{what}: {_shown(raw)} is not a {expected} (RFC 3339)") from None
    try:
        if parsed.tzinfo is not None:
            parsed.astimezone(UTC)
    except OverflowError:
        edge = datetime.max if parsed.year == datetime.max.year else datetime.min
        return edge.replace(tzinfo=UTC).isoformat()
    return text


@dataclass(frozen=True)
class Param:
    """One query parameter or field of a request body, with the rules its value must follow."""

    name: str
    description: str
    kind: Literal["string", "integer"] = "string"
    enum: tuple[str, ...] = ()
    minimum: int | None = None
    maximum: int | None = None
    max_length: int | None = None
    #: JSON Schema formats (of ``FORMATS``) a text query parameter must have one of.
    formats: tuple[str, ...] = ()
    #: Whether a request must carry it; None: as where it goes wants (a body's fields are
    #: required, query parameters optional).
    required: bool | None = None

    def needed(self, *, in_body: bool) -> bool:
        """Whether a request must carry it, in a body or in the query string."""
        return in_body if self.required is None else self.required

    def in_range(self, number: int, what: str) -> int:
        """``number`` if within the bounds, else a 400 APIError naming ``what`` it is."""
        if self.minimum is not None and number < self.minimum:
            raise APIError(400, f"{what} {self.name!r} must be ≥ {self.minimum}")
        if self.maximum is not None and number > self.maximum:
            raise APIError(400, f"{what} {self.name!r} must be ≤ {self.maximum}")
        return number

    def parse(self, raw: str) -> str | int:
        """Check ``raw`` and return the value to hand to the admin, or raise a 400 APIError."""
        if self.kind == "integer":
            if not (raw.isascii() and raw.isdigit()) or len(raw) > 12:
                raise APIError(
                    400, f"query parameter {self.name!r}: {_shown(raw)} is not a whole number"
                )
            return self.in_range(int(raw), "query parameter")
        return self.text(raw, "query parameter")

    def text(self, raw: str, what: str) -> str:
        """``raw`` if it is one of ``enum``, short enough and of one of ``formats``;
        else a 400 APIError naming ``what`` it is (a query parameter, a field)."""
        if self.enum and raw not in self.enum:
            allowed = ", ".join(self.enum)
            raise APIError(400, f"{what} {self.name!r}: {_shown(raw)} is not one of {allowed}")
        if self.max_length is not None and len(raw) > self.max_length:
            raise APIError(400, f"{what} {self.name!r} is longer than {self.max_length} characters")
        if self.formats:
            return _formatted(raw, self.formats, f"{what} {self.name!r}")
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
    #: Fields of the JSON object the request body must be (required unless marked not:
    #: non-empty strings, or whole numbers for integer ones); an operation without them
    #: ignores its body.
    body: tuple[Param, ...] = ()
    #: The status of a successful answer.
    status: int = 200
    #: Whether it answers without a token when the API has tokens (health only).
    public: bool = False
    #: Whether the handler gets the caller as ``params["caller"]`` (the token's name;
    #: empty without tokens) and ``params["role"]``: for actions that record who asked.
    names_caller: bool = False

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
        for name, param in known.items():
            if name not in values and param.needed(in_body=False):
                raise APIError(400, f"query parameter {name!r} is required")
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
            if param.kind == "integer":
                number = value.get(name)
                if isinstance(number, float) and number.is_integer():
                    number = int(number)  # 5.0 is an integer to JSON Schema, as to clients
                if not isinstance(number, int) or isinstance(number, bool):
                    raise APIError(
                        400, f"field {name!r} of the request body must be a whole number"
                    )
                fields[name] = param.in_range(number, "field")
                continue
            if name not in value and not param.needed(in_body=True):
                continue
            if not isinstance(value.get(name), str) or not value[name]:
                raise APIError(
                    400, f"field {name!r} of the request body must be a non-empty string"
                )
            fields[name] = param.text(value[name], "field")
        return fields
