"""The reports database service: ``ReportsDB`` runs every statement in its own threads.

SQL runs only in ``ReportsDB``'s bounded thread pool; every method returns a Deferred
and hands back plain dicts and lists. Saving a row is an idempotent upsert by job id,
retried with back-off while the database is unreachable: a database that is down
delays rows, it never loses them (DESIGN.md 7, CONVENTIONS.md 10), not even when the
admin is killed meanwhile: the rows wait in a spool (``spool``) that the next start
writes. Texts are stored escaped (``escape``), so no file name can get a row refused.
The schema checks and upgrades live in ``schema`` and are importable from here too.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy import Engine, func, select
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection
from twisted.application.service import Service
from twisted.internet import defer, task, threads
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.python.threadpool import ThreadPool

from .escape import escape_text
from .model import (
    COLUMNS,
    DATETIME_COLUMNS,
    OUTCOMES,
    TEXT_COLUMNS,
    parse_time,
    transcode_reports,
)
from .schema import (
    WRITE_OPTION,
    StaleSchemaError,
    check_schema,
    check_schema_on,
    check_url,
    create_reports_engine,
    current_revision,
    describe_error,
    head_revision,
    is_transient,
    upgrade,
)
from .spool import RowSpool

__all__ = [
    "ReportsDB",
    "StaleSchemaError",
    "check_schema",
    "current_revision",
    "head_revision",
    "upgrade",
]

T = TypeVar("T")

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
_REQUIRED = ("job_id", "customer", "profile", "relative_path", "outcome")
_DEFAULTS = {"attempt_count": 1, "invalid_output": False}
#: Spooled rows written at once at start-up (each batch waits for the previous one).
_REPLAY_BATCH = 100


class ReportsDB(Service):
    """The reports database: owns the engine and a bounded thread pool for its SQL.

    ``start()`` opens it and checks (or creates) the schema; ``stop()`` waits a bounded
    time for queued writes, then stops the threads and disposes of the engine. All
    query methods return Deferreds and are called from the reactor thread.
    """

    log = Logger()
    name = "reports-db"

    def __init__(
        self,
        url: str,
        pool_size: int = 4,
        reactor: Any = None,
        *,
        retry_delay: float = 0.5,
        max_retry_delay: float = 30.0,
        stop_timeout: float = 10.0,
    ) -> None:
        """Keep the settings; nothing is opened until ``start()``."""
        if pool_size < 1:
            raise ValueError(f"pool_size must be at least 1, not {pool_size}")
        self._url = check_url(url)
        self._threads = 1 if self._url.get_backend_name() == "sqlite" else pool_size
        if reactor is None:
            from twisted.internet import reactor
        self.reactor = reactor
        self._retry_delay = retry_delay
        self._max_retry_delay = max_retry_delay
        self._stop_timeout = stop_timeout
        self._engine: Engine | None = None
        self._pool: ThreadPool | None = None
        self._shutdown_trigger: Any = None
        self._starting: defer.Deferred[None] | None = None
        self._stopping: defer.Deferred[None] | None = None
        self._start_result = _Outcome()
        self._stop_result = _Outcome()
        self._writes: dict[defer.Deferred[None], str] = {}
        self._drained: defer.Deferred[None] | None = None
        self._spool: RowSpool | None = None
        self._backlog: list[tuple[int, dict[str, Any]]] = []
        self._replaying: defer.Deferred[None] | None = None
        self._upsert = _upsert_statement(self._url.get_backend_name())

    @property
    def display_url(self) -> str:
        """The database URL with its password hidden, for logs and the status API."""
        return self._url.render_as_string(hide_password=True)

    @property
    def pending(self) -> int:
        """How many rows are waiting to be written (queued, in flight, retrying or spooled)."""
        return len(self._writes) + len(self._backlog)

    # -- life cycle

    def startService(self) -> None:
        """Start as a child service: same as ``start()``, failures are logged."""
        self.start().addErrback(self._log_start_failure)

    def stopService(self) -> defer.Deferred[None]:
        """Stop as a child service: same as ``stop()``."""
        return self.stop()

    def start(self) -> defer.Deferred[None]:
        """Open the database and check its schema, creating it if empty.

        Unreachable databases are retried with back-off until they answer or the
        returned Deferred is cancelled; a stale schema fails with StaleSchemaError.
        Calling it again returns the outcome of the first call.
        """
        if self._starting is None:
            if self._stopping is not None:
                return defer.fail(RuntimeError("the reports database was stopped"))
            Service.startService(self)
            self._engine = create_reports_engine(self._url, self._threads)
            self._pool = ThreadPool(minthreads=0, maxthreads=self._threads, name="reports-db")
            self._pool.threadFactory = _DaemonThread
            self._pool.start()
            self._shutdown_trigger = self.reactor.addSystemEventTrigger(
                "during", "shutdown", self._stop_threads
            )
            self._starting = defer.Deferred.fromCoroutine(self._start())
            self._starting.addBoth(self._start_result.set)
        starting = self._starting
        return self._start_result.observe(canceller=lambda _: starting.cancel())

    async def _start(self) -> None:
        assert self._engine is not None
        delay = self._retry_delay
        while True:
            try:
                created = await self._in_thread(check_schema_on, self._engine)
                break
            except Exception as e:
                if isinstance(e, defer.CancelledError) or not is_transient(e):
                    raise
                self.log.warn(
                    "reports database {url} unreachable ({error}); retrying in {delay}s",
                    url=self.display_url,
                    error=describe_error(e),
                    delay=delay,
                )
                await task.deferLater(self.reactor, delay, lambda: None)
                delay = min(delay * 2, self._max_retry_delay)
        if created:
            self.log.info(
                "created the reports database {url} at revision {revision}",
                url=self.display_url,
                revision=created,
            )
        else:
            self.log.info("reports database {url} is ready", url=self.display_url)

    def _log_start_failure(self, failure: Failure) -> None:
        if failure.check(defer.CancelledError):
            return  # stopped while starting: not an error
        self.log.error(
            "reports database {url} did not start: {error}",
            url=self.display_url,
            error=failure.getErrorMessage(),
        )

    def stop(self) -> defer.Deferred[None]:
        """Wait (a bounded time) for queued writes, then stop the threads and the engine.

        Writes still waiting after ``stop_timeout`` seconds are abandoned: their
        Deferreds fail with CancelledError and their job ids are logged; they stay in
        the spool (once ``open_spool()`` ran) and the next start writes them.
        """
        if self._stopping is None:
            self._stopping = defer.Deferred.fromCoroutine(self._stop())
            self._stopping.addBoth(self._stop_result.set)
        return self._stop_result.observe()

    async def _stop(self) -> None:
        if self._starting is not None and not self._starting.called:
            self._starting.cancel()
        if self._writes:
            await self._drain()
        if self._replaying is not None:
            await self._replaying  # sees the stop and ends; its rows stay spooled
        if self._spool is not None:
            self._spool.close()
        await self._stop_threads_later()
        if self.running:
            Service.stopService(self)
        self.log.info("reports database {url} closed", url=self.display_url)

    async def _drain(self) -> None:
        self.log.info(
            "waiting up to {timeout}s for {count} report row(s) to be written",
            timeout=self._stop_timeout,
            count=len(self._writes),
        )
        self._drained = defer.Deferred()
        try:
            await self._drained.addTimeout(self._stop_timeout, self.reactor)
        except defer.TimeoutError:
            abandoned = dict(self._writes)
            self.log.warn(
                "gave up on {count} report row(s) not yet written (jobs {jobs}); {what}",
                count=len(abandoned),
                jobs=", ".join(sorted(abandoned.values())),
                what="the next start writes them"
                if self._spool is not None
                else "replay their report files once the database is back",
            )
            for d in abandoned:
                d.cancel()

    async def _stop_threads_later(self) -> None:
        """Dispose of the engine in the pool, then stop the pool without blocking."""
        pool, engine = self._pool, self._engine
        if pool is None or engine is None:
            return
        self._pool = None
        if self._shutdown_trigger is not None:
            self.reactor.removeSystemEventTrigger(self._shutdown_trigger)
            self._shutdown_trigger = None
        try:
            # In the pool: SQLite connections may only be closed by their own thread.
            disposing = threads.deferToThreadPool(self.reactor, pool, engine.dispose)
            await disposing.addTimeout(self._stop_timeout, self.reactor)
        except defer.TimeoutError:
            self.log.warn("a reports database call is still running; abandoning it")
            # Joining a thread stuck in a database call would block the reactor.
            threading.Thread(target=pool.stop, name="reports-db-stop", daemon=True).start()
            return
        pool.stop()

    def _stop_threads(self) -> None:
        """Reactor shutdown without stop(): stop the pool's threads so the process can exit."""
        self._shutdown_trigger = None
        pool, engine = self._pool, self._engine
        self._pool = None
        if pool is not None and engine is not None:
            pool.callInThread(engine.dispose)
            pool.stop()

    # -- running SQL

    def _in_thread(self, f: Callable[..., T], *args: Any) -> defer.Deferred[T]:
        if self._pool is None:
            return defer.fail(RuntimeError("the reports database is not started"))
        return threads.deferToThreadPool(self.reactor, self._pool, f, *args)

    def _run(self, thd: Callable[[Connection], T], *, write: bool = False) -> defer.Deferred[T]:
        """Run ``thd(conn)`` in a transaction on a pool thread."""
        engine = self._engine

        def in_thread() -> T:
            assert engine is not None
            with engine.connect() as conn:
                if write:
                    conn.execution_options(**{WRITE_OPTION: True})
                with conn.begin():
                    return thd(conn)

        return self._in_thread(in_thread)

    # -- the repository

    def save(self, row: dict[str, Any]) -> defer.Deferred[None]:
        """Insert or update the row of ``row["job_id"]``; retry until the database answers.

        A row from an older attempt never replaces a newer attempt's. Fails (and logs
        the job id) for a row the database refuses, e.g. an impossible value. Once
        ``open_spool()`` ran, the row is kept in the spool until it is written.
        """
        if self._engine is None or self._stopping is not None:
            return defer.fail(RuntimeError("the reports database is not running"))
        try:
            values = _row_values(row)
        except ValueError as e:
            return self._unsaveable(row, e)
        ident = self._spool.add(row) if self._spool is not None else None
        return self._write(str(row["job_id"]), values, ident)

    def _unsaveable(self, row: object, error: ValueError) -> defer.Deferred[None]:
        job_id = str(row.get("job_id")) if isinstance(row, dict) else "?"
        self.log.error(
            "not saving the report row of job {job_id}: {error}", job_id=job_id, error=error
        )
        return defer.fail(error)

    def _write(
        self, job_id: str, values: dict[str, Any], ident: int | None
    ) -> defer.Deferred[None]:
        """Save ``values`` (tracked for stop); the spool's entry ``ident`` ends with it."""
        d = defer.Deferred.fromCoroutine(self._save(job_id, values))
        self._writes[d] = job_id

        def forget(result: object) -> object:
            self._writes.pop(d, None)
            if self._spool is not None and (
                not isinstance(result, Failure) or result.check(sa_exc.SQLAlchemyError)
            ):
                # Written, or refused by the database (logged): not for the next start.
                # Abandoned at stop, it stays spooled.
                self._spool.done(ident)
            if not self._writes and self._drained is not None and not self._drained.called:
                self._drained.callback(None)
            return result

        d.addBoth(forget)
        return d

    def open_spool(self, folder: str) -> defer.Deferred[int]:
        """Keep rows in ``folder``'s spool until written; write those a killed admin left.

        Call once, after ``start()``. Reading the spool runs in a thread; the rows it
        held are then written in the background, in batches, while start-up goes on.
        Fires with how many rows were waiting.
        """
        return defer.Deferred.fromCoroutine(self._open_spool(folder))

    async def _open_spool(self, folder: str) -> int:
        if self._engine is None or self._stopping is not None:
            raise RuntimeError("the reports database is not running")
        if self._spool is not None:
            raise RuntimeError(f"the spool {self._spool.path} is open already")
        spool = RowSpool(folder)
        pool = self.reactor.getThreadPool()
        waiting = await threads.deferToThreadPool(self.reactor, pool, spool.open)
        if self._stopping is not None:
            spool.close()  # stopped meanwhile: the rows stay spooled for the next start
            return len(waiting)
        self._spool = spool
        if waiting:
            self.log.info(
                "{count} report row(s) were waiting for the database when the admin last "
                "stopped; writing them in the background",
                count=len(waiting),
            )
            self._backlog = waiting
            replaying = defer.Deferred.fromCoroutine(self._write_backlog())
            self._replaying = replaying.addErrback(
                lambda f: self.log.failure("writing the spooled report rows failed", f)
            )
        return len(waiting)

    async def _write_backlog(self) -> None:
        """Write the spooled rows ``_REPLAY_BATCH`` at a time, until done or stopped."""
        written = 0
        while self._backlog and self._stopping is None:
            batch, self._backlog = self._backlog[:_REPLAY_BATCH], self._backlog[_REPLAY_BATCH:]
            saving = []
            for ident, row in batch:
                try:
                    values = _row_values(row)
                except ValueError as e:
                    self._unsaveable(row, e).addErrback(lambda _: None)
                    assert self._spool is not None
                    self._spool.done(ident)
                    continue
                saving.append(self._write(str(row["job_id"]), values, ident))
            results = await defer.DeferredList(saving, consumeErrors=True)
            written += sum(1 for ok, _ in results if ok)
        self.log.info(
            "wrote {count} report row(s) left waiting by the previous admin{rest}",
            count=written,
            rest=f"; {len(self._backlog)} stay spooled for the next start" if self._backlog else "",
        )

    async def _save(self, job_id: str, values: dict[str, Any]) -> None:
        statement = self._upsert

        def thd(conn: Connection) -> None:
            conn.execute(statement, values)

        attempts = 0
        delay = self._retry_delay
        while True:
            attempts += 1
            try:
                await self._run(thd, write=True)
                break
            except defer.CancelledError:
                raise
            except Exception as e:
                if not is_transient(e):
                    self.log.error(
                        "the database refused the report row of job {job_id}: {error}",
                        job_id=job_id,
                        error=describe_error(e),
                    )
                    raise
                # The first failure is news; the retries that follow are not.
                emit = self.log.warn if attempts == 1 else self.log.debug
                emit(
                    "could not write the report row of job {job_id} ({error}); "
                    "retrying in {delay}s (attempt {attempts}), until the database answers",
                    job_id=job_id,
                    error=describe_error(e),
                    delay=delay,
                    attempts=attempts,
                )
                await task.deferLater(self.reactor, delay, lambda: None)
                delay = min(delay * 2, self._max_retry_delay)
        if attempts > 1:
            self.log.info(
                "wrote the report row of job {job_id} after {attempts} attempts",
                job_id=job_id,
                attempts=attempts,
            )

    def get(self, job_id: str) -> defer.Deferred[dict[str, Any] | None]:
        """The row of ``job_id`` (times as ISO 8601 strings), or None."""

        def thd(conn: Connection) -> dict[str, Any] | None:
            row = conn.execute(
                select(transcode_reports).where(transcode_reports.c.job_id == job_id)
            ).first()
            return None if row is None else _row_dict(row._mapping)

        return self._run(thd)

    def query(
        self,
        *,
        customer: str | None = None,
        profile: str | None = None,
        outcome: str | None = None,
        since: datetime | str | None = None,
        until: datetime | str | None = None,
        search: str | None = None,
        offset: int = 0,
        limit: int = 50,
        order: str = "finish_time desc",
    ) -> defer.Deferred[dict[str, Any]]:
        """One page of rows matching the filters, with the total count of matches.

        ``since``/``until`` bound the finish time (``since <= finish_time < until``;
        a time without a timezone is UTC); ``search`` is a case-insensitive substring
        of the relative path; ``limit`` is capped at 500. Texts are compared in their
        stored form, the one rows show (``escape``: ``\\xNN`` for a byte that is not
        UTF-8). Bad arguments fail with ValueError. Fires with
        ``{"total", "offset", "limit", "items"}``.
        """
        t = transcode_reports
        try:
            conditions = []
            for column, value in (("customer", customer), ("profile", profile)):
                if value is not None:
                    if not isinstance(value, str):
                        raise ValueError(f"{column} must be a string, not {value!r}")
                    conditions.append(t.c[column] == value)
            if outcome is not None:
                if outcome not in OUTCOMES:
                    raise ValueError(
                        f"outcome must be one of {', '.join(OUTCOMES)}, not {outcome!r}"
                    )
                conditions.append(t.c.outcome == outcome)
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
            offset = _count_argument("offset", offset)
            limit = min(_count_argument("limit", limit), MAX_LIMIT)
            ordering = _ordering(order)
        except ValueError as e:
            return defer.fail(e)

        def thd(conn: Connection) -> dict[str, Any]:
            total = conn.execute(select(func.count()).select_from(t).where(*conditions)).scalar()
            rows = conn.execute(
                select(t).where(*conditions).order_by(*ordering).offset(offset).limit(limit)
            ).all()
            return {
                "total": int(total or 0),
                "offset": offset,
                "limit": limit,
                "items": [_row_dict(row._mapping) for row in rows],
            }

        return self._run(thd)

    def count_by_outcome(self) -> defer.Deferred[dict[str, int]]:
        """How many rows have each outcome: ``{"done": n, "failed": m}``."""
        t = transcode_reports

        def thd(conn: Connection) -> dict[str, int]:
            counts = dict.fromkeys(OUTCOMES, 0)
            query = select(t.c.outcome, func.count()).group_by(t.c.outcome)
            for outcome, count in conn.execute(query):
                counts[outcome] = int(count)
            return counts

        return self._run(thd)


