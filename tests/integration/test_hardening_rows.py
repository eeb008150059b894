"""Every finished file gets its reports row, on the real farm with PostgreSQL (issue 9).

Names the database once refused (not UTF-8, longer than its columns) and rows waiting
for a database that is down when the admin is SIGKILLed. The database is cut with a
TCP proxy in front of PostgreSQL, so the machine's server keeps running for others;
each test works in a schema of its own (``postgres_url``).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
from typing import Any

import pytest
import sqlalchemy as sa

from tests.farm import Farm, wait_for

pytestmark = pytest.mark.postgres

#: A 300-character customer and profile name (their folders are short subdirs).
LONG_CUSTOMER = "Customer " + "c" * 291
LONG_PROFILE = "Profile " + "p" * 292


def identity_customer(name: str = "PG", profile: str = "p") -> dict[str, Any]:
    """A customer whose one profile copies the source (fast: no transcoding)."""
    return {
        "name": name,
        "subdir": "pg",
        "profiles": {profile: {"subdir": "p", "targets": {"c": {"type": "identity"}}}},
    }


class CuttableProxy:
    """A TCP proxy on loopback, in threads: ``cut()`` refuses new connections and breaks
    open ones (the server is down), ``restore()`` accepts again on the same port."""

    def __init__(self, host: str, port: int) -> None:
        """Proxy to ``host:port``; call ``restore()`` to start listening."""
        self.target = (host, port)
        self.port = 0
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()
        self._listener: socket.socket | None = None

    def restore(self) -> None:
        """Listen (on the same port as before, after a cut)."""
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        listener.settimeout(0.1)
        self.port = listener.getsockname()[1]
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def cut(self) -> None:
        """Stop listening and break every open connection."""
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.close()
        with self._lock:
            sockets, self._sockets = self._sockets, set()
        for s in sockets:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()

    def _accept(self, listener: socket.socket) -> None:
        while self._listener is listener:
            try:
                client, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                server = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            client.settimeout(None)
            server.settimeout(None)
            with self._lock:
                self._sockets |= {client, server}
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
        for s in (source, sink):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)


@pytest.fixture
def proxied(postgres_url):
    """(the test's PostgreSQL URL, the same database through a proxy that can be cut)."""
    url = sa.make_url(postgres_url)
    proxy = CuttableProxy(url.host or "127.0.0.1", url.port or 5432)
    proxy.restore()
    through = url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    yield postgres_url, through, proxy
    proxy.cut()


def database_rows(url: str) -> list[tuple[Any, ...]]:
    """(job_id, customer, profile, relative_path, outcome) of every row, read directly."""
    engine = sa.create_engine(url, poolclass=sa.NullPool)
    try:
        with engine.connect() as conn:
            query = "SELECT job_id, customer, profile, relative_path, outcome"
            query += " FROM transcode_reports"
            return sorted(tuple(r) for r in conn.execute(sa.text(query)))
    finally:
        engine.dispose()


def execute(url: str, statement: str) -> None:
    """Run one SQL statement on a connection of our own."""
    engine = sa.create_engine(url, poolclass=sa.NullPool)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text(statement))
    finally:
        engine.dispose()


def api_rows(farm: Farm, count: int) -> list[dict[str, Any]]:
    """The API's report rows once there are ``count`` of them."""
    body = wait_for(
        lambda: (lambda b: b if b["total"] >= count else None)(farm.get("/api/v1/reports")),
        30,
        f"{count} rows in /api/v1/reports",
    )
    assert body["total"] == count, body
    return sorted(body["items"], key=lambda r: r["relative_path"])


def test_latin1_and_long_names_get_their_rows(tmp_path, clips, postgres_url, farms):
    """A Latin-1 file name and 300-character customer, profile and path each get a row:
    the API shows the name escaped (\\xe9), the report file keeps the real name, and
    replay-reports stores the very same rows."""
    farm = Farm(
        str(tmp_path), {"pg": identity_customer(LONG_CUSTOMER, LONG_PROFILE)},
        reports_url=postgres_url,
    )  # fmt: skip
    farms.append(farm)
    farm.start()
    latin1 = os.fsdecode(b"caf\xe9.m4a")
    deep = "/".join(["d" * 99] * 3) + "/clip.m4a"
    farm.drop("pg", "p", latin1, clips["audio"])
    farm.drop("pg", "p", deep, clips["audio"])

    wait_for(lambda: farm.finished("pg", "p") == 2, 60, "both jobs")
    rows = api_rows(farm, 2)

    assert [r["relative_path"] for r in rows] == ["caf\\xe9.m4a", deep]
    assert {(r["customer"], r["profile"], r["outcome"]) for r in rows} == {
        (LONG_CUSTOMER, LONG_PROFILE, "done")
    }
    [latin1_report] = [r for r in farm.reports("pg", "p", "done") if "caf" in r["relpath"]]
    assert latin1_report["relpath"] == latin1  # the real name, surrogate-escaped by Python
    live = database_rows(postgres_url)
    assert sorted(r[3] for r in live) == ["caf\\xe9.m4a", deep]
    assert "refused the report row" not in farm.log()

    # replay-reports rebuilds the same rows from the report files, escape included
    farm.stop()
    execute(postgres_url, "DELETE FROM transcode_reports")
    replay = [sys.executable, "-m", "transcoder_admin", "replay-reports"]
    done = subprocess.run(
        [*replay, "--config", farm.config_path], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0 and "replayed 2 reports" in done.stdout, done
    assert database_rows(postgres_url) == live


def test_rows_waiting_for_a_cut_database_survive_a_killed_admin(tmp_path, clips, proxied, farms):
    """PostgreSQL cut while files finish, the admin SIGKILLed with their rows waiting, the
    database back, the admin started again: every row is there, in the API and the DB."""
    direct, through, proxy = proxied
    farm = Farm(str(tmp_path), {"pg": identity_customer()}, reports_url=through)
    farms.append(farm)
    farm.start()
    farm.drop("pg", "p", "before.m4a", clips["audio"])
    wait_for(lambda: farm.get("/api/v1/reports")["total"] == 1, 60, "the first row")

    proxy.cut()
    names = [f"during-{i}.m4a" for i in range(3)]
    for name in names:
        farm.drop("pg", "p", name, clips["audio"])
    wait_for(lambda: farm.finished("pg", "p") == 4, 60, "the files to finish")
    wait_for(lambda: farm.get("/api/v1/status")["reports_pending"] == 3, 30, "3 rows waiting")
    farm.signal(signal.SIGKILL)
    assert farm.process is not None
    farm.process.wait(30)
    assert [r[3] for r in database_rows(direct)] == ["before.m4a"]  # they were only waiting

    proxy.restore()
    farm.start()

    rows = api_rows(farm, 4)
    assert [r["relative_path"] for r in rows] == ["before.m4a", *names]
    reports = {r["job_id"]: r["relpath"] for r in farm.reports("pg", "p", "done")}
    assert {r["job_id"]: r["relative_path"] for r in rows} == reports
    assert [(r[0], r[3]) for r in database_rows(direct)] == sorted(
        (job_id, relpath) for job_id, relpath in reports.items()
    )
    assert "3 report row(s) were waiting for the database" in farm.log()
    wait_for(lambda: farm.get("/api/v1/status")["reports_pending"] == 0, 10, "nothing waiting")
