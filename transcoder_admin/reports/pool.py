"""The reports database's engine and its own bounded pool of threads (CONVENTIONS.md 10).

Every statement runs in one of these threads, in a transaction; the reactor thread only
sees Deferreds and plain values. Stopping disposes of the engine in the pool (SQLite
connections may only be closed by their own thread) without ever blocking the reactor,
and a reactor shutdown without a stop still lets the process exit.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy import Engine
from sqlalchemy.engine import URL, Connection
from twisted.internet import defer, task, threads
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from twisted.python.threadpool import ThreadPool

from ..reactors import IFarmReactor
from .schema import WRITE_OPTION, create_reports_engine, is_transient

T = TypeVar("T")


class SQLPool:
    """An engine and the threads that use it; ``open()`` makes both, ``close()`` ends them."""

    log = Logger()

    def __init__(
        self,
        url: URL,
        threads: int,
        reactor: IFarmReactor,
        stop_timeout: float,
        name: str = "reports database",
    ) -> None:
        self.name = name
        self.url = url
        self.threads = threads
        self.reactor = reactor
        self.stop_timeout = stop_timeout
        self.engine: Engine | None = None
        self._pool: ThreadPool | None = None
        self._shutdown_trigger: Any = None

    def open(self) -> None:
        """Create the engine and start the threads (no connection is made yet)."""
        self.engine = create_reports_engine(self.url, self.threads)
        self._pool = ThreadPool(
            minthreads=0, maxthreads=self.threads, name=self.name.replace(" ", "-")
        )
        self._pool.threadFactory = _DaemonThread
        self._pool.start()
        self._shutdown_trigger = self.reactor.addSystemEventTrigger(
            "during", "shutdown", self._stop_threads
        )

    def call(self, f: Callable[..., T], *args: Any) -> defer.Deferred[T]:
        """``f(*args)`` in one of the pool's threads."""
        if self._pool is None:
            return defer.fail(RuntimeError(f"the {self.name} is not started"))
        return threads.deferToThreadPool(self.reactor, self._pool, f, *args)

    def run(self, thd: Callable[[Connection], T], *, write: bool = False) -> defer.Deferred[T]:
        """``thd(conn)`` in a transaction in one of the pool's threads."""
        engine = self.engine

        def in_thread() -> T:
            assert engine is not None
            with engine.connect() as conn:
                if write:
                    conn.execution_options(**{WRITE_OPTION: True})
                with conn.begin():
                    return thd(conn)

        return self.call(in_thread)

    async def close(self) -> None:
        """Dispose of the engine in the pool, then stop the pool without blocking."""
        pool, engine = self._pool, self.engine
        if pool is None or engine is None:
            return
        self._pool = None
        if self._shutdown_trigger is not None:
            self.reactor.removeSystemEventTrigger(self._shutdown_trigger)
            self._shutdown_trigger = None
        try:
            disposing = threads.deferToThreadPool(self.reactor, pool, engine.dispose)
            await disposing.addTimeout(self.stop_timeout, self.reactor)
        except defer.TimeoutError:
            self.log.warn("a {name} call is still running; abandoning it", name=self.name)
            # Joining a thread stuck in a database call would block the reactor.
            threading.Thread(target=pool.stop, name="reports-db-stop", daemon=True).start()
            return
        pool.stop()

    def _stop_threads(self) -> None:
        """Reactor shutdown without close(): stop the threads so the process can exit."""
        self._shutdown_trigger = None
        pool, engine = self._pool, self.engine
        self._pool = None
        if pool is not None and engine is not None:
            pool.callInThread(engine.dispose)
            pool.stop()


async def until_answered(
    call: Callable[[], defer.Deferred[T]],
    clock: IReactorTime,
    delay: float,
    max_delay: float,
    retrying: Callable[[Exception, float, int], None],
) -> tuple[T, int]:
    """``call()`` again after a growing delay while the database is unreachable.

    ``retrying(error, delay, attempt)`` says so before each wait; an error that is not
    transient (or a cancellation) ends it. Fires with the result and the attempts made.
    """
    attempts = 0
    while True:
        attempts += 1
        try:
            return await call(), attempts
        except defer.CancelledError:
            raise
        except Exception as e:
            if not is_transient(e):
                raise
            retrying(e, delay, attempts)
            await task.deferLater(clock, delay, lambda: None)
            delay = min(delay * 2, max_delay)


class _DaemonThread(threading.Thread):
    """A pool thread that never keeps the process alive.

    close() and reactor shutdown stop the pool in order; if neither ran (a crash), an
    interrupted transaction simply rolls back, and exiting beats hanging.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.daemon = True
