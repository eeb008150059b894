"""The reports database's engine and schema: URL checks, Alembic checks and upgrades.

``check_schema`` is what the daemon runs at start (through ``ReportsDB.start``);
``upgrade`` is what ``transcoder-admin upgrade-db`` runs. Both are synchronous: call them
off the reactor thread (the CLI has no reactor running).

Alembic (about 10 MiB of memory) is loaded only to migrate: a database already at
``HEAD_REVISION`` is checked by reading its ``alembic_version`` table, and an empty one
is created from ``model.py`` and stamped at ``HEAD_REVISION`` (the migrations build
exactly that model: tests/integration/test_reports_db.py compares them).
"""

from __future__ import annotations

import functools
import os
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    Column,
    Engine,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    create_engine,
    event,
    inspect,
    text,
)
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import URL, Connection, make_url
from twisted.logger import Logger

if TYPE_CHECKING:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

#: The newest migration's revision (migrations/versions/): what this code expects.
#: tests/integration/test_reports_db.py checks it against Alembic's own head.
HEAD_REVISION = "0004"

UPGRADE_HINT = "run: transcoder-admin upgrade-db --config <your config>"
URL_FORMS = "sqlite:///PATH or postgresql+psycopg2://USER@HOST/DATABASE"

_MIGRATIONS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "migrations")
# Execution option that makes the SQLite "begin" hook take the write lock up front.
WRITE_OPTION = "transcoder_write"
SQLITE_BUSY_TIMEOUT = 5.0
POSTGRES_CONNECT_TIMEOUT = 10

_log = Logger(namespace="transcoder_admin.reports.schema")


class StaleSchemaError(Exception):
    """The database schema is not the one this version expects; the message says why."""

    def __init__(self, message: str, current: str | None, expected: str) -> None:
        super().__init__(message)
        self.current = current
        self.expected = expected


def check_url(url: str | URL) -> URL:
    """Parse a reports database URL; raise ValueError unless it is SQLite or psycopg2."""
    try:
        parsed = make_url(url)
    except sa_exc.ArgumentError as e:
        raise ValueError(f"reports database URL is not valid ({e}); use {URL_FORMS}") from e
    if parsed.drivername in ("sqlite", "sqlite+pysqlite", "postgresql+psycopg2"):
        return parsed
    shown = parsed.render_as_string(hide_password=True)
    if parsed.get_backend_name() == "postgresql":
        raise ValueError(
            f"reports database URL {shown} must name its driver: "
            "use postgresql+psycopg2://USER@HOST/DATABASE"
        )
    raise ValueError(f"reports database URL {shown} is not supported; use {URL_FORMS}")


def create_reports_engine(url: str | URL, pool_size: int = 4) -> Engine:
    """Create the engine for a reports URL (SQLite: WAL, busy timeout, BEGIN IMMEDIATE).

    No connection is opened until the engine is used.
    """
    parsed = check_url(url)
    if parsed.get_backend_name() == "sqlite":
        args: dict[str, Any] = {}
        if "timeout" not in parsed.query:
            args["timeout"] = SQLITE_BUSY_TIMEOUT
        engine = create_engine(parsed, connect_args=args)
        event.listen(engine, "connect", _sqlite_on_connect)
        event.listen(engine, "begin", _sqlite_on_begin)
        return engine
    args = {}
    if "connect_timeout" not in parsed.query:
        args["connect_timeout"] = POSTGRES_CONNECT_TIMEOUT
    return create_engine(
        parsed, pool_size=pool_size, max_overflow=0, pool_pre_ping=True, connect_args=args
    )


def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    # SQLAlchemy's documented pysqlite recipe: the driver never emits BEGIN itself
    # (so transactions and DDL behave), the "begin" hook below does.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
        # In WAL mode NORMAL never corrupts the database; a power cut may lose the
        # last rows, which the fsynced report files restore (replay-reports). It saves
        # an fsync per row.
        cursor.execute("PRAGMA synchronous=NORMAL")
    finally:
        cursor.close()


def _sqlite_on_begin(conn: Connection) -> None:
    # Writers take the write lock when the transaction starts, so a busy database
    # waits for the busy timeout instead of failing half-way through with SQLITE_BUSY.
    if conn.get_execution_options().get(WRITE_OPTION):
        conn.exec_driver_sql("BEGIN IMMEDIATE")
    else:
        conn.exec_driver_sql("BEGIN")


def _alembic_config() -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", _MIGRATIONS)
    config.set_main_option("path_separator", "os")
    return config


@functools.cache
def _script() -> ScriptDirectory:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(_alembic_config())


def head_revision() -> str:
    """The revision of the newest migration, which this version of the code expects."""
    return HEAD_REVISION


def _heads(conn: Connection) -> tuple[str, ...]:
    """The revisions the database is at (its ``alembic_version`` rows), sorted."""
    rows = conn.execute(text("SELECT version_num FROM alembic_version"))
    return tuple(sorted(str(row[0]) for row in rows))


#: Alembic's own version table, as Alembic creates it (``alembic.ddl.impl``).
_alembic_version = Table(
    "alembic_version",
    MetaData(),
    Column("version_num", String(32), nullable=False),
    PrimaryKeyConstraint("version_num", name="alembic_version_pkc"),
)


