"""What the admin accepts from a worker: its facts, its heartbeats and its outcomes.

A worker logs in with a password, but its messages are still only claims.  Facts and
heartbeats are checked for types and ranges before anything reads them (one bad
``max_jobs`` must not break dispatch or ``/status`` for the whole farm), and an
outcome or a database row must belong to the job the admin started: same job id and
attempt, the job's own report path, the job's own customer, profile and file.  A
worker never gives the admin a path or a setting: adopted jobs get their spec from
the admin's configuration and journal, not from the worker.
"""

from __future__ import annotations

import hashlib
import math
import os
import re
from typing import Any, TypeVar

from ..context.paths import NAME_HASH
from ..credentials import WORKER_NAME
from ..records import BadRecord, JobSpec, Outcome, Report

O = TypeVar("O", bound=Outcome)  # noqa: E741

#: The bound of ``workers.max-jobs`` and of a worker's ``--max-jobs``.
MAX_JOBS = 64
#: Longest lists a worker may report (jobs, pending files, kept failures, monitors).
MAX_JOBS_LISTED = 1024
MAX_PENDING = 1000
MAX_MESSAGES = 100
MAX_COMPONENTS = 10_000
MAX_TEXT = 4096
#: A job id: what ``new_job_id`` makes, or any short folder-safe name.
JOB_ID = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,127}")
#: A root's name, as virtual paths (``root:/path``) allow it.
ROOT_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")


class BadFacts(ValueError):
    """A worker sent a value the admin does not accept; ``field`` names it."""

    def __init__(self, field: str, why: str) -> None:
        super().__init__(f"{field}: {why}")
        self.field = field
        self.why = why


def _text(value: Any, field: str, optional: bool = False) -> str | None:
    if value is None and optional:
        return None
    if not isinstance(value, str) or len(value) > MAX_TEXT:
        raise BadFacts(field, f"expected a text of at most {MAX_TEXT} characters")
    return value


