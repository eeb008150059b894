"""SQL notifications: one statement with bound parameters, on the customer's database.

Each database gets its engine and one thread of its own (``reports.pool.SQLPool``): a
slow database holds up only its own notifications, never the reactor.  The statement
is the configured text with ``:name`` parameters bound to the frozen values (never
built into the text).  A database that cannot be reached is tried again; an error of
the statement itself (a missing table, a broken constraint) gives up.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection, make_url

from ..reactors import IFarmReactor
from ..reports.pool import SQLPool
from ..reports.schema import is_transient
from .delivery import DeliveryFailed


class SqlSender:
    """Runs SQL notifications, each database in its own thread."""

    def __init__(self, reactor: IFarmReactor, stop_timeout: float = 10.0) -> None:
        self.reactor = reactor
        self.stop_timeout = stop_timeout
        self._pools: dict[str, SQLPool] = {}

    def _pool(self, database: str) -> SQLPool:
        pool = self._pools.get(database)
        if pool is None:
            url = make_url(database)
            name = f"notification database {url.render_as_string(hide_password=True)}"
            pool = SQLPool(url, 1, self.reactor, self.stop_timeout, name=name)
            pool.open()
            self._pools[database] = pool
        return pool

    async def send(self, ident: str, payload: Mapping[str, Any]) -> None:
        """One attempt; DeliveryFailed says why it failed and whether to try again."""
        statement = text(str(payload["sql"]))
        params = dict(payload.get("params") or {})

        def run(conn: Connection) -> None:
            conn.execute(statement, params)

        try:
            pool = self._pool(str(payload["database"]))
            await pool.run(run, write=True)
        except Exception as e:
            reason = " ".join(str(getattr(e, "orig", None) or e).split())[:300]
            raise DeliveryFailed(reason or type(e).__name__, is_transient(e)) from None

    async def close(self) -> None:
        """Close every database's connections and thread."""
        pools, self._pools = list(self._pools.values()), {}
        for pool in pools:
            await pool.close()


__all__ = ["SqlSender"]
