"""Times as the farm writes them: ISO 8601 in UTC."""

from __future__ import annotations

import functools
from datetime import UTC, datetime

from twisted.internet.interfaces import IReactorTime


def iso(t: float | None) -> str | None:
    """A clock time as ISO 8601 UTC."""
    return datetime.fromtimestamp(t, UTC).isoformat() if t is not None else None


def now_iso(clock: IReactorTime) -> str:
    """The clock's time as an ISO 8601 UTC string."""
    return datetime.fromtimestamp(clock.seconds(), UTC).isoformat()


def parse_time(value: object, key: str = "time") -> datetime | None:
    """Turn an ISO 8601 string or datetime into an aware UTC datetime (None stays None).

    A value without a timezone is taken as UTC. Raise ValueError naming ``key``.
    """
    if value is None:
        return None
    if isinstance(value, str):
        try:
            return _parsed(value)
        except ValueError as e:
            raise ValueError(f"{key}: {value!r} is not an ISO 8601 time") from e
    if not isinstance(value, datetime):
        raise ValueError(f"{key}: expected an ISO 8601 time, not {value!r}")
    return _utc(value)


@functools.lru_cache(maxsize=4096)
def _parsed(text: str) -> datetime:
    """A time's text parsed once: a job's times are read at each step of its end (its
    outcome, its report, its row), and datetimes are immutable."""
    return _utc(datetime.fromisoformat(text))


def _utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)
