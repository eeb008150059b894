"""Report rows: their values checked and normalised for the database, read back as plain
dicts, and the statements that write and select them (built here, run by ``ReportsDB``)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from ..prognosis import VERDICTS
from ..times import parse_time
from .escape import escape_text
from .model import (
    COLUMNS,
    DATETIME_COLUMNS,
    OUTCOMES,
    TEXT_COLUMNS,
    transcode_reports,
)

MAX_LIMIT = 500
ORDER_COLUMNS = (
    "finish_time",
    "start_time",
    "queueing_time",
    "detection_time",
    "customer",
    "profile",
    "relative_path",
    "outcome",
    "job_id",
    "file_size",
    "cpu_time",
    "real_time",
)
REQUIRED = ("job_id", "customer", "profile", "relative_path", "outcome")
DEFAULTS = {"attempt_count": 1, "invalid_output": False}
#: Spooled rows written at once at start-up (each batch waits for the previous one).


def upsert_statement(backend: str) -> Any:
    """The insert-or-update of one report row, built once: every row binds all columns.

    A row from an older attempt never replaces a newer attempt's row.
    """
    insert: Any = postgresql.insert if backend == "postgresql" else sqlite.insert
    table = transcode_reports
    statement = insert(table)
    return statement.on_conflict_do_update(
        index_elements=[table.c.job_id],
        set_={c: statement.excluded[c] for c in COLUMNS if c != "job_id"},
        where=table.c.attempt_count <= statement.excluded.attempt_count,
    )


def row_values(row: dict[str, Any]) -> dict[str, Any]:
    """Check a row's keys, normalise its times to UTC and escape its texts (``escape``).

    Every column gets a value. Live rows and replayed report files both come here, so
    a name that is not UTF-8 is stored the same way by either.
    """
    if not isinstance(row, dict):
        raise ValueError(f"a report row must be a dict, not {type(row).__name__}")
    unknown = sorted(set(row) - set(COLUMNS))
    if unknown:
        raise ValueError(f"unknown column(s) {', '.join(map(str, unknown))}")
    missing = [c for c in REQUIRED if row.get(c) in (None, "")]
    if missing:
        raise ValueError(f"missing required column(s) {', '.join(missing)}")
    values: dict[str, Any] = {c: row.get(c) for c in COLUMNS}
    for column, default in DEFAULTS.items():
        if values[column] is None:
            values[column] = default
    for column in DATETIME_COLUMNS:
        values[column] = parse_time(values[column], column)
    for column in TEXT_COLUMNS:
        text = values[column]
        if isinstance(text, str):
            values[column] = escape_text(text)
    return values


def row_dict(mapping: Any) -> dict[str, Any]:
    """A plain dict of a result row, with times as ISO 8601 strings in UTC."""
    out = dict(mapping)
    for column in DATETIME_COLUMNS:
        value = out.get(column)
        if isinstance(value, datetime):
            # SQLite keeps no timezone: every stored time is UTC.
            value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
            out[column] = value.isoformat()
    return out


def _count_argument(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{name} must be an integer >= 0, not {value!r}")
    return value


def _ordering(order: str) -> list[Any]:
    """``"<column> [asc|desc]"`` → ORDER BY clauses, ties broken by job id."""
    parts = order.split() if isinstance(order, str) else []
    direction = parts[1].lower() if len(parts) == 2 else "asc"
    if (
        not parts
        or len(parts) > 2
        or parts[0] not in ORDER_COLUMNS
        or direction
        not in (
            "asc",
            "desc",
        )
    ):
        raise ValueError(
            f"order must be '<column> [asc|desc]' with a column among "
            f"{', '.join(ORDER_COLUMNS)}, not {order!r}"
        )
    column = transcode_reports.c[parts[0]]
    key = column.desc() if direction == "desc" else column.asc()
    return [key.nulls_last(), transcode_reports.c.job_id.asc()]


class Filters:
    """The checked filters of one report query; ValueError names a bad argument."""

    def __init__(
        self,
        *,
        customer: str | None = None,
        profile: str | None = None,
        outcome: str | None = None,
        verdict: str | None = None,
        since: datetime | str | None = None,
        until: datetime | str | None = None,
        search: str | None = None,
        offset: int = 0,
        limit: int = 50,
        order: str = "finish_time desc",
    ) -> None:
        t = transcode_reports
        conditions: list[ColumnElement[bool]] = []
        for column, value in (("customer", customer), ("profile", profile)):
            if value is not None:
                if not isinstance(value, str):
                    raise ValueError(f"{column} must be a string, not {value!r}")
                conditions.append(t.c[column] == value)
        if outcome is not None:
            if outcome not in OUTCOMES:
                raise ValueError(f"outcome must be one of {', '.join(OUTCOMES)}, not {outcome!r}")
            conditions.append(t.c.outcome == outcome)
        if verdict is not None:
            if verdict not in (*VERDICTS, "none"):
                choices = ", ".join((*VERDICTS, "none"))
                raise ValueError(f"verdict must be one of {choices}, not {verdict!r}")
            judged = t.c.verdict
            conditions.append(judged.is_(None) if verdict == "none" else judged == verdict)
        since_time = parse_time(since, "since")
        until_time = parse_time(until, "until")
        if since_time is not None:
            conditions.append(t.c.finish_time >= since_time)
        if until_time is not None:
            conditions.append(t.c.finish_time < until_time)
        if search:
            if not isinstance(search, str):
                raise ValueError(f"search must be a string, not {search!r}")
            conditions.append(t.c.relative_path.icontains(search, autoescape=True))
        self.conditions = conditions
        self.offset = _count_argument("offset", offset)
        self.limit = min(_count_argument("limit", limit), MAX_LIMIT)
        self.ordering = _ordering(order)

    def page(self, conn: Connection) -> dict[str, Any]:
        """In a database thread: the matching rows of the page, and how many match."""
        t = transcode_reports
        total = conn.execute(select(func.count()).select_from(t).where(*self.conditions)).scalar()
        rows = conn.execute(
            select(t)
            .where(*self.conditions)
            .order_by(*self.ordering)
            .offset(self.offset)
            .limit(self.limit)
        ).all()
        return {
            "total": int(total or 0),
            "offset": self.offset,
            "limit": self.limit,
            "items": [row_dict(row._mapping) for row in rows],
        }


def select_row(conn: Connection, job_id: str) -> dict[str, Any] | None:
    """In a database thread: the row of ``job_id``, or None."""
    t = transcode_reports
    row = conn.execute(select(t).where(t.c.job_id == job_id)).first()
    return None if row is None else row_dict(row._mapping)


def count_outcomes(conn: Connection) -> dict[str, int]:
    """In a database thread: how many rows have each outcome."""
    t = transcode_reports
    counts = dict.fromkeys(OUTCOMES, 0)
    for outcome, count in conn.execute(select(t.c.outcome, func.count()).group_by(t.c.outcome)):
        counts[outcome] = int(count)
    return counts
