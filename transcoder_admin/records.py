"""The records that cross the seam between the admin and its workers."""

from __future__ import annotations

from typing import Any

#: What a worker needs of a spec to fail a source and write its report (small: no targets).
REPORT_SPEC_KEYS = (
    "job_id",
    "attempt",
    "customer",
    "profile",
    "relpath",
    "source",
    "failed",
    "report_done",
    "report_failed",
    "backend",
    "detected",
    "queued",
    "started",
)


def report_spec(spec: dict[str, Any]) -> dict[str, Any]:
    """The part of a spec that :func:`fail_source` and :func:`build_report` read."""
    return {k: spec[k] for k in REPORT_SPEC_KEYS if k in spec}