# --- helpers ----------------------------------------------------------------------------


class _DaemonThread(threading.Thread):
    """A pool thread that never keeps the process alive.

    stop() and reactor shutdown stop the pool in order; if neither ran (a crash), an
    interrupted transaction simply rolls back, and exiting beats hanging.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.daemon = True


class _Outcome:
    """The outcome of a one-time operation, given to each caller in its own Deferred."""

    def __init__(self) -> None:
        self._result: Any = None
        self._done = False
        self._waiting: list[defer.Deferred[Any]] = []

    def set(self, result: Any) -> None:
        self._result, self._done = result, True
        waiting, self._waiting = self._waiting, []
        for d in waiting:
            d.callback(result) if not isinstance(result, Failure) else d.errback(result)

    def observe(self, canceller: Callable[[defer.Deferred[Any]], None] | None = None) -> Any:
        if self._done:
            if isinstance(self._result, Failure):
                return defer.fail(self._result)
            return defer.succeed(self._result)
        d: defer.Deferred[Any] = defer.Deferred(canceller)
        self._waiting.append(d)
        return d


def _upsert_statement(backend: str) -> Any:
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


def _row_values(row: dict[str, Any]) -> dict[str, Any]:
    """Check a row's keys, normalise its times to UTC and escape its texts (``escape``).

    Every column gets a value. Live rows and replayed report files both come here, so
    a name that is not UTF-8 is stored the same way by either.
    """
    if not isinstance(row, dict):
        raise ValueError(f"a report row must be a dict, not {type(row).__name__}")
    unknown = sorted(set(row) - set(COLUMNS))
    if unknown:
        raise ValueError(f"unknown column(s) {', '.join(map(str, unknown))}")
    missing = [c for c in _REQUIRED if row.get(c) in (None, "")]
    if missing:
        raise ValueError(f"missing required column(s) {', '.join(missing)}")
    values: dict[str, Any] = {c: row.get(c) for c in COLUMNS}
    for column, default in _DEFAULTS.items():
        if values[column] is None:
            values[column] = default
    for column in DATETIME_COLUMNS:
        values[column] = parse_time(values[column], column)
    for column in TEXT_COLUMNS:
        text = values[column]
        if isinstance(text, str):
            values[column] = escape_text(text)
    return values


def _row_dict(mapping: Any) -> dict[str, Any]:
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
