"""How the API reports errors: one exception type and the one table that maps domain errors."""

from __future__ import annotations

from typing import Any

from transcoder_admin.config.errors import ConfigError
from transcoder_admin.errors import (
    InvalidStateError,
    NoDiagnosis,
    NoSuchNotification,
    NotQueued,
    NotRunning,
    NotStuck,
)


class APIError(Exception):
    """A request the API answers with an HTTP error status and a JSON message."""

    def __init__(
        self, code: int, message: str, *, headers: dict[str, str] | None = None, **details: Any
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.headers = dict(headers or {})
        self.details = details

    def body(self) -> dict[str, Any]:
        """The JSON error document: ``{"error": {"code", "message", ...details}}``."""
        return {"error": {"code": self.code, "message": self.message, **self.details}}


def api_error_for(error: BaseException, *, took_input: bool) -> APIError | None:
    """Translate an exception raised by a handler or the admin into an API error.

    This is the only place where domain errors meet HTTP status codes.
    ``took_input`` says whether the admin call received client-supplied values,
    so that its ``ValueError`` means "bad request" rather than a bug.  ``None``
    means the error was unexpected and must be logged and answered with 500.
    """
    if isinstance(error, APIError):
        return error
    if isinstance(error, InvalidStateError):
        return APIError(409, str(error) or "the admin cannot do that in its current state")
    if isinstance(error, NotStuck | NotQueued | NotRunning | NoSuchNotification | NoDiagnosis):
        return APIError(404, str(error))
    if isinstance(error, ConfigError):
        problems = [str(problem) for problem in error.problems]
        return APIError(422, "the new configuration is invalid", problems=problems)
    if isinstance(error, ValueError) and took_input:
        return APIError(400, str(error) or "invalid query value")
    return None
