"""The dashboard's page, the files-per-minute counts and the caller's identity."""

from __future__ import annotations

import json
from typing import Any

from treq.testing import StubTreq
from twisted.internet.task import Clock

from transcoder_admin.api.resources import build_resource
from transcoder_admin.api.ui import HEADERS
from transcoder_admin.metrics import PerMinute

from .test_api import APITestCase, FakeAdmin


class CountingAdmin(FakeAdmin):
    """The fake admin with a files-per-minute chart of two minutes."""

    def throughput(self) -> dict[str, Any]:
        minutes = [
            {"minute": "2026-12-04T10:00:00+00:00", "done": 3, "failed": 1},
            {"minute": "2026-12-04T10:01:00+00:00", "done": 0, "failed": 0},
        ]
        return {"minutes": minutes, "done": 3, "failed": 1}


class DashboardTests(APITestCase):
    """GET /ui/ and its assets: static, strict headers, loopback Host only."""

    def setUp(self) -> None:
        self.admin = CountingAdmin()
        self.client: Any = StubTreq(build_resource(self.admin))

    def page(self, path: str, method: str = "GET", host: str | None = None) -> tuple[Any, bytes]:
        headers = {"Host": host} if host else None
        d = self.client.request(
            method, "http://127.0.0.1:7667" + path, headers=headers, allow_redirects=False
        )
        self.client.flush()
        return self.finish(d)

    def test_the_page_and_its_assets_with_their_types_and_policy(self) -> None:
        """index.html, app.js and app.css: their content types and the CSP on each."""
        for path, kind, marker in (
            ("/ui/", b"text/html; charset=utf-8", b'<script src="app.js" defer>'),
            ("/ui/app.js", b"text/javascript; charset=utf-8", b'"use strict";'),
            ("/ui/app.css", b"text/css; charset=utf-8", b"--done"),
        ):
            response, body = self.page(path)
            self.assertEqual(response.code, 200)
            self.assertEqual(response.headers.getRawHeaders(b"content-type"), [kind])
            self.assertIn(marker, body)
            for name, value in HEADERS.items():
                self.assertEqual(response.headers.getRawHeaders(name), [value])
        self.assertIn("script-src 'self'", HEADERS["Content-Security-Policy"])
        self.assertNotIn("unsafe-inline", HEADERS["Content-Security-Policy"])

    def test_redirect_unknown_names_methods_and_hosts(self) -> None:
        """/ui → /ui/; other names 404; POST 405; a foreign Host 403 (DNS rebinding)."""
        response, _ = self.page("/ui")
        self.assertEqual(response.code, 302)
        self.assertEqual(response.headers.getRawHeaders(b"location"), [b"/ui/"])
        for path in ("/ui/index.html", "/ui/../api/v1/status", "/ui/app.js/x", "/ui/.git"):
            response, body = self.page(path)
            self.assertEqual(response.code, 404, path)
            self.assertEqual(json.loads(body)["error"]["code"], 404)  # JSON, as the API's
        response, _ = self.page("/ui/", method="POST")
        self.assertEqual(
            (response.code, response.headers.getRawHeaders(b"allow")), (405, [b"GET, HEAD"])
        )
        response, body = self.page("/ui/", host="attacker.example")
        self.assertEqual(response.code, 403)
        self.assertIn(b"not a loopback name", body)
        response, body = self.page("/ui/", method="HEAD")
        self.assertEqual((response.code, body), (200, b""))

    def test_throughput_and_whoami(self) -> None:
        """The chart's counts as the admin gives them; without tokens, an admin with no name."""
        self.assertEqual(self.call("GET", "/api/v1/throughput")["done"], 3)
        self.assertEqual(self.call("GET", "/api/v1/whoami"), {"name": None, "role": "admin"})


def test_per_minute_counts_the_last_hour_only():
    """Files ended are counted in their minute; the hour slides; empty minutes are zeros."""
    clock = Clock()
    clock.advance(1_000_000 * 60 + 5)  # 5 s into a minute
    counts = PerMinute(clock.seconds)
    counts.count("done")
    counts.count("failed")
    clock.advance(60)
    counts.count("done")
    rows = counts.last()
    assert len(rows) == 60
    assert [(r["done"], r["failed"]) for r in rows[-2:]] == [(1, 1), (1, 0)]
    assert rows[-1]["minute"].endswith(":00+00:00")
    clock.advance(59 * 60)  # the first minute has left the hour
    rows = counts.last()
    assert sum(r["done"] for r in rows) == 1 and rows[0]["done"] == 1
    clock.advance(3600)
    assert sum(r["done"] + r["failed"] for r in counts.last()) == 0


def test_per_minute_is_seeded_from_the_database_for_the_minutes_before_the_start():
    """At start-up the chart reads, minute by minute, the rows an earlier run saved in
    the last hour (none older, none after the start), and adds what ended meanwhile."""
    from datetime import UTC, datetime

    from twisted.internet import defer

    clock = Clock()
    start = 1_000_000 * 60 + 30.0  # 30 s into a minute
    clock.advance(start)
    rows = [  # (finish time, outcome) in the database
        (start - 3600 - 60, "done"),  # before the hour: not shown
        (start - 59 * 60, "done"),  # the hour's first minute
        (start - 120, "failed"),
        (start - 119, "done"),
        (start - 10, "done"),  # the start's own minute, before it
        (start + 5, "done"),  # after the start: counted live, not read
    ]
    asked = []

    def query(*, outcome, since, until, limit):
        asked.append((outcome, since, until, limit))
        low, high = (datetime.fromisoformat(t).timestamp() for t in (since, until))
        total = sum(1 for t, o in rows if o == outcome and low <= t < high)
        return defer.succeed({"total": total, "items": []})

    counts = PerMinute(clock.seconds)
    counts.count("done")  # the file of start + 5 s, counted as it ended
    d = defer.Deferred.fromCoroutine(counts.seed(query, start))
    assert d.called and d.result is None
    assert len(asked) == 120 and {a[3] for a in asked} == {0}
    assert asked[-1][2] == datetime.fromtimestamp(start, UTC).isoformat()  # up to the start
    shown = [(r["done"], r["failed"]) for r in counts.last()]
    assert shown[0] == (1, 0)
    assert shown[-3:] == [(1, 1), (0, 0), (2, 0)]
    assert sum(d for d, _ in shown) == 4 and sum(f for _, f in shown) == 1
