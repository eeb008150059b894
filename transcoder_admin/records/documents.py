"""A document's wire form, picked from it without building its record.

A worker's job answers with documents (its outcome, its report file's contents); what
travels is the part of each that the record reads, in the same shape. The worker picks
it here; the admin reads it with ``from_wire``, which checks every field.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

#: The keys of each part of a report document that travel; a nested part names its own.
_Shape = Mapping[str, Any]
_OUTCOME_SHAPE: _Shape = dict.fromkeys(
    ("job_id", "attempt", "outcome", "failure", "report_path", "worker")
)
_REPORT_SHAPE: _Shape = {
    **_OUTCOME_SHAPE,
    **dict.fromkeys(
        (
            "customer",
            "profile",
            "relpath",
            "source",
            "times",
            "committed",
            "backend",
            "machine",
            "comment",
            "cpu_time",
            "real_time",
            "verdict",
            "diagnosis",
        )
    ),
    "file": dict.fromkeys(("size", "checksum", "ctime", "mtime", "mime_guess")),
    "source_info": {
        **dict.fromkeys(("mime_type", "format_name", "duration", "bit_rate")),
        "video": dict.fromkeys(("codec", "width", "height", "fps")),
        "audio": dict.fromkeys(("codec", "rate", "channels")),
    },
    "targets": dict.fromkeys(("name", "type", "outcome", "reason", "outputs", "invalid_output")),
    "qmaster": dict.fromkeys(("batch_id", "cluster")),
}


def _pick(value: Any, shape: _Shape | None) -> Any:
    """The part of ``value`` that ``shape`` names (a list: each of its items)."""
    if shape is None:
        return value
    if isinstance(value, list):
        return [_pick(item, shape) for item in value]
    if not isinstance(value, Mapping):
        return value  # not a document's: from_wire names it
    return {
        k: value[k] if sub is None else _pick(value[k], sub)
        for k, sub in shape.items()
        if k in value
    }


def outcome_wire(document: Mapping[str, Any]) -> dict[str, Any]:
    """The wire form of a job's outcome document, as ``Outcome.to_wire`` gives it.

    What a worker sends without building the record: the receiving side reads it with
    :meth:`Outcome.from_wire`, which checks every field.
    """
    return _pick(document, _OUTCOME_SHAPE)  # type: ignore[no-any-return]


def report_wire(document: Mapping[str, Any]) -> dict[str, Any]:
    """The wire form of a report document: its part :meth:`Report.from_wire` reads."""
    return _pick(document, _REPORT_SHAPE)  # type: ignore[no-any-return]