def _create_at_head(conn: Connection) -> None:
    """Create the schema of an empty database from the model, stamped at the head."""
    from .model import metadata

    metadata.create_all(conn)
    _alembic_version.create(conn)
    conn.execute(_alembic_version.insert().values(version_num=HEAD_REVISION))


def current_revision(url: str) -> str | None:
    """The revision the database at ``url`` is at (None: not managed by Alembic yet)."""
    path = _sqlite_path(check_url(url))
    if path is not None and not os.path.exists(path):
        return None  # without creating the file
    engine = create_reports_engine(url, pool_size=1)
    try:
        with engine.connect() as conn:
            if "alembic_version" not in inspect(conn).get_table_names():
                return None
            heads = _heads(conn)
            return heads[0] if len(heads) == 1 else None
    finally:
        engine.dispose()


def upgrade(url: str) -> None:
    """Upgrade the database at ``url`` to the newest revision, creating it if empty."""
    engine = create_reports_engine(url, pool_size=1)
    shown = engine.url.render_as_string(hide_password=True)
    try:
        _prepare_sqlite_folder(engine.url)
        with engine.connect() as conn:
            conn.execution_options(**{WRITE_OPTION: True})
            with conn.begin():
                tables = inspect(conn).get_table_names()
                before = _heads(conn) if "alembic_version" in tables else ()
                unknown = [r for r in before if not _known(r)]
                if unknown:
                    raise StaleSchemaError(
                        f"reports database {shown} is at revision {', '.join(unknown)}, "
                        f"which this version of transcoder-admin does not know (expected "
                        f"{head_revision()}): was it written by a newer version?",
                        ", ".join(unknown),
                        head_revision(),
                    )
                _upgrade_on(conn)
    finally:
        engine.dispose()
    _log.info(
        "reports database {url} upgraded from revision {before} to {head}",
        url=shown,
        before=", ".join(before) or "none",
        head=head_revision(),
    )


def check_schema(url: str) -> None:
    """Accept a database at the newest revision, create an empty one, refuse the rest.

    Raise StaleSchemaError (naming both revisions and the upgrade command) for a
    database at another revision or with tables but no Alembic version.
    """
    engine = create_reports_engine(url, pool_size=1)
    try:
        created = check_schema_on(engine)
    finally:
        engine.dispose()
    if created:
        _log.info(
            "created the reports database {url} at revision {revision}",
            url=engine.url.render_as_string(hide_password=True),
            revision=created,
        )


def _known(revision: str) -> bool:
    try:
        return _script().get_revision(revision) is not None
    except Exception:
        return False


def _upgrade_on(conn: Connection) -> None:
    from alembic import command

    config = _alembic_config()
    config.attributes["connection"] = conn
    command.upgrade(config, "head")


def _prepare_sqlite_folder(url: URL) -> None:
    """Create a SQLite file's folder if only that last folder is missing.

    Only the last one: a missing mount point must not be papered over by creating
    a new, empty tree in its place.
    """
    path = _sqlite_path(url)
    if path is None:
        return
    folder = os.path.dirname(path)
    if not os.path.isdir(folder) and os.path.isdir(os.path.dirname(folder)):
        try:
            os.mkdir(folder)
        except FileExistsError:
            pass


def _sqlite_path(url: URL) -> str | None:
    """The absolute path of a SQLite database file (None: not SQLite, or in memory)."""
    database = url.database
    if url.get_backend_name() != "sqlite" or not database or database == ":memory:":
        return None
    if database.startswith("file:"):
        return None
    return os.path.abspath(database)


def check_schema_on(engine: Engine) -> str | None:
    """Check the schema (creating it in an empty database); return the created revision."""
    head = head_revision()
    shown = engine.url.render_as_string(hide_password=True)
    _prepare_sqlite_folder(engine.url)
    with engine.connect() as conn:
        conn.execution_options(**{WRITE_OPTION: True})
        with conn.begin():
            tables = sorted(inspect(conn).get_table_names())
            if not tables:
                _create_at_head(conn)
                return head
            if "alembic_version" not in tables:
                raise StaleSchemaError(
                    f"reports database {shown} has tables ({', '.join(tables)}) but no "
                    f"alembic_version: its revision is unknown, expected {head}; {UPGRADE_HINT}",
                    None,
                    head,
                )
            heads = _heads(conn)
    if heads != (head,):
        current = ", ".join(heads) or "none"
        unknown = "" if all(_known(r) for r in heads) else " (unknown to this version)"
        raise StaleSchemaError(
            f"reports database {shown} is at revision {current}{unknown}, "
            f"expected {head}; {UPGRADE_HINT}",
            current if heads else None,
            head,
        )
    return None


def is_transient(error: BaseException) -> bool:
    """Whether a database error may go away by itself (unreachable, locked, disconnected)."""
    if isinstance(error, sa_exc.DBAPIError):
        return error.connection_invalidated or isinstance(error, sa_exc.OperationalError)
    return isinstance(error, sa_exc.DisconnectionError | sa_exc.TimeoutError)


def describe_error(error: BaseException) -> str:
    """A short description of a database error: the driver's message, no SQL."""
    orig = getattr(error, "orig", None) or error
    lines = str(orig).strip().splitlines()
    return f"{type(orig).__name__}: {lines[0] if lines else ''}"