def _int(value: Any, field: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise BadFacts(field, f"expected a whole number from {low} to {high}, not {value!r:.40}")
    return value


def _number(value: Any, field: str, positive: bool = False) -> float:
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or (positive and value <= 0):
        kind = "a positive number" if positive else "a finite number"
        raise BadFacts(field, f"expected {kind}, not {value!r:.40}")
    return float(value)


def _list(value: Any, field: str, limit: int) -> list[Any]:
    if not isinstance(value, list) or len(value) > limit:
        raise BadFacts(field, f"expected a list of at most {limit} items")
    return value


def _mapping(value: Any, field: str) -> dict[str, Any]:
    if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
        raise BadFacts(field, "expected a mapping")
    return value


def worker_name(name: Any) -> str:
    """A worker's login name, which also names its folders (``.failed/NAME``)."""
    if not isinstance(name, str) or not WORKER_NAME.fullmatch(name):
        raise BadFacts("name", "must be letters, digits, '.', '_' or '-' (at most 64)")
    return name


def job_id(value: Any, field: str = "job_id") -> str:
    """A job id as a worker reports it."""
    if not isinstance(value, str) or not JOB_ID.fullmatch(value):
        raise BadFacts(field, f"expected a job id, not {value!r:.40}")
    return value


def facts(name: str, info: Any) -> dict[str, Any]:
    """A worker's hello facts, checked; raises :class:`BadFacts` naming the first bad one."""
    info = _mapping(info, "facts")
    worker_name(name)
    if info.get("name", name) != name:
        raise BadFacts("name", f"the worker logged in as {name!r}")
    roots = _mapping(info.get("roots", {}), "roots")
    for root, folder in roots.items():
        if not isinstance(folder, str) or not ROOT_NAME.fullmatch(root):
            raise BadFacts("roots", "expected root names mapped to folders")
    checked = dict(info, name=name, roots=dict(roots))
    checked["max_jobs"] = _int(info.get("max_jobs"), "max_jobs", 1, MAX_JOBS)
    checked["host"] = _text(info.get("host"), "host", optional=True)
    if info.get("pid") is not None:
        _int(info.get("pid"), "pid", 1, 2**31)
    if "heartbeat_interval" in info:
        _number(info["heartbeat_interval"], "heartbeat_interval", positive=True)
    if "components" in info:
        checked["components"] = components(info["components"])
    return checked


def jobs(value: Any, field: str = "jobs") -> list[dict[str, Any]]:
    """The jobs a worker lists: dicts with a job id, an attempt, a state and progress."""
    rows = _list(value, field, MAX_JOBS_LISTED)
    for i, row in enumerate(rows):
        where = f"{field}[{i}]"
        row = _mapping(row, where)
        job_id(row.get("job_id"), f"{where}.job_id")
        _int(row.get("attempt"), f"{where}.attempt", 0, 1_000_000)
        _text(row.get("state"), f"{where}.state", optional=True)
        key = row.get("key")
        if key is not None and not (
            isinstance(key, list) and len(key) in (0, 3) and all(isinstance(k, str) for k in key)
        ):
            raise BadFacts(f"{where}.key", "expected customer, profile and file")
        for name, number in _mapping(row.get("progress") or {}, f"{where}.progress").items():
            if isinstance(number, str):
                _text(number, f"{where}.progress.{name}")
            elif number is not None:
                _number(number, f"{where}.progress.{name}")
        if "spec" in row:
            _mapping(row["spec"], f"{where}.spec")  # only matched, never used
    return rows


def components(value: Any) -> dict[str, Any] | None:
    """A worker's other components: the customers it monitors, its kept failed jobs."""
    if value is None:
        return None
    value = _mapping(value, "components")
    for customer in _list(value.get("monitors") or [], "components.monitors", MAX_COMPONENTS):
        _text(customer, "components.monitors")
    for i, kept in enumerate(_list(value.get("failed") or [], "components.failed", MAX_COMPONENTS)):
        kept = _mapping(kept, f"components.failed[{i}]")
        # Named after a folder the worker found: any name (shown, never used as a path).
        _text(kept.get("job_id"), f"components.failed[{i}].job_id")
    return value


def heartbeat(state: Any) -> dict[str, Any]:
    """A heartbeat, checked: its jobs, its monitors' pending files, its components."""
    state = _mapping(state, "heartbeat")
    checked = dict(state)
    if "jobs" in state:
        jobs(state["jobs"])
    for i, row in enumerate(_list(state.get("pending") or [], "pending", MAX_PENDING)):
        row = _mapping(row, f"pending[{i}]")
        for name in ("customer", "profile", "relpath"):
            _text(row.get(name), f"pending[{i}].{name}")
        _number(row.get("detected"), f"pending[{i}].detected")
        if row.get("size") is not None:
            _int(row.get("size"), f"pending[{i}].size", 0, 2**63)
    if "components" in state:
        checked["components"] = components(state["components"])
    if "time" in state:
        _number(state["time"], "time")
    for i, message in enumerate(_list(state.get("messages") or [], "messages", MAX_MESSAGES)):
        message = _mapping(message, f"messages[{i}]")
        _text(message.get("level"), f"messages[{i}].level")
        _text(message.get("text"), f"messages[{i}].text")
    return checked


def monitor_event(event: Any) -> dict[str, Any]:
    """News of a worker's monitor: a file's customer, profile and path below incoming."""
    event = _mapping(event, "event")
    _text(event.get("event"), "event.event")
    _text(event.get("customer"), "event.customer")
    if event.get("event") in ("added", "removed"):
        _text(event.get("profile"), "event.profile")
        relpath = _text(event.get("relpath"), "event.relpath") or ""
        parts = relpath.split("/")
        if not relpath or relpath.startswith("/") or ".." in parts or "\x00" in relpath:
            raise BadFacts("event.relpath", "expected a path below the incoming folder")
        if "detected_at" in event:
            _number(event["detected_at"], "event.detected_at")
        for number in _list(event.get("sig") or [], "event.sig", 8):
            _number(number, "event.sig")
    return event


def read_outcome(
    job_id: str, attempt: int | None, spec: JobSpec | None, value: Any, kind: type[O]
) -> O:
    """The record of a worker's outcome or report, if it is the job's own.

    The job is the one the admin started or adopted: its id and attempt, and its
    ``spec`` when the admin has it.  Then the report path must be the job's own (its
    ``report_done`` or ``report_failed``, or none at all) and a report must name the
    job's own customer, profile and file.  Raise :class:`BadRecord` naming the first
    field that is wrong.
    """
    record: O = value if isinstance(value, kind) else kind.from_wire(value)  # type: ignore[assignment]
    if record.job_id != job_id:
        raise BadRecord("job_id", "not the job's own")
    if record.attempt != attempt:
        raise BadRecord("attempt", "not the job's own")
    if spec is None:
        return record
    if not _own_report_path(record.report_path, spec.report_path(record.done)):
        raise BadRecord("report_path", "not the job's own")
    if isinstance(record, Report):
        for name in ("customer", "profile", "relpath"):
            if getattr(record, name) != getattr(spec, name):
                raise BadRecord(name, "not the job's own")
    return record


def outcome_mismatch(spec: JobSpec, value: Any, kind: type[Outcome] = Outcome) -> str | None:
    """The first field of an outcome (or report) that is not the job's own; None if all are."""
    try:
        read_outcome(spec.job_id, spec.attempt, spec, value, kind)
    except BadRecord as e:
        return e.field
    return None


def _own_report_path(path: Any, expected: Any) -> bool:
    """None, the job's report path, or that path's name shortened by ``fit_name``.

    A worker shortens a report name that is too long for its folder's file system:
    the same folder, a prefix of the name, ``~`` and the hash of the whole name, and
    the name's own ending.
    """
    if path is None or path == expected:
        return True
    if not isinstance(path, str) or not isinstance(expected, str):
        return False
    folder, _, name = path.rpartition("/")
    expected_folder, _, expected_name = expected.rpartition("/")
    if folder != expected_folder:
        return False
    digest = hashlib.sha256(os.fsencode(expected_name)).hexdigest()[:NAME_HASH]
    head, mark, rest = name.rpartition("~" + digest)
    return bool(mark) and expected_name.startswith(head) and expected_name.endswith(rest)


__all__ = [
    "BadFacts",
    "MAX_JOBS",
    "components",
    "facts",
    "heartbeat",
    "jobs",
    "monitor_event",
    "outcome_mismatch",
    "read_outcome",
    "worker_name",
]
