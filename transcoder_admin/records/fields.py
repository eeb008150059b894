"""Reading a record's fields from a wire value, each checked; errors name the field."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..times import parse_time


class BadRecord(ValueError):
    """A record's field is missing or wrong; ``field`` names it (``failure.kind``)."""

    def __init__(self, name: str, problem: str) -> None:
        super().__init__(f"{name}: {problem}")
        self.field = name


def mapping(value: Any, name: str, required: bool = False) -> Mapping[str, Any]:
    if type(value) is dict:  # the common case, without the ABC's slower check
        return value
    if value is None and not required:
        return {}
    if not isinstance(value, Mapping):
        raise BadRecord(name, f"expected a mapping, not {value!r}")
    return value


def text(value: Any, name: str) -> str:
    if not isinstance(value, str):
        raise BadRecord(name, f"expected a string, not {value!r}")
    return value


def required(data: Mapping[str, Any], key: str) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value:
        raise BadRecord(key, f"required, a non-empty string (got {value!r})")
    return value


def optional(data: Mapping[str, Any], key: str, kind: type, name: str | None = None) -> Any:
    value = data.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, kind):
        raise BadRecord(name or key, f"expected {kind.__name__}, not {value!r}")
    return value


def number(data: Mapping[str, Any], key: str, name: str | None = None) -> float | None:
    value = data.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise BadRecord(name or key, f"expected a number, not {value!r}")
    return float(value)


def time(data: Mapping[str, Any], key: str, parent: str) -> str | None:
    """An ISO 8601 time as text (a report file's YAML may hold it as a timestamp);
    a bad one is named ``parent.key``."""
    value = data.get(key)
    if value is None:
        return None
    try:
        when = parse_time(value, key)
    except ValueError as e:
        raise BadRecord(f"{parent}.{key}", str(e).split(": ", 1)[-1]) from None
    assert when is not None
    return value if isinstance(value, str) else when.isoformat()


def file_name(data: Mapping[str, Any], key: str) -> str | None:
    """A file name (never a path: it is opened beside the file that names it)."""
    name = optional(data, key, str)
    if name is not None and (not name or "/" in name or name in (".", "..") or "\x00" in name):
        raise BadRecord(key, f"expected a file name, not {name!r}")
    return name
