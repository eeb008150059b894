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

from typing import Any

from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Connection
from twisted.application.service import Service
from twisted.internet import defer, threads
from twisted.logger import Logger
from twisted.python.failure import Failure

from ..observer import OneShotObserver
from ..reactors import IFarmReactor, default_reactor
from .pool import SQLPool, until_answered
from .rows import Filters, count_outcomes, row_values, select_row, upsert_statement
from .schema import (
    StaleSchemaError,
    check_schema,
    check_schema_on,
    check_url,
    current_revision,
    describe_error,
    head_revision,
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
        reactor: IFarmReactor | None = None,
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
        self.reactor = reactor or default_reactor()
        self._retry_delay = retry_delay
        self._max_retry_delay = max_retry_delay
        self._stop_timeout = stop_timeout
        self._sql = SQLPool(self._url, self._threads, self.reactor, stop_timeout)
        self._starting: defer.Deferred[None] | None = None
        self._stopping: defer.Deferred[None] | None = None
        self._started: OneShotObserver[None] = OneShotObserver(self.reactor)
        self._stopped: OneShotObserver[None] = OneShotObserver(self.reactor)
        self._writes: dict[defer.Deferred[None], str] = {}
        #: Since when the database has not answered (None: it answers).
        self.unreachable_since: float | None = None
        self._drained: defer.Deferred[None] | None = None
        self._spool: RowSpool | None = None
        self._backlog: list[tuple[int, dict[str, Any]]] = []
        self._replaying: defer.Deferred[None] | None = None
        self._upsert = upsert_statement(self._url.get_backend_name())

    @property
    def display_url(self) -> str:
        """The database URL with its password hidden, for logs and the status API."""
        return self._url.render_as_string(hide_password=True)

    @property
    def rows_waiting(self) -> int:
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
            self._sql.open()
            self._starting = defer.Deferred.fromCoroutine(self._start())
            self._starting.addBoth(self._started.fire)
        starting = self._starting
        return self._started.when_fired(canceller=lambda _: starting.cancel())

    async def _start(self) -> None:
        engine = self._sql.engine
        assert engine is not None

        def retrying(error: Exception, delay: float, _attempt: int) -> None:
            self._unreachable()
            self.log.warn(
                "reports database {url} unreachable ({error}); retrying in {delay}s",
                url=self.display_url,
                error=describe_error(error),
                delay=delay,
            )

        created, _ = await until_answered(
            lambda: self._sql.call(check_schema_on, engine),
            self.reactor,
            self._retry_delay,
            self._max_retry_delay,
            retrying,
        )
        self.unreachable_since = None
        if created:
            self.log.info(
                "created the reports database {url} at revision {revision}",
                url=self.display_url,
                revision=created,
            )
        else:
            self.log.info("reports database {url} is ready", url=self.display_url)

    def _unreachable(self) -> None:
        if self.unreachable_since is None:
            self.unreachable_since = self.reactor.seconds()

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
            self._stopping.addBoth(self._stopped.fire)
        return self._stopped.when_fired()

    async def _stop(self) -> None:
        if self._starting is not None and not self._starting.called:
            self._starting.cancel()
        if self._writes:
            await self._drain()
        if self._replaying is not None:
            await self._replaying  # sees the stop and ends; its rows stay spooled
        if self._spool is not None:
            self._spool.close()
        await self._sql.close()
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

    # -- the repository

    def save(self, row: dict[str, Any]) -> defer.Deferred[None]:
        """Insert or update the row of ``row["job_id"]``; retry until the database answers.

        A row from an older attempt never replaces a newer attempt's. Fails (and logs
        the job id) for a row the database refuses, e.g. an impossible value. Once
        ``open_spool()`` ran, the row is kept in the spool until it is written.
        """
        if self._sql.engine is None or self._stopping is not None:
            return defer.fail(RuntimeError("the reports database is not running"))
        try:
            values = row_values(row)
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
        if self._sql.engine is None or self._stopping is not None:
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
                    values = row_values(row)
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

        def retrying(error: Exception, delay: float, attempt: int) -> None:
            self._unreachable()
            # The first failure is news; the retries that follow are not.
            emit = self.log.warn if attempt == 1 else self.log.debug
            emit(
                "could not write the report row of job {job_id} ({error}); "
                "retrying in {delay}s (attempt {attempts}), until the database answers",
                job_id=job_id,
                error=describe_error(error),
                delay=delay,
                attempts=attempt,
            )

        try:
            _, attempts = await until_answered(
                lambda: self._sql.run(thd, write=True),
                self.reactor,
                self._retry_delay,
                self._max_retry_delay,
                retrying,
            )
        except defer.CancelledError:
            raise
        except Exception as e:
            self.log.error(
                "the database refused the report row of job {job_id}: {error}",
                job_id=job_id,
                error=describe_error(e),
            )
            raise
        self.unreachable_since = None
        if attempts > 1:
            self.log.info(
                "wrote the report row of job {job_id} after {attempts} attempts",
                job_id=job_id,
                attempts=attempts,
            )

    def get(self, job_id: str) -> defer.Deferred[dict[str, Any] | None]:
        """The row of ``job_id`` (times as ISO 8601 strings), or None."""
        return self._sql.run(lambda conn: select_row(conn, job_id))

    def query(self, **filters: Any) -> defer.Deferred[dict[str, Any]]:
        """One page of rows matching the filters (:class:`rows.Filters`), and how many match.

        Filters: ``customer``, ``profile``, ``outcome``; ``since``/``until`` bound the
        finish time (``since <= finish_time < until``; a time without a timezone is
        UTC); ``search`` is a case-insensitive substring of the relative path;
        ``offset``, ``limit`` (capped at 500), ``order``. Texts are compared in their
        stored form, the one rows show (``escape``: ``\\xNN`` for a byte that is not
        UTF-8). Bad or unknown arguments fail with ValueError. Fires with ``{"total",
        "offset", "limit", "items"}``.
        """
        try:
            page = Filters(**filters)
        except TypeError as e:  # an argument Filters does not know
            return defer.fail(ValueError(str(e)))
        except ValueError as e:
            return defer.fail(e)
        return self._sql.run(page.page)

    def count_by_outcome(self) -> defer.Deferred[dict[str, int]]:
        """How many rows have each outcome: ``{"done": n, "failed": m}``."""
        return self._sql.run(count_outcomes)
