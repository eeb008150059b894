"""The reports database against real SQLite and PostgreSQL, driven by the real reactor.

Every test runs once per backend: ``SQLiteReportsDBTests`` on a temporary file and
``PostgresReportsDBTests`` in a schema of its own on the server named by
``TRANSCODER_TEST_POSTGRES_URL`` (skipped when unset, failed instead when
``TRANSCODER_TEST_REQUIRE_POSTGRES=1``). They are trial test cases: pytest runs them and
trial spins the reactor for the Deferreds they await.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import tempfile
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command as alembic_command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from twisted.internet import defer, protocol, reactor, task
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol
from twisted.logger import formatEvent, globalLogPublisher
from twisted.trial import unittest

from transcoder_admin.reports.db import (
    ReportsDB,
    StaleSchemaError,
    check_schema,
    current_revision,
    head_revision,
    upgrade,
)
from transcoder_admin.reports.escape import unescape_text
from transcoder_admin.reports.files import replay_reports, write_report
from transcoder_admin.reports.model import metadata
from transcoder_admin.reports.spool import FILE_NAME as SPOOL_FILE
from transcoder_admin.reports.spool import RowSpool

POSTGRES_URL_ENV = "TRANSCODER_TEST_POSTGRES_URL"
REQUIRE_POSTGRES_ENV = "TRANSCODER_TEST_REQUIRE_POSTGRES"
T0 = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def layout(url: str) -> dict[str, Any]:
    """Every table's columns, keys, indexes and constraints, and the version rows."""
    engine = sa.create_engine(url, poolclass=sa.NullPool)
    try:
        with engine.connect() as conn:
            found = sa.inspect(conn)
            tables: dict[str, Any] = {}
            for name in sorted(found.get_table_names()):
                tables[name] = {
                    "columns": [
                        (c["name"], str(c["type"]), c["nullable"], str(c.get("default")))
                        for c in found.get_columns(name)
                    ],
                    "primary key": found.get_pk_constraint(name),
                    "indexes": sorted(
                        (i["name"], tuple(i["column_names"]), bool(i["unique"]))
                        for i in found.get_indexes(name)
                    ),
                    "unique": sorted(
                        (u["name"], tuple(u["column_names"]))
                        for u in found.get_unique_constraints(name)
                    ),
                    "checks": sorted(
                        (c["name"], c["sqltext"]) for c in found.get_check_constraints(name)
                    ),
                    "foreign keys": found.get_foreign_keys(name),
                }
            versions = conn.exec_driver_sql("SELECT version_num FROM alembic_version").all()
    finally:
        engine.dispose()
    return {"tables": tables, "versions": sorted(tuple(v) for v in versions)}


def make_row(job_id: str, **changes: Any) -> dict[str, Any]:
    """A complete report row for ``job_id``, as ``row_from_report`` makes them."""
    row: dict[str, Any] = {
        "job_id": job_id,
        "customer": "Example",
        "profile": "web",
        "relative_path": f"news/{job_id} clip.mov",
        "report_path": f"default:/example/reports/done/web/news/{job_id} clip.mov.yaml",
        "checksum": "sha256:" + "0f" * 32,
        "file_size": 5_000_000_000,
        "file_type": "video",
        "mime_type": "video/mp4",
        "audio_codec": "aac",
        "video_codec": "h264",
        "creation_time": T0 - timedelta(hours=1),
        "modification_time": T0 - timedelta(hours=1),
        "detection_time": T0,
        "queueing_time": T0 + timedelta(seconds=1),
        "start_time": T0 + timedelta(seconds=2),
        "finish_time": T0 + timedelta(seconds=30),
        "cpu_time": 12.5,
        "real_time": 28.0,
        "attempt_count": 1,
        "machine_name": "host-a",
        "worker_name": "local-1",
        "outcome": "done",
        "failure_kind": None,
        "failure_reason": None,
        "invalid_output": False,
        "comment": None,
        "backend": "ffmpeg",
        "source_duration": 10.0,
        "qmaster_batch_id": None,
        "qmaster_cluster": None,
        "verdict": None,
    }
    row.update(changes)
    return row


def execute(url: str, *statements: str) -> list[Any]:
    """Run SQL statements in one transaction on a connection of our own; the last one's rows."""
    engine = sa.create_engine(url, poolclass=sa.NullPool)
    try:
        with engine.begin() as conn:
            result = None
            for statement in statements:
                result = conn.exec_driver_sql(statement)
            return list(result) if result is not None and result.returns_rows else []
    finally:
        engine.dispose()


