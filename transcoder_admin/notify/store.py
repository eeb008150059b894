"""The durable queue of notifications: an SQLite file in the admin's state folder.

A notification is written down (frozen: ``render.Message``) before its first attempt,
and every attempt's result is written after it; a restart or a crash goes on from
there, so each is delivered at least once (a receiver drops repeats by its id).  It
does not live in the reports database: notifications must go out while that one is
down.  Every statement runs in the store's own thread (``reports.pool.SQLPool``).
"""

from __future__ import annotations

import json
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Column, Float, Integer, MetaData, String, Table, Text, event, func, select
from sqlalchemy.engine import Connection, make_url
from twisted.internet import defer

from ..reactors import IFarmReactor
from ..reports.pool import SQLPool
from ..times import iso
from .render import Message

#: A notification's states: waiting for its next attempt, delivered, given up.
QUEUED, DELIVERED, FAILED = "queued", "delivered", "failed"
STATES = (QUEUED, DELIVERED, FAILED)

metadata = MetaData()
notifications = Table(
    "notifications",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("kind", String(8), nullable=False),
    Column("trigger", String(16), nullable=False),
    Column("destination", Text, nullable=False),
    Column("payload", Text, nullable=False),
    Column("job_id", Text, nullable=False, default=""),
    Column("customer", Text, nullable=False, default=""),
    Column("profile", Text, nullable=False, default=""),
    Column("relpath", Text, nullable=False, default=""),
    Column("target", Text, nullable=False, default=""),
    Column("state", String(16), nullable=False, index=True),
    Column("attempts", Integer, nullable=False, default=0),
    Column("created", Float, nullable=False),
    Column("next_at", Float, nullable=False, index=True),
    Column("finished", Float),
    Column("last_error", Text),
)


@dataclass(frozen=True)
class Stored:
    """A notification as the store keeps it."""

    id: str
    kind: str
    trigger: str
    destination: str
    payload: dict[str, Any]
    job_id: str
    customer: str
    profile: str
    relpath: str
    target: str
    state: str
    attempts: int
    created: float
    next_at: float
    finished: float | None
    last_error: str | None

    @classmethod
    def of_row(cls, row: Any) -> Stored:  # noqa: D102
        values = dict(row._mapping)
        values["payload"] = json.loads(values["payload"])
        return cls(**values)

    def describe(self) -> dict[str, Any]:
        """What the API shows: everything but the frozen payload (it may hold secrets)."""
        return {
            "id": self.id,
            "kind": self.kind,
            "trigger": self.trigger,
            "destination": self.destination,
            "job_id": self.job_id,
            "customer": self.customer,
            "profile": self.profile,
            "relpath": self.relpath,
            "target": self.target or None,
            "state": self.state,
            "attempts": self.attempts,
            "created": iso(self.created),
            "next_attempt": iso(self.next_at) if self.state == QUEUED else None,
            "finished": iso(self.finished),
            "last_error": self.last_error,
        }


