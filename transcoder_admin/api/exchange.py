"""Answering one API request with JSON: the encoding, and the exchange that knows whether
the client is still there (the API's resources and the dashboard's errors)."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from enum import Enum
from pathlib import PurePath
from typing import Any

from twisted.internet.defer import Deferred
from twisted.python.failure import Failure
from twisted.web.server import Request

from .errors import APIError

CONTENT_TYPE = b"application/json; charset=utf-8"


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


class Exchange:
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