async def until(predicate: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
    """Let the reactor run until ``predicate()`` holds; fail after ``timeout`` seconds."""
    deadline = reactor.seconds() + timeout
    while not predicate():
        if reactor.seconds() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await task.deferLater(reactor, 0.01, lambda: None)


class _Relay(protocol.Protocol):
    """One side of a proxied TCP connection; the other side is ``peer``."""

    def __init__(self, proxy: Proxy, peer: _Relay | None = None) -> None:
        self.proxy = proxy
        self.peer = peer

    def connectionMade(self) -> None:
        """Inbound: connect to the server first; outbound: join the waiting client."""
        self.proxy.relays.add(self)
        if self.peer is None:
            self.transport.pauseProducing()
            endpoint = TCP4ClientEndpoint(reactor, self.proxy.host, self.proxy.port)
            connecting = connectProtocol(endpoint, _Relay(self.proxy, peer=self))
            connecting.addErrback(lambda _: self.transport.abortConnection())
        elif not self.peer.connected:
            self.transport.abortConnection()
        else:
            self.peer.peer = self
            self.peer.transport.resumeProducing()

    def dataReceived(self, data: bytes) -> None:
        """Pass bytes on to the other side."""
        if self.peer is not None:
            self.peer.transport.write(data)

    def connectionLost(self, reason: object = None) -> None:
        """Close the other side too."""
        self.proxy.relays.discard(self)
        if self.peer is not None and self.peer.connected:
            self.peer.transport.loseConnection()


class Proxy:
    """A TCP proxy on loopback that a test cuts (server down) and restores (server back)."""

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self.relays: set[_Relay] = set()
        self.listen_port = 0
        self._listening: Any = None

    def listen(self) -> None:
        """Accept connections (on the same port as before, after a cut)."""
        factory = protocol.Factory.forProtocol(lambda: _Relay(self))
        self._listening = reactor.listenTCP(self.listen_port, factory, interface="127.0.0.1")
        self.listen_port = self._listening.getHost().port

    async def cut(self) -> None:
        """Refuse new connections and break the open ones."""
        if self._listening is not None:
            await self._listening.stopListening()
            self._listening = None
        for relay in list(self.relays):
            relay.transport.abortConnection()
        await until(lambda: not self.relays, "the proxied connections to close")


class _ReportsDBContract:
    """The tests every backend must pass; subclasses say how to make a database."""

    # Provided by twisted.trial.unittest.TestCase.
    addCleanup: Callable[..., None]
    assertEqual: Callable[..., None]
    assertIn: Callable[..., None]
    assertTrue: Callable[..., None]
    assertFalse: Callable[..., None]
    assertIsNone: Callable[..., None]
    assertRaises: Callable[..., Any]
    assertFailure: Callable[..., Any]

    url: str

    def make_database(self) -> str:
        """The URL of a new, empty database for this test."""
        raise NotImplementedError

    async def outage_url(self) -> str:
        """A URL of this test's database that ``begin_outage`` can make unreachable."""
        raise NotImplementedError

    async def begin_outage(self) -> None:
        """Make the database at ``outage_url()`` unreachable (or unwritable)."""
        raise NotImplementedError

    async def end_outage(self) -> None:
        """Make the database at ``outage_url()`` reachable again."""
        raise NotImplementedError

    def setUp(self) -> None:
        """Give each test an empty database of its own."""
        self.url = self.make_database()

    def new_db(self, url: str | None = None, **settings: Any) -> ReportsDB:
        """A ReportsDB with quick retries, stopped when the test ends."""
        options: dict[str, Any] = {"retry_delay": 0.02, "max_retry_delay": 0.1}
        options.update(settings)
        db = ReportsDB(url or self.url, reactor=reactor, **options)
        self.addCleanup(db.stop)
        return db

    async def started_db(self, url: str | None = None, **settings: Any) -> ReportsDB:
        """A started ReportsDB on this test's database."""
        db = self.new_db(url, **settings)
        await db.start()
        return db

    def capture_logs(self) -> list[dict[str, Any]]:
        """Collect every log event emitted until the test ends."""
        events: list[dict[str, Any]] = []
        observer = events.append
        globalLogPublisher.addObserver(observer)
        self.addCleanup(globalLogPublisher.removeObserver, observer)
        return events

    # -- schema

    async def test_fresh_database_is_created_at_head(self) -> None:
        """Starting on an empty database creates the schema at the newest revision and says so."""
        events = self.capture_logs()
        self.assertIsNone(current_revision(self.url))

        db = await self.started_db()

        self.assertEqual(current_revision(self.url), head_revision())
        messages = [formatEvent(e) for e in events]
        self.assertTrue(any("created the reports database" in m for m in messages), messages)
        self.assertEqual(await db.count_by_outcome(), {"done": 0, "failed": 0})

    def test_check_schema_accepts_a_database_at_head(self) -> None:
        """check_schema creates an empty database, then accepts it as it is."""
        check_schema(self.url)
        check_schema(self.url)

        self.assertEqual(current_revision(self.url), head_revision())

    def test_migrations_create_exactly_the_model(self) -> None:
        """The schema the migrations build matches model.py column for column."""
        upgrade(self.url)

        engine = sa.create_engine(self.url, poolclass=sa.NullPool)
        try:
            with engine.connect() as conn:
                context = MigrationContext.configure(conn, opts={"compare_type": True})
                differences = compare_metadata(context, metadata)
        finally:
            engine.dispose()
        self.assertEqual(differences, [])

    def test_a_created_database_is_the_one_the_migrations_build(self) -> None:
        """An empty database is created from the model without Alembic; its tables,
        columns, keys, indexes and version are those the migrations make, and Alembic
        takes it as at its head."""
        check_schema(self.url)  # the daemon's start: created from the model
        migrated = self.make_database()
        upgrade(migrated)  # upgrade-db: built by the migrations
        self.assertEqual(layout(self.url), layout(migrated))
        self.assertEqual(current_revision(self.url), head_revision())
        upgrade(self.url)  # nothing to do
        self.assertEqual(layout(self.url), layout(migrated))

    async def test_unknown_revision_refuses_to_start(self) -> None:
        """A database at a revision this version does not know is refused, naming the fix."""
        check_schema(self.url)
        execute(self.url, "UPDATE alembic_version SET version_num = 'f00dcafe'")

        with self.assertRaises(StaleSchemaError) as raised:
            check_schema(self.url)
        message = str(raised.exception)
        self.assertIn("f00dcafe", message)
        self.assertIn(f"expected {head_revision()}", message)
        self.assertIn("run: transcoder-admin upgrade-db --config <your config>", message)

        failure = await self.assertFailure(self.new_db().start(), StaleSchemaError)
        self.assertIn("transcoder-admin upgrade-db", str(failure))
        with self.assertRaises(StaleSchemaError):
            upgrade(self.url)  # it cannot guess how to go back from a newer revision

    async def test_older_revision_refuses_until_upgraded(self) -> None:
        """A database at an older revision is refused; upgrade() brings it up and it starts."""
        execute(
            self.url,
            "CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL PRIMARY KEY)",
        )

        with self.assertRaises(StaleSchemaError) as raised:
            check_schema(self.url)
        self.assertIn("revision none, expected", str(raised.exception))
        self.assertIn("transcoder-admin upgrade-db", str(raised.exception))

        upgrade(self.url)

        db = await self.started_db()
        await db.save(make_row("j-after-upgrade"))
        self.assertEqual((await db.get("j-after-upgrade") or {})["outcome"], "done")

    async def test_tables_without_alembic_version_refuse_until_upgraded(self) -> None:
        """A database holding other tables but no Alembic version is refused until upgraded."""
        execute(self.url, "CREATE TABLE other_application (id INTEGER PRIMARY KEY)")

        failure = await self.assertFailure(self.new_db().start(), StaleSchemaError)
        self.assertIn("no alembic_version", str(failure))
        self.assertIn("transcoder-admin upgrade-db", str(failure))

        upgrade(self.url)

        await self.started_db()
        self.assertEqual(current_revision(self.url), head_revision())

    # -- saving

    async def test_row_reads_back_with_times_in_utc(self) -> None:
        """A saved row reads back value for value, its times as ISO 8601 strings in UTC."""
        db = await self.started_db()
        local = datetime(2026, 11, 23, 19, 55, tzinfo=UTC).astimezone(
            datetime.now().astimezone().tzinfo
        )
        row = make_row("j-read", finish_time="2026-11-23T19:55:00.125000+01:00", start_time=local)

        await db.save(row)
        stored = await db.get("j-read")

        expected = dict(row)
        for column in [
            "creation_time",
            "modification_time",
            "detection_time",
            "queueing_time",
            "start_time",
        ]:
            expected[column] = row[column].astimezone(UTC).isoformat()
        expected["finish_time"] = "2026-11-23T18:55:00.125000+00:00"
        self.assertEqual(stored, expected)
        self.assertIsNone(await db.get("no-such-job"))

    async def test_save_is_idempotent(self) -> None:
        """Saving the same job twice leaves one row, with the second save's values."""
        db = await self.started_db()

        await db.save(make_row("j-1", comment="first"))
        await db.save(make_row("j-1", comment="second", outcome="failed", failure_kind="system"))
        await db.save(make_row("j-1", comment="second", outcome="failed", failure_kind="system"))

        page = await db.query()
        self.assertEqual(page["total"], 1)
        row = page["items"][0]
        self.assertEqual((row["comment"], row["outcome"]), ("second", "failed"))
        self.assertEqual(row["failure_kind"], "system")

    async def test_older_attempt_never_replaces_a_newer_one(self) -> None:
        """Replaying an earlier attempt's report does not overwrite the later attempt's row."""
        db = await self.started_db()

        await db.save(make_row("j-2", attempt_count=2, outcome="done"))
        await db.save(make_row("j-2", attempt_count=1, outcome="failed", failure_kind="system"))

        row = await db.get("j-2") or {}
        self.assertEqual((row["attempt_count"], row["outcome"]), (2, "done"))

    async def test_concurrent_saves_all_land(self) -> None:
        """A hundred saves issued at once are all written, and the pending count drains."""
        db = await self.started_db()

        saving = [db.save(make_row(f"j-{i:03}", comment=str(i))) for i in range(100)]
        self.assertEqual(db.rows_waiting, 100)
        await defer.gatherResults(saving)

        self.assertEqual(db.rows_waiting, 0)
        page = await db.query(limit=500, order="job_id asc")
        self.assertEqual(page["total"], 100)
        self.assertEqual([r["comment"] for r in page["items"]], [str(i) for i in range(100)])

    async def test_refused_row_fails_at_once_and_is_logged(self) -> None:
        """A row the database refuses fails without retries, and the log names its job."""
        events = self.capture_logs()
        db = await self.started_db()

        failure = await self.assertFailure(
            db.save(make_row("j-bad", failure_kind="gremlins")), sa.exc.IntegrityError
        )

        self.assertIn("ck_transcode_reports_failure_kind", str(failure))
        self.assertEqual(db.rows_waiting, 0)
        errors = [formatEvent(e) for e in events if e.get("job_id") == "j-bad"]
        self.assertEqual(len(errors), 1, errors)
        self.assertIn("refused the report row of job j-bad", errors[0])
        await self.assertFailure(db.save({"job_id": "j-partial"}), ValueError)
        await self.assertFailure(db.save(make_row("j-x", colour="red")), ValueError)

    async def test_unreachable_database_delays_rows_without_losing_them(self) -> None:
        """While the database is down a row waits and is retried; it lands once it is back."""
        events = self.capture_logs()
        db = await self.started_db(await self.outage_url())
        await db.save(make_row("j-before"))

        await self.begin_outage()
        saving = db.save(make_row("j-down"))
        attempts = lambda: [e for e in events if e.get("job_id") == "j-down"]  # noqa: E731
        await until(lambda: len(attempts()) >= 3, "three failed attempts")
        self.assertFalse(saving.called)
        self.assertEqual(db.rows_waiting, 1)
        self.assertIn("retrying", formatEvent(attempts()[0]))
        await self.end_outage()

        await saving
        self.assertEqual(db.rows_waiting, 0)
        self.assertEqual((await db.get("j-down") or {})["job_id"], "j-down")
        self.assertIn("after", formatEvent(attempts()[-1]))

    async def test_start_waits_for_an_unreachable_database(self) -> None:
        """Starting while the database is down retries until it answers, then creates it."""
        events = self.capture_logs()
        url = await self.outage_url()
        await self.begin_outage()
        db = self.new_db(url)

        starting = db.start()
        await until(
            lambda: sum("unreachable" in formatEvent(e) for e in events) >= 2,
            "two failed attempts to start",
        )
        self.assertFalse(starting.called)
        await self.end_outage()

        await starting
        # Not through the proxy: it runs on this (the reactor's) thread.
        self.assertEqual(current_revision(self.url), head_revision())

    async def test_stop_waits_for_queued_writes(self) -> None:
        """Rows saved just before stopping are all written by the time stop() fires."""
        db = await self.started_db()
        saving = [db.save(make_row(f"j-stop-{i}")) for i in range(30)]

        await db.stop()

        self.assertTrue(all(d.called for d in saving))
        await defer.gatherResults(saving)
        reopened = await self.started_db()
        self.assertEqual((await reopened.query())["total"], 30)
        await self.assertFailure(db.save(make_row("j-late")), RuntimeError)

    async def test_stop_gives_up_on_rows_it_cannot_write(self) -> None:
        """Stopping while the database is down abandons waiting rows after a bound, naming them."""
        events = self.capture_logs()
        db = await self.started_db(await self.outage_url(), stop_timeout=0.3)
        await self.begin_outage()
        self.addCleanup(self.end_outage)
        saving = db.save(make_row("j-abandoned"))

        await db.stop()

        await self.assertFailure(saving, defer.CancelledError)
        messages = [formatEvent(e) for e in events]
        self.assertTrue(any("gave up" in m and "j-abandoned" in m for m in messages), messages)

    # -- reading

    async def test_query_filters_paginates_and_counts(self) -> None:
        """Filters combine, pages hold the asked slice, and the total counts every match."""
        db = await self.started_db()
        rows = [
            make_row(f"web-{i:02}", finish_time=T0 + timedelta(hours=i), relative_path=f"n/{i}.mov")
            for i in range(12)
        ]
        rows += [
            make_row("audio-1", profile="audio", relative_path="music/100% live.wav"),
            make_row("other-1", customer="Other", relative_path="x/clip_two.mov"),
            make_row("other-2", customer="Other", relative_path="x/cliptwo.mov"),
            make_row(
                "other-3",
                customer="Other",
                outcome="failed",
                failure_kind="source",
                finish_time=None,
                relative_path="y/NEWS.mov",
            ),
        ]
        await defer.gatherResults([db.save(r) for r in rows])

        everything = await db.query(limit=500)
        self.assertEqual(everything["total"], 16)
        self.assertEqual(everything["items"][0]["job_id"], "web-11")  # latest finish first
        self.assertEqual(everything["items"][-1]["job_id"], "other-3")  # no finish time: last

        page = await db.query(customer="Example", profile="web", offset=10, limit=5)
        self.assertEqual((page["total"], page["offset"], page["limit"]), (12, 10, 5))
        self.assertEqual([r["job_id"] for r in page["items"]], ["web-01", "web-00"])

        window = await db.query(
            since=T0 + timedelta(hours=2),
            until=(T0 + timedelta(hours=5)).isoformat(),
            order="finish_time asc",
        )
        self.assertEqual([r["job_id"] for r in window["items"]], ["web-02", "web-03", "web-04"])

        failed = await db.query(outcome="failed")
        self.assertEqual([r["job_id"] for r in failed["items"]], ["other-3"])

        async def found(search: str) -> list[str]:
            return sorted(r["job_id"] for r in (await db.query(search=search))["items"])

        self.assertEqual(await found("100%"), ["audio-1"])
        self.assertEqual(await found("clip_two"), ["other-1"])
        self.assertEqual(await found("news"), ["other-3"])

        by_customer = await db.query(order="customer desc", limit=1000)
        self.assertEqual(by_customer["limit"], 500)
        self.assertEqual(by_customer["items"][0]["customer"], "Other")
        self.assertEqual(
            by_customer["items"][0]["finish_time"], (T0 + timedelta(seconds=30)).isoformat()
        )
        self.assertEqual(await db.count_by_outcome(), {"done": 15, "failed": 1})

    async def test_query_rejects_bad_arguments(self) -> None:
        """Impossible query arguments fail with a ValueError that says what is allowed."""
        db = await self.started_db()

        for arguments, message in [
            ({"outcome": "maybe"}, "outcome must be one of done, failed"),
            ({"offset": -1}, "offset must be an integer >= 0"),
            ({"limit": -5}, "limit must be an integer >= 0"),
            ({"order": "password desc"}, "order must be '<column> [asc|desc]'"),
            ({"order": "finish_time sideways"}, "order must be"),
            ({"since": "last tuesday"}, "since: 'last tuesday' is not an ISO 8601 time"),
        ]:
            failure = await self.assertFailure(db.query(**arguments), ValueError)
            self.assertIn(message, str(failure))

    # -- replaying report files

    async def test_replay_rebuilds_rows_from_report_files(self) -> None:
        """Replaying report files saves their rows, skips broken files, and may run twice."""
        db = await self.started_db()
        folder = tempfile.mkdtemp(prefix="reports ")
        self.addCleanup(shutil.rmtree, folder)
        paths = []
        for i, name in enumerate(["clip one.mov", 'it\'s "two".mov', "trois é.mov"]):
            path = os.path.join(folder, "web", f"{name}.job-{i}.yaml")
            write_report(path, _report(f"job-{i}", name))
            paths.append(path)
        broken = os.path.join(folder, "web", "broken.yaml")
        with open(broken, "w", encoding="utf-8") as stream:
            stream.write("job_id: [unterminated\n")

        self.assertEqual(await replay_reports(db, paths + [broken]), 3)
        self.assertEqual(await replay_reports(db, paths), 3)

        page = await db.query(order="job_id asc")
        self.assertEqual(page["total"], 3)
        self.assertEqual(page["items"][1]["relative_path"], 'news/it\'s "two".mov')

    # -- names the database once refused

    async def test_name_that_is_not_utf8_is_stored_escaped(self) -> None:
        """A Latin-1 file name keeps its row, stored (and replayed) as ``\\xNN``, reversibly."""
        db = await self.started_db()
        name = os.fsdecode(b"caf\xe9 \\ d\xfcne.mov")  # and a backslash, escaped too
        await db.save(
            make_row(
                "j-latin1",
                relative_path=f"news/{name}",
                report_path=f"default:/x/reports/done/web/news/{name}.j-latin1.yaml",
                failure_reason=f"cannot read {name}",
            )
        )

        row = await db.get("j-latin1") or {}
        self.assertEqual(row["relative_path"], "news/caf\\xe9 \\\\ d\\xfcne.mov")
        self.assertEqual(row["failure_reason"], "cannot read caf\\xe9 \\\\ d\\xfcne.mov")
        self.assertEqual(
            os.fsencode(unescape_text(row["relative_path"])), os.fsencode(f"news/{name}")
        )
        json.dumps(row, default=str, ensure_ascii=False).encode("utf-8")  # the API can send it
        page = await db.query(search="caf\\xe9")
        self.assertEqual([r["job_id"] for r in page["items"]], ["j-latin1"])

        # replay-reports stores the report file's real name the same way
        folder = tempfile.mkdtemp(prefix="reports ")
        self.addCleanup(shutil.rmtree, folder)
        path = os.path.join(folder, f"{name}.j-replayed.yaml")
        write_report(path, _report("j-replayed", name))
        self.assertEqual(await replay_reports(db, [path]), 1)
        replayed = await db.get("j-replayed") or {}
        self.assertEqual(replayed["relative_path"], row["relative_path"])

    async def test_names_longer_than_the_old_columns_are_stored(self) -> None:
        """A 230-byte CJK name and 300-character customer, profile, path and worker fit."""
        db = await self.started_db()
        cjk = "映" * 75 + "x.mp4"
        self.assertEqual(len(cjk.encode("utf-8")), 230)
        long = {
            "customer": "C" * 300,
            "profile": "視" * 300,
            "relative_path": "/".join(["d" * 99] * 3) + "/" + cjk,
            "machine_name": "m" * 300,
            "worker_name": "w" * 300,
            "mime_type": "video/" + "x" * 300,
            "video_codec": "v" * 300,
            "checksum": "sha256:" + "0" * 300,
            "qmaster_cluster": "q" * 300,
        }

        await db.save(make_row("j-long", **long))

        row = await db.get("j-long") or {}
        self.assertEqual({k: row[k] for k in long}, long)
        page = await db.query(customer="C" * 300, profile="視" * 300)
        self.assertEqual(page["total"], 1)

    async def test_upgrade_from_0002_widens_the_columns(self) -> None:
        """A database at 0002 is refused until upgraded; then long names fit, old rows stay."""
        config = _alembic_config()
        engine = sa.create_engine(self.url, poolclass=sa.NullPool)
        try:
            with engine.begin() as conn:
                config.attributes["connection"] = conn
                alembic_command.upgrade(config, "0002")
        finally:
            engine.dispose()
        execute(
            self.url,
            "INSERT INTO transcode_reports (job_id, customer, profile, relative_path, outcome)"
            " VALUES ('j-old', 'Example', 'web', 'news\\old.mov', 'done')",
        )
        with self.assertRaises(StaleSchemaError) as raised:
            check_schema(self.url)
        self.assertIn(f"at revision 0002, expected {head_revision()}", str(raised.exception))
        await self.assertFailure(self.new_db().start(), StaleSchemaError)

        upgrade(self.url)

        self.assertEqual(current_revision(self.url), head_revision())
        db = await self.started_db()
        await db.save(make_row("j-new", customer="C" * 300))
        self.assertEqual((await db.get("j-new") or {})["customer"], "C" * 300)
        old = await db.get("j-old") or {}
        self.assertEqual(unescape_text(old["relative_path"]), "news\\old.mov")

    # -- the spool of rows waiting for the database

    async def test_rows_spooled_by_a_killed_admin_are_written_at_the_next_start(self) -> None:
        """Rows waiting when the process died are in its spool; the next start writes them."""
        spool = tempfile.mkdtemp(prefix="spool ")
        self.addCleanup(shutil.rmtree, spool)
        db = await self.started_db(await self.outage_url(), stop_timeout=0.2)
        self.assertEqual(await db.open_spool(spool), 0)
        await db.save(make_row("j-written"))
        await self.begin_outage()
        saving = [db.save(make_row(f"j-wait-{i}")) for i in range(3)]
        self.assertEqual(db.rows_waiting, 3)
        # What a SIGKILL leaves: the spool file as it is now.
        killed = tempfile.mkdtemp(prefix="spool killed ")
        self.addCleanup(shutil.rmtree, killed)
        shutil.copy(os.path.join(spool, SPOOL_FILE), killed)
        await db.stop()  # the other copy: a stop that had to give up on them
        for d in saving:
            await self.assertFailure(d, defer.CancelledError)
        await self.end_outage()

        for folder in (killed, spool):
            again = await self.started_db()
            self.assertEqual(await again.open_spool(folder), 3)
            await until(lambda again=again: again.rows_waiting == 0, "the spooled rows")
            page = await again.query(order="job_id asc")
            self.assertEqual(
                [r["job_id"] for r in page["items"]],
                ["j-wait-0", "j-wait-1", "j-wait-2", "j-written"],
            )
            await again.stop()
            self.assertEqual(RowSpool(folder).open(), [])  # nothing left for a third start
            execute(self.url, "DELETE FROM transcode_reports WHERE job_id LIKE 'j-wait-_'")

    async def test_spooled_rows_do_not_hold_up_the_start(self) -> None:
        """Opening a spool of 250 rows while the database is out fires at once; they land later."""
        folder = tempfile.mkdtemp(prefix="spool ")
        self.addCleanup(shutil.rmtree, folder)
        left = RowSpool(folder)
        left.open()
        for i in range(250):
            left.add(make_row(f"j-{i:03}"))
        left.close()
        db = await self.started_db(await self.outage_url())
        await self.begin_outage()

        self.assertEqual(await db.open_spool(folder), 250)
        self.assertEqual(db.rows_waiting, 250)
        await task.deferLater(reactor, 0.2, lambda: None)
        self.assertEqual(db.rows_waiting, 250)
        await self.end_outage()

        await until(lambda: db.rows_waiting == 0, "the spooled rows")
        self.assertEqual((await db.query())["total"], 250)


def _alembic_config() -> Any:
    """The Alembic configuration the daemon uses (to build a database at an old revision)."""
    from transcoder_admin.reports.schema import _alembic_config as config

    return config()


def _report(job_id: str, name: str) -> dict[str, Any]:
    """A minimal report file of a done job."""
    return {
        "job_id": job_id,
        "attempt": 1,
        "customer": "Example",
        "profile": "web",
        "relpath": f"news/{name}",
        "outcome": "done",
        "failure": None,
        "file": {"size": 10, "checksum": "sha256:00"},
        "source_info": {"duration": 1.0, "audio": {"codec": "aac"}, "video": None},
        "times": {"finished": "2026-11-23T18:55:09+00:00"},
        "targets": [],
    }


class SQLiteReportsDBTests(_ReportsDBContract, unittest.TestCase):
    """The reports database on a SQLite file."""

    def make_database(self) -> str:
        """A path in a new temporary folder."""
        folder = tempfile.mkdtemp(prefix="reports-db ")
        self.addCleanup(shutil.rmtree, folder)
        self.path = os.path.join(folder, "reports.sqlite")
        return f"sqlite:///{self.path}"

    async def outage_url(self) -> str:
        """The same file with a short busy timeout, so a held lock shows quickly."""
        return f"{self.url}?timeout=0.05"

    async def begin_outage(self) -> None:
        """Another process-like connection holds the write lock."""
        self.locker = sqlite3.connect(self.path, isolation_level=None, timeout=5)
        self.locker.execute("BEGIN EXCLUSIVE")

    async def end_outage(self) -> None:
        """Release the lock."""
        if getattr(self, "locker", None) is not None:
            self.locker.execute("COMMIT")
            self.locker.close()
            self.locker = None

    async def test_database_is_in_wal_mode(self) -> None:
        """The database file uses write-ahead logging, so readers never block the writer."""
        await self.started_db()

        with sqlite3.connect(self.path) as conn:
            self.assertEqual(conn.execute("PRAGMA journal_mode").fetchone(), ("wal",))

    async def test_missing_folder_delays_start_until_it_exists(self) -> None:
        """A database in a folder that is not there yet (a mount, say) waits for it."""
        events = self.capture_logs()
        mount = os.path.join(os.path.dirname(self.path), "mount")
        url = f"sqlite:///{os.path.join(mount, 'var', 'reports.sqlite')}"
        db = self.new_db(url)

        starting = db.start()
        await until(lambda: any("unreachable" in formatEvent(e) for e in events), "a retry")
        self.assertFalse(starting.called)
        self.assertFalse(os.path.exists(mount))  # never invents a missing mount point
        os.mkdir(mount)

        await starting
        self.assertEqual(current_revision(url), head_revision())


def _postgres_url() -> str:
    """The PostgreSQL server URL of the environment, or skip (or fail when it is required)."""
    url = os.environ.get(POSTGRES_URL_ENV)
    required = os.environ.get(REQUIRE_POSTGRES_ENV) == "1"
    if not url:
        if required:
            raise AssertionError(f"{REQUIRE_POSTGRES_ENV}=1 but {POSTGRES_URL_ENV} is not set")
        raise unittest.SkipTest(f"{POSTGRES_URL_ENV} is not set")
    try:
        execute(url, "SELECT 1")
    except sa.exc.OperationalError as e:
        if required:
            raise AssertionError(f"PostgreSQL at {POSTGRES_URL_ENV} is unreachable: {e}") from e
        raise unittest.SkipTest(f"PostgreSQL at {POSTGRES_URL_ENV} is unreachable") from e
    return url


@pytest.mark.postgres
class PostgresReportsDBTests(_ReportsDBContract, unittest.TestCase):
    """The reports database on PostgreSQL, each test in a schema of its own."""

    def make_database(self) -> str:
        """A new schema, first on the connection's search path."""
        server = _postgres_url()
        schema = f"reports_test_{uuid.uuid4().hex[:12]}"
        execute(server, f'CREATE SCHEMA "{schema}"')
        self.addCleanup(execute, server, f'DROP SCHEMA "{schema}" CASCADE')
        self.server_url = sa.make_url(server)
        return self._in_schema(self.server_url, schema)

    @staticmethod
    def _in_schema(url: sa.URL, schema: str) -> str:
        return url.update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(
            hide_password=False
        )

    async def outage_url(self) -> str:
        """This test's database through a proxy that the test can cut."""
        self.proxy = Proxy(self.server_url.host or "127.0.0.1", self.server_url.port or 5432)
        self.proxy.listen()
        self.addCleanup(self.proxy.cut)
        proxied = sa.make_url(self.url).set(host="127.0.0.1", port=self.proxy.listen_port)
        return proxied.render_as_string(hide_password=False)

    async def begin_outage(self) -> None:
        """The server goes away: new connections are refused, open ones break."""
        await self.proxy.cut()

    async def end_outage(self) -> None:
        """The server is back."""
        self.proxy.listen()

    async def test_each_test_has_its_own_schema(self) -> None:
        """Tests do not see each other's tables: the database starts empty in its schema."""
        engine = sa.create_engine(self.url, poolclass=sa.NullPool)
        try:
            with engine.connect() as conn:
                self.assertEqual(sa.inspect(conn).get_table_names(), [])
                schema = conn.exec_driver_sql("SELECT current_schema()").scalar()
        finally:
            engine.dispose()
        self.assertTrue(str(schema).startswith("reports_test_"))


class ReportsDBSettingsTests(unittest.TestCase):
    """What ReportsDB accepts and shows, whatever the server."""

    def test_postgresql_needs_an_explicit_driver(self) -> None:
        """A postgresql:// URL without a driver is refused, naming the expected form."""
        with self.assertRaises(ValueError) as raised:
            ReportsDB("postgresql://transcoder:secret@db.example/reports")

        message = str(raised.exception)
        self.assertIn("postgresql+psycopg2://USER@HOST/DATABASE", message)
        self.assertNotIn("secret", message)

    def test_other_databases_are_refused(self) -> None:
        """Only SQLite and PostgreSQL through psycopg2 are accepted."""
        with self.assertRaises(ValueError) as raised:
            ReportsDB("mysql://root@localhost/reports")

        self.assertIn("sqlite:///PATH", str(raised.exception))

    async def test_password_never_appears_in_logs(self) -> None:
        """While retrying an unreachable server the logs show its URL with the password hidden."""
        events: list[dict[str, Any]] = []
        globalLogPublisher.addObserver(events.append)
        self.addCleanup(globalLogPublisher.removeObserver, events.append)
        db = ReportsDB(
            "postgresql+psycopg2://transcoder:s3cret@127.0.0.1:1/reports",
            reactor=reactor,
            retry_delay=0.02,
        )
        self.assertEqual(db.display_url, "postgresql+psycopg2://transcoder:***@127.0.0.1:1/reports")

        starting = db.start()
        await until(lambda: len(events) >= 2, "two failed attempts")
        await db.stop()
        await self.assertFailure(starting, defer.CancelledError)

        messages = [formatEvent(e) for e in events]
        self.assertTrue(any("transcoder:***@127.0.0.1:1" in m for m in messages), messages)
        self.assertFalse(any("s3cret" in m for m in messages), messages)


def test_daemon_refuses_a_database_at_0002_until_upgrade_db(tmp_path: Any) -> None:
    """`run` on a database at 0002 exits naming the command; `upgrade-db` brings it to head."""
    from tests.farm import Farm
    from transcoder_admin.cli import main

    customer = {"name": "C", "profiles": {"p": {"targets": {"c": {"type": "identity"}}}}}
    farm = Farm(str(tmp_path), {"c": customer})
    url = farm.admin_config["reports"]["url"]
    engine = sa.create_engine(url, poolclass=sa.NullPool)
    try:
        with engine.begin() as conn:
            config = _alembic_config()
            config.attributes["connection"] = conn
            alembic_command.upgrade(config, "0002")
    finally:
        engine.dispose()

    farm.start(wait=False)
    assert farm.process is not None
    assert farm.process.wait(60) != 0
    log = farm.log()
    assert (
        f"at revision 0002, expected {head_revision()}" in log
        and "transcoder-admin upgrade-db" in log
    )

    assert main(["upgrade-db", "--config", farm.config_path]) == 0
    assert current_revision(url) == head_revision() == "0004"


def test_the_expected_revision_is_alembics_head_and_the_daemon_never_loads_alembic(tmp_path):
    """HEAD_REVISION names the newest migration; creating an empty database (a first
    start) and checking one already there (every restart) never load Alembic."""
    import subprocess
    import sys

    from alembic.script import ScriptDirectory

    from transcoder_admin.reports.schema import HEAD_REVISION, _alembic_config

    assert ScriptDirectory.from_config(_alembic_config()).get_current_head() == HEAD_REVISION
    url = f"sqlite:///{tmp_path / 'reports.sqlite'}"
    code = (
        "import sys\n"
        "from transcoder_admin.reports.schema import check_schema, current_revision\n"
        f"check_schema({url!r})\n"
        f"print(current_revision({url!r}), 'alembic' in sys.modules)\n"
    )
    for start in ("first start: created", "restart: checked"):
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=60
        )
        assert out.stdout.split() == [HEAD_REVISION, "False"], (start, out.stderr)