class NotificationStore:
    """The queue's file and the thread every statement runs in."""

    def __init__(self, path: str, reactor: IFarmReactor, stop_timeout: float = 10.0) -> None:
        self.path = path
        url = make_url(f"sqlite:///{path}")
        self._sql = SQLPool(url, 1, reactor, stop_timeout, name="notification queue")

    async def open(self) -> None:
        """Create the file (and its table) if needed and start the store's thread."""
        self._sql.open()
        assert self._sql.engine is not None
        # Every queued notification must survive a power cut, not only a crash.
        event.listen(self._sql.engine, "connect", _synchronous_full)
        await self._sql.run(lambda conn: metadata.create_all(conn), write=True)

    async def close(self) -> None:
        """Stop the thread (what is written stays for the next start)."""
        await self._sql.close()

    def add(self, messages: list[Message], now: float) -> defer.Deferred[None]:
        """Write ``messages`` down as queued, due at once, in their order (each a
        microsecond after the one before: the first is tried first, and listed so)."""
        rows = []
        for index, m in enumerate(messages):
            at = now + index * 1e-6
            rows.append(
                {**m.to_row(), "state": QUEUED, "attempts": 0, "created": at, "next_at": at}
            )

        def insert(conn: Connection) -> None:
            if rows:
                conn.execute(notifications.insert(), rows)

        return self._sql.run(insert, write=True)

    def due(
        self, now: float, limit: int, exclude: Collection[str] = ()
    ) -> defer.Deferred[list[Stored]]:
        """Queued notifications whose next attempt is due, the earliest first (but those
        in ``exclude``: under way)."""
        query = (
            select(notifications)
            .where(notifications.c.state == QUEUED, notifications.c.next_at <= now)
            .order_by(notifications.c.next_at, notifications.c.created)
            .limit(limit)
        )
        if exclude:
            query = query.where(notifications.c.id.not_in(sorted(exclude)))
        return self._sql.run(lambda conn: [Stored.of_row(r) for r in conn.execute(query)])

    def next_due(self, exclude: Collection[str] = ()) -> defer.Deferred[float | None]:
        """When the next queued notification not in ``exclude`` is due (None: none is)."""
        query = select(func.min(notifications.c.next_at)).where(notifications.c.state == QUEUED)
        if exclude:
            query = query.where(notifications.c.id.not_in(sorted(exclude)))
        return self._sql.run(lambda conn: conn.execute(query).scalar())

    def attempted(
        self,
        ident: str,
        *,
        state: str,
        attempts: int,
        next_at: float,
        now: float,
        error: str | None,
    ) -> defer.Deferred[None]:
        """Write down an attempt's result."""
        values = {
            "state": state,
            "attempts": attempts,
            "next_at": next_at,
            "last_error": error,
            "finished": now if state != QUEUED else None,
        }
        update = notifications.update().where(notifications.c.id == ident).values(**values)

        def write(conn: Connection) -> None:
            conn.execute(update)

        return self._sql.run(write, write=True)

    def retry(self, ident: str, now: float) -> defer.Deferred[Stored | None]:
        """Queue a given-up notification again, due now; None if there is no such one.

        A notification still queued is left as it is (and returned); a delivered one is
        not sent again (returned unchanged).
        """

        def again(conn: Connection) -> Stored | None:
            where = notifications.c.id == ident
            conn.execute(
                notifications.update()
                .where(where, notifications.c.state == FAILED)
                .values(state=QUEUED, attempts=0, next_at=now, finished=None)
            )
            row = conn.execute(select(notifications).where(where)).first()
            return Stored.of_row(row) if row is not None else None

        return self._sql.run(again, write=True)

    def listed(
        self, state: str | None, limit: int, offset: int = 0
    ) -> defer.Deferred[tuple[list[Stored], int]]:
        """One page of notifications, newest first, and how many there are in all."""
        query = select(notifications).order_by(
            notifications.c.created.desc(), notifications.c.id.desc()
        )
        total = select(func.count()).select_from(notifications)
        if state is not None:
            query = query.where(notifications.c.state == state)
            total = total.where(notifications.c.state == state)
        query = query.limit(limit).offset(offset)

        def page(conn: Connection) -> tuple[list[Stored], int]:
            return [Stored.of_row(r) for r in conn.execute(query)], conn.execute(
                total
            ).scalar() or 0

        return self._sql.run(page)

    def counts(self) -> defer.Deferred[dict[str, int]]:
        """How many notifications are in each state."""
        query = select(notifications.c.state, func.count()).group_by(notifications.c.state)

        def count(conn: Connection) -> dict[str, int]:
            found = dict.fromkeys(STATES, 0)
            found.update({state: n for state, n in conn.execute(query)})
            return found

        return self._sql.run(count)


def _synchronous_full(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA synchronous=FULL")
    finally:
        cursor.close()


__all__ = ["DELIVERED", "FAILED", "QUEUED", "STATES", "NotificationStore", "Stored"]
