"""Times as the farm writes them: ISO 8601 in UTC."""

from __future__ import annotations

from datetime import UTC, datetime

from twisted.internet.interfaces import IReactorTime


def iso(t: float | None) -> str | None:
    """A clock time as ISO 8601 UTC."""
    return datetime.fromtimestamp(t, UTC).isoformat() if t is not None else None


def now_iso(clock: IReactorTime) -> str:
    """The clock's time as an ISO 8601 UTC string."""
    return datetime.fromtimestamp(clock.seconds(), UTC).isoformat()
