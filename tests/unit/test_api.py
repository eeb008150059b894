"""Unit tests of the JSON API, served in memory by twisted.web over a fake admin."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from typing import Any

from jsonschema import Draft202012Validator
from openapi_spec_validator import validate as validate_openapi
from treq.testing import StubTreq
from twisted.internet.address import IPv4Address
from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.error import ConnectionDone
from twisted.internet.testing import MemoryReactor, StringTransport
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase
from twisted.web.server import Site

from tests.openapi_check import DOCUMENT, check_answer
from transcoder_admin.api import (
    ROUTES,
    APIService,
    build_resource,
    build_site,
    check_listen,
)
from transcoder_admin.config.errors import ConfigError, ConfigProblem
from transcoder_admin.context.checks import load_configuration
from transcoder_admin.context.customers import StoreContext
from transcoder_admin.context.describe import describe_customer
from transcoder_admin.errors import InvalidStateError, NoSuchNotification, NotQueued, NotRunning
from transcoder_admin.intake import NotStuck

BASE = "http://127.0.0.1:7667"
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
JSON_TYPE = [b"application/json; charset=utf-8"]
STATES = ("pending", "ignored", "queued", "transcoding", "done", "failed", "stuck")
T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def page(items: list[dict[str, Any]], offset: int, limit: int) -> dict[str, Any]:
    """The admin's page of a list."""
    return {"total": len(items), "offset": offset, "limit": limit, "items": items[offset:][:limit]}


class FakeAdmin:
    """Stands in for the admin with in-memory answers honouring its public methods' contract."""

    def __init__(self) -> None:
        self.state = "started"
        self.report_calls: list[dict[str, Any]] = []
        self.component_calls: list[tuple[str | None, str | None]] = []
        self.pending_reports: Deferred[dict[str, Any]] | None = None
        self.pending_reload: Deferred[dict[str, Any]] | None = None
        self.reload_problems: list[ConfigProblem] = []
        self.status_error: Exception | None = None
        self.file_list: list[dict[str, Any]] = [
            {"customer": "acme", "profile": "web", "relpath": "news/clip one.mov", "state": s}
            for s in STATES
        ]
        self.file_list[-1].update(reason="cannot move the source to failed", since=T0)
        self.retried: list[tuple[str, str, str]] = []
        self.prioritized: list[tuple[str, str, str, int]] = []
        self.cancelled: list[tuple[str, str, str, str, str]] = []
        self.notification_list: list[dict[str, Any]] = [
            {
                "id": f"msg_{n}",
                "kind": "http",
                "trigger": "file-done",
                "destination": "https://hooks.example.com/x",
                "job_id": "J1",
                "customer": "acme",
                "profile": "web",
                "relpath": "news/clip one.mov",
                "target": None,
                "state": state,
                "attempts": attempts,
                "created": T0.isoformat(),
                "next_attempt": None,
                "finished": T0.isoformat(),
                "last_error": "HTTP 404 Not Found" if state == "failed" else None,
            }
            for n, (state, attempts) in enumerate([("failed", 1), ("delivered", 2)])
        ]

    def health(self) -> dict[str, Any]:
        """Healthy, in the current state."""
        return {"status": "ok", "state": self.state, "checks": {"database": "ok"}}

    def status(self) -> dict[str, Any]:
        """A fixed status, or the configured error."""
        if self.status_error is not None:
            raise self.status_error
        return {
            "state": self.state,
            "version": "0.1.0",
            "uptime": 12.5,
            "files": {state: 1 for state in STATES},
            "capacity": 4,
            "running": 1,
            "queued": 1,
            "db_pending": 0,
        }

    def customers(self) -> list[dict[str, Any]]:
        """The shipped example configuration, described as the admin describes it."""
        config = load_configuration(os.path.join(ROOT, "etc", "transcoder-admin.yaml"))
        return [describe_customer(c) for c in StoreContext(config).customers()]

    def workers(self) -> list[dict[str, Any]]:
        """One local worker."""
        return [
            {
                "name": "local-1",
                "host": "localhost",
                "roots": {"default": "/srv/media"},
                "max_jobs": 2,
                "running": 1,
                "load": 1,
                "state": "attached",
                "kind": "process",
                "last_heartbeat": T0,
                "silent_for": 1.5,
                "pid": 4242,
                "components": {"monitors": 1, "jobs": 1, "failed_kept": 0},
            }
        ]

    def queue(self, offset: int = 0, limit: int = 100) -> dict[str, Any]:
        """One page of two queued files, the higher priority first."""
        return page(self.queued_files(), offset, limit)

    def queued_files(self) -> list[dict[str, Any]]:
        """Two queued files, the higher priority first."""
        return [
            {
                "customer": "acme",
                "profile": "web",
                "relpath": "news/clip two.mov",
                "priority": 80,
                "detected": T0,
                "queued": T0,
            },
            {
                "customer": "zeta",
                "profile": "audio",
                "relpath": "talks/épisode 1.wav",
                "priority": 50,
                "detected": T0,
                "queued": T0,
            },
        ]

    def tasks(self) -> list[dict[str, Any]]:
        """One running job."""
        return [
            {
                "job_id": "job-1",
                "customer": "acme",
                "profile": "web",
                "relpath": "news/clip one.mov",
                "worker": "local-1",
                "attempt": 1,
                "started": T0,
                "progress": {"percent": 42.0, "speed": 1.5, "eta": 30.0, "target": "hd"},
            }
        ]

    def components(
        self, kind: str | None = None, worker: str | None = None
    ) -> list[dict[str, Any]]:
        """A monitor and a failed job kept for inspection, filtered as asked."""
        self.component_calls.append((kind, worker))
        rows = [
            {
                "id": "w1/monitor/acme",
                "kind": "monitor",
                "worker": "w1",
                "name": "acme",
                "state": "watching",
                "since": T0,
            },
            {
                "id": "w2/transcoder/J1",
                "kind": "transcoder",
                "worker": "w2",
                "name": "J1",
                "state": "failed",
                "since": T0,
                "attempt": None,
                "path": "temp:/.failed/w2/J1",
                "reason": "not a media file",
            },
        ]
        return [
            r
            for r in rows
            if (kind is None or r["kind"] == kind) and (worker is None or r["worker"] == worker)
        ]

    def files(self, state: str | None = None, offset: int = 0, limit: int = 100) -> dict[str, Any]:
        """One page of the known files in ``state``, or of all of them."""
        if state is not None and state not in STATES:
            raise ValueError(f"unknown state {state!r}")
        chosen = [f for f in self.file_list if state is None or f["state"] == state]
        return page(chosen, offset, limit)

    def reports(self, **filters: Any) -> Deferred[dict[str, Any]]:
        """One page of fixed reports; ``since`` must be an ISO date."""
        self.report_calls.append(filters)
        if self.pending_reports is not None:
            return self.pending_reports
        if "since" in filters:
            try:
                datetime.fromisoformat(filters["since"])
            except ValueError:
                return fail(ValueError(f"since: {filters['since']!r} is not an ISO 8601 time"))
        offset, limit = filters.get("offset", 0), filters.get("limit", 50)
        items = [{"id": 1, "customer": "acme", "outcome": "done"}]
        return succeed({"total": 1, "offset": offset, "limit": limit, "items": items})

    def pause(self) -> Deferred[dict[str, Any]]:
        """Pause, unless already paused."""
        if self.state == "paused":
            return fail(InvalidStateError("the admin is already paused"))
        self.state = "paused"
        return succeed({"state": self.state})

    def resume(self) -> Deferred[dict[str, Any]]:
        """Resume, unless not paused."""
        if self.state != "paused":
            return fail(InvalidStateError("the admin is not paused"))
        self.state = "started"
        return succeed({"state": self.state})

    def retry_file(self, customer: str, profile: str, relpath: str) -> dict[str, Any]:
        """Offer a stuck file again; NotStuck for any other."""
        stuck = [f for f in self.file_list if f["state"] == "stuck"]
        if not any(
            (f["customer"], f["profile"], f["relpath"]) == (customer, profile, relpath)
            for f in stuck
        ):
            raise NotStuck(f"{customer}/{profile}/{relpath} is not stuck")
        self.retried.append((customer, profile, relpath))
        return {"customer": customer, "profile": profile, "relpath": relpath, "state": "offered"}

    def set_priority(
        self, customer: str, profile: str, relpath: str, priority: int
    ) -> dict[str, Any]:
        """Re-order the two queued files; NotQueued for any other."""
        files = self.queued_files()
        for index, row in enumerate(files):
            if (row["customer"], row["profile"], row["relpath"]) == (customer, profile, relpath):
                self.prioritized.append((customer, profile, relpath, priority))
                others = [f["priority"] for i, f in enumerate(files) if i != index]
                position = sum(1 for other in others if other >= priority)
                return {**row, "priority": priority, "state": "queued", "position": position}
        raise NotQueued(f"{customer}/{profile}: {relpath!r} is not queued")

    def cancel_task(
        self, customer: str, profile: str, relpath: str, by: str, then: str
    ) -> Deferred[dict[str, Any]]:
        """Cancel the one running task (talks/live.wav); NotRunning for any other."""
        if relpath != "talks/live.wav":
            return fail(NotRunning(f"{customer}/{profile}/{relpath} has no running job"))
        self.cancelled.append((customer, profile, relpath, by, then))
        state = "failed" if then == "fail" else "returned"
        return succeed(
            {
                "customer": customer,
                "profile": profile,
                "relpath": relpath,
                "job_id": "20261204T000000Z-0123456789",
                "cancelled_by": by,
                "state": state,
                "reason": f"cancelled by {by}" if state == "failed" else None,
                "report": None,
            }
        )

    def notifications(
        self, state: str | None = None, offset: int = 0, limit: int = 100
    ) -> Deferred[dict[str, Any]]:
        """A page of the notification list, newest first."""
        items = [n for n in self.notification_list if state in (None, n["state"])]
        page = items[offset : offset + limit]
        return succeed({"items": page, "total": len(items), "offset": offset, "limit": limit})

    def retry_notification(self, ident: str) -> Deferred[dict[str, Any]]:
        """Queue a failed one again; NoSuchNotification for an unknown id."""
        for n in self.notification_list:
            if n["id"] == ident:
                if n["state"] == "failed":
                    n.update(state="queued", attempts=0, next_attempt=T0.isoformat())
                return succeed(n)
        return fail(NoSuchNotification(f"no notification {ident!r}"))

    def reload(self) -> Deferred[dict[str, Any]]:
        """Reload, failing with the configured problems if any."""
        if self.pending_reload is not None:
            return self.pending_reload
        if self.reload_problems:
            return fail(ConfigError(self.reload_problems))
        return succeed({"added": ["newco"], "removed": [], "changed": ["acme"]})


class APITestCase(SynchronousTestCase):
    """Base: a fake admin behind the real resource tree, reached through StubTreq."""

    def setUp(self) -> None:
        self.admin = FakeAdmin()
        self.client: Any = StubTreq(build_resource(self.admin))

    def start(self, method: str, path: str, data: bytes | None = None) -> Deferred[Any]:
        """Send a request and pump what is ready; return the response Deferred."""
        d = self.client.request(method, BASE + path, data=data)
        self.client.flush()
        return d

    def finish(self, d: Deferred[Any]) -> tuple[Any, bytes]:
        """The response and its body, once the server has answered."""
        self.client.flush()
        response = self.successResultOf(d)
        body = self.client.content(response)
        self.client.flush()
        return response, self.successResultOf(body)

    def call(
        self, method: str, path: str, code: int = 200, data: bytes | None = None
    ) -> dict[str, Any]:
        """Make a request, check its status, JSON type and documented schema; return the JSON."""
        response, body = self.finish(self.start(method, path, data))
        self.assertEqual((response.code, body), (code, body))
        self.assertEqual(response.headers.getRawHeaders(b"content-type"), JSON_TYPE)
        value = json.loads(body)
        if code != 404:
            check_answer(method if method in ("GET", "POST") else "get", path, code, value)
        if code >= 400:
            self.assertEqual(value["error"]["code"], code)
        return value

    def error_message(self, method: str, path: str, code: int, data: bytes | None = None) -> str:
        """Make a request expected to fail with ``code``; return the error message."""
        return str(self.call(method, path, code, data)["error"]["message"])


class ReadTests(APITestCase):
    """The GET paths answer the admin's values as documented JSON."""

    def test_health(self) -> None:
        """GET health answers the admin's health."""
        self.assertEqual(self.call("GET", "/api/v1/health"), self.admin.health())

    def test_status(self) -> None:
        """GET status answers the admin's status."""
        self.assertEqual(self.call("GET", "/api/v1/status")["capacity"], 4)

    def test_customers_with_profiles_targets_and_settings_in_force(self) -> None:
        """The example customer: folders, inherited settings, targets with codecs."""
        [customer] = self.call("GET", "/api/v1/customers")["items"]
        self.assertEqual((customer["name"], customer["priority"]), ("Example", 100))
        [web] = customer["profiles"]
        self.assertEqual(web["priority"], 100 * 1000 + 100)
        self.assertEqual(web["folders"]["incoming"], "default:/example/files/incoming/web")
        settings = web["settings"]
        # the profile's own, the admin's defaults, the built-in ones
        self.assertEqual(settings["transcoding_timeout"], 1800)
        self.assertEqual(settings["max_attempts"], 2)
        self.assertEqual(settings["post_process_timeout"], 60)
        self.assertTrue(settings["allow_without_audio"])
        targets = {t["name"]: t for t in web["targets"]}
        self.assertEqual(list(targets), ["high", "low", "audio", "thumbs", "original"])
        self.assertEqual(targets["high"]["video"]["codec"], "h264")
        self.assertEqual(targets["low"]["muxer"], "webm")
        self.assertEqual(targets["thumbs"]["extension"], "jpg")
        self.assertEqual(targets["original"]["extension"], "")
        self.assertEqual(web["notify_done"], 0)

    def test_workers(self) -> None:
        """GET workers lists every worker with the total."""
        body = self.call("GET", "/api/v1/workers")
        [worker] = self.admin.workers()
        self.assertEqual(
            body, {"items": [{**worker, "last_heartbeat": T0.isoformat()}], "total": 1}
        )

    def test_queue_keeps_order_and_sends_times_as_iso(self) -> None:
        """GET queue keeps dispatch order, non-ASCII names, and sends times as ISO 8601."""
        items = self.call("GET", "/api/v1/queue")["items"]
        self.assertEqual(
            [i["relpath"] for i in items], ["news/clip two.mov", "talks/épisode 1.wav"]
        )
        self.assertEqual(items[0]["queued"], "2025-03-01T12:00:00+00:00")

    def test_queue_pages(self) -> None:
        """GET queue?offset=1&limit=1 answers the second file and the total of all pages."""
        body = self.call("GET", "/api/v1/queue?offset=1&limit=1")
        self.assertEqual(body["total"], 2)
        self.assertEqual((body["offset"], body["limit"]), (1, 1))
        self.assertEqual([i["relpath"] for i in body["items"]], ["talks/épisode 1.wav"])

    def test_files_pages(self) -> None:
        """GET files with a limit answers that many files and the total."""
        body = self.call("GET", "/api/v1/files?limit=2")
        self.assertEqual((len(body["items"]), body["total"]), (2, len(STATES)))

    def test_tasks(self) -> None:
        """GET tasks lists running jobs with their progress."""
        items = self.call("GET", "/api/v1/tasks")["items"]
        self.assertEqual(items[0]["progress"]["percent"], 42.0)

    def test_components_filtered_by_kind_and_worker(self) -> None:
        """GET components lists what runs on workers; kind and worker filter it."""
        body = self.call("GET", "/api/v1/components")
        self.assertEqual(body["total"], 2)
        kept = self.call("GET", "/api/v1/components?kind=transcoder&worker=w2")["items"]
        self.assertEqual(
            [(c["state"], c["path"]) for c in kept], [("failed", "temp:/.failed/w2/J1")]
        )
        self.assertEqual(self.admin.component_calls[-1], ("transcoder", "w2"))

    def test_files_all(self) -> None:
        """GET files without a state lists every file."""
        self.assertEqual(self.call("GET", "/api/v1/files")["total"], len(STATES))

    def test_files_by_state(self) -> None:
        """GET files?state=failed lists only failed files."""
        body = self.call("GET", "/api/v1/files?state=failed")
        self.assertEqual([f["state"] for f in body["items"]], ["failed"])

    def test_files_empty_state_means_all(self) -> None:
        """An empty state value counts as not given."""
        self.assertEqual(self.call("GET", "/api/v1/files?state=")["total"], len(STATES))

    def test_file_name_that_is_not_utf8(self) -> None:
        """A file name with undecodable bytes is sent escaped rather than failing the listing."""
        self.admin.file_list = [{"relpath": "bad\udcff.mov", "state": "failed"}]
        self.assertEqual(self.call("GET", "/api/v1/files")["items"][0]["relpath"], "bad\udcff.mov")

    def test_reports_passes_filters(self) -> None:
        """GET reports hands every filter to the admin, offset and limit as integers."""
        query = (
            "customer=acme&profile=web&outcome=failed&since=2025-01-01&until=2025-02-01"
            "&search=clip%20one&offset=20&limit=10"
        )
        body = self.call("GET", "/api/v1/reports?" + query)
        self.assertEqual((body["offset"], body["limit"]), (20, 10))
        self.assertEqual(
            self.admin.report_calls,
            [
                {
                    "customer": "acme",
                    "profile": "web",
                    "outcome": "failed",
                    "since": "2025-01-01",
                    "until": "2025-02-01",
                    "search": "clip one",
                    "offset": 20,
                    "limit": 10,
                }
            ],
        )

    def test_reports_renders_when_the_admin_answers(self) -> None:
        """GET reports waits for the admin's Deferred and answers once it fires."""
        self.admin.pending_reports = Deferred()
        d = self.start("GET", "/api/v1/reports")
        self.assertNoResult(d)
        self.admin.pending_reports.callback({"total": 0, "offset": 0, "limit": 50, "items": []})
        response, body = self.finish(d)
        self.assertEqual((response.code, json.loads(body)["total"]), (200, 0))

    def test_trailing_slash(self) -> None:
        """A trailing slash reaches the same resource."""
        self.assertEqual(self.call("GET", "/api/v1/health/")["status"], "ok")

    def test_head_has_headers_and_no_body(self) -> None:
        """HEAD answers GET's status and length without a body."""
        get_response, get_body = self.finish(self.start("GET", "/api/v1/status"))
        response, body = self.finish(self.start("HEAD", "/api/v1/status"))
        self.assertEqual((response.code, body), (200, b""))
        self.assertEqual(response.headers.getRawHeaders(b"content-length"), [b"%d" % len(get_body)])
        self.assertEqual(response.headers.getRawHeaders(b"content-type"), JSON_TYPE)


class ActionTests(APITestCase):
    """The POST paths call the admin's actions and map its errors."""

    def test_pause_and_resume(self) -> None:
        """POST pause then POST resume change the admin's state and answer it."""
        self.assertEqual(self.call("POST", "/api/v1/pause"), {"state": "paused"})
        self.assertEqual(self.call("POST", "/api/v1/resume"), {"state": "started"})

    def test_pause_twice_conflicts(self) -> None:
        """A second pause answers 409 with the admin's reason."""
        self.call("POST", "/api/v1/pause")
        message = self.error_message("POST", "/api/v1/pause", 409)
        self.assertIn("already paused", message)

    def test_resume_when_running_conflicts(self) -> None:
        """Resuming a running admin answers 409."""
        self.error_message("POST", "/api/v1/resume", 409)

    def test_reload(self) -> None:
        """POST reload answers what was added, removed and changed."""
        body = self.call("POST", "/api/v1/reload")
        self.assertEqual(body, {"added": ["newco"], "removed": [], "changed": ["acme"]})

    def test_reload_with_invalid_config(self) -> None:
        """An invalid new configuration answers 422 listing every problem."""
        self.admin.reload_problems = [
            ConfigProblem("acme.yaml", "profiles.web.priority", "must be 0-100", 900, True),
            ConfigProblem("zeta.yaml", "name", "is missing"),
        ]
        error = self.call("POST", "/api/v1/reload", 422)["error"]
        self.assertEqual(
            error["problems"],
            [
                "acme.yaml: profiles.web.priority: bad value 900: must be 0-100",
                "zeta.yaml: name: is missing",
            ],
        )

    def test_body_is_ignored(self) -> None:
        """A small request body does not disturb an action."""
        self.assertEqual(self.call("POST", "/api/v1/pause", data=b"x" * 65536)["state"], "paused")

    def test_body_over_limit(self) -> None:
        """A body over 64 KiB answers 413 and the action is not done."""
        self.error_message("POST", "/api/v1/pause", 413, data=b"x" * 65537)
        self.assertEqual(self.admin.state, "started")


STUCK = {"customer": "acme", "profile": "web", "relpath": "news/clip one.mov"}


class RetryTests(APITestCase):
    """POST files/retry offers a stuck file again; anything else is refused with why."""

    def retry(self, body: Any, code: int) -> dict[str, Any]:
        """POST ``body`` (JSON unless bytes) to files/retry, expecting ``code``."""
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        return self.call("POST", "/api/v1/files/retry", code, data=data)

    def test_stuck_files_are_listed_with_reason_and_since(self) -> None:
        """GET files?state=stuck lists the stuck file with why and since when."""
        [item] = self.call("GET", "/api/v1/files?state=stuck")["items"]
        self.assertEqual(item["reason"], "cannot move the source to failed")
        self.assertEqual(item["since"], T0.isoformat())

    def test_retry_a_stuck_file(self) -> None:
        """A stuck file named in the body is offered again: 202 with the file."""
        body = self.retry(STUCK, 202)
        self.assertEqual(body, {**STUCK, "state": "offered"})
        self.assertEqual(self.admin.retried, [tuple(STUCK.values())])

    def test_retry_a_file_that_is_not_stuck(self) -> None:
        """A file that is not stuck answers 404 naming it, and nothing is retried."""
        message = self.retry({**STUCK, "relpath": "other.mov"}, 404)["error"]["message"]
        self.assertIn("other.mov is not stuck", message)
        self.assertEqual(self.admin.retried, [])

    def test_bad_bodies(self) -> None:
        """A body that is not the documented object answers 400 saying what is wrong."""
        cases = [
            (b"", "not JSON"),
            (b"{not json", "not JSON"),
            (b"\xff", "not JSON"),
            ([STUCK], "must be a JSON object"),
            ({"customer": "acme", "profile": "web"}, "'relpath'"),
            ({**STUCK, "relpath": 7}, "'relpath'"),
            ({**STUCK, "customer": ""}, "'customer'"),
            ({**STUCK, "extra": 1}, "unknown field 'extra'"),
            ({**STUCK, "relpath": "x" * 5000}, "longer than 4096"),
        ]
        for body, expected in cases:
            self.assertIn(expected, self.retry(body, 400)["error"]["message"], body)
        self.assertEqual(self.admin.retried, [])

    def test_retry_only_by_post(self) -> None:
        """GET files/retry answers 405 allowing POST; its neighbours stay unknown."""
        response, _ = self.finish(self.start("GET", "/api/v1/files/retry"))
        self.assertEqual(response.code, 405)
        self.assertEqual(response.headers.getRawHeaders(b"allow"), [b"POST"])
        self.error_message("POST", "/api/v1/files/other", 404)
        self.error_message("GET", "/api/v1/files/retry/more", 404)

    def test_retry_is_documented_with_its_body(self) -> None:
        """The OpenAPI document gives the body's fields, 202 and 404."""
        operation = DOCUMENT["paths"]["/api/v1/files/retry"]["post"]
        schema = operation["requestBody"]["content"]["application/json"]["schema"]
        self.assertEqual(schema["required"], ["customer", "profile", "relpath"])
        self.assertIn("202", operation["responses"])
        self.assertIn("404", operation["responses"])


QUEUED = {"customer": "zeta", "profile": "audio", "relpath": "talks/épisode 1.wav"}


class CancelTests(APITestCase):
    """POST tasks/cancel: the caller's name and choice reach the admin."""

    def cancel(self, body: Any, code: int) -> dict[str, Any]:
        """POST ``body`` as JSON to tasks/cancel, expecting ``code``."""
        return self.call("POST", "/api/v1/tasks/cancel", code, data=json.dumps(body).encode())

    def test_the_source_fails_by_default_and_without_tokens_an_operator_asked(self) -> None:
        """No ``then``: fail; no token: "an operator" is who cancelled."""
        live = {"customer": "zeta", "profile": "audio", "relpath": "talks/live.wav"}
        body = self.cancel(live, 200)
        self.assertEqual((body["state"], body["reason"]), ("failed", "cancelled by an operator"))
        self.cancel({**live, "then": "incoming"}, 200)
        self.assertEqual(
            [(c[3], c[4]) for c in self.admin.cancelled],
            [("an operator", "fail"), ("an operator", "incoming")],
        )

    def test_bad_requests(self) -> None:
        """No running job: 404; an unknown choice, a caller field, a missing file: 400."""
        live = {"customer": "zeta", "profile": "audio", "relpath": "talks/live.wav"}
        message = self.cancel({**live, "relpath": "idle.wav"}, 404)["error"]["message"]
        self.assertIn("has no running job", message)
        message = self.cancel({**live, "then": "trash"}, 400)["error"]["message"]
        self.assertIn("'trash' is not one of fail, incoming", message)
        self.assertIn(
            "unknown field 'caller'", self.cancel({**live, "caller": "x"}, 400)["error"]["message"]
        )
        self.cancel({"customer": "zeta", "profile": "audio"}, 400)
        self.assertEqual(self.admin.cancelled, [])

    def test_documented_with_its_optional_choice(self) -> None:
        """The body's ``then`` is an optional enum; 404 and 409 are described."""
        operation = DOCUMENT["paths"]["/api/v1/tasks/cancel"]["post"]
        schema = operation["requestBody"]["content"]["application/json"]["schema"]
        self.assertEqual(schema["required"], ["customer", "profile", "relpath"])
        self.assertEqual(schema["properties"]["then"]["enum"], ["fail", "incoming"])
        self.assertTrue({"200", "404", "409"} <= set(operation["responses"]))


class PriorityTests(APITestCase):
    """POST queue/priority gives one queued file a priority of its own."""

    def prioritize(self, body: Any, code: int) -> dict[str, Any]:
        """POST ``body`` (JSON unless bytes) to queue/priority, expecting ``code``."""
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        return self.call("POST", "/api/v1/queue/priority", code, data=data)

    def test_a_queued_file_moves_ahead(self) -> None:
        """200 with the file, its new priority and its place in the queue."""
        body = self.prioritize({**QUEUED, "priority": 900}, 200)
        self.assertEqual((body["priority"], body["state"], body["position"]), (900, "queued", 0))
        self.assertEqual(body["relpath"], "talks/épisode 1.wav")
        self.assertEqual(self.admin.prioritized, [(*QUEUED.values(), 900)])

    def test_a_file_that_is_not_queued_is_404(self) -> None:
        """404 naming the file; nothing changes."""
        message = self.prioritize({**QUEUED, "relpath": "gone.wav", "priority": 1}, 404)
        self.assertIn("'gone.wav' is not queued", message["error"]["message"])
        self.assertEqual(self.admin.prioritized, [])

    def test_bad_priorities(self) -> None:
        """Not a whole number, out of range, missing: 400 saying which."""
        cases = [
            ({**QUEUED, "priority": "900"}, "'priority' of the request body must be a whole"),
            ({**QUEUED, "priority": 9.5}, "must be a whole number"),
            ({**QUEUED, "priority": True}, "must be a whole number"),
            ({**QUEUED, "priority": -1}, "'priority' must be ≥ 0"),
            ({**QUEUED, "priority": 1_000_000}, "'priority' must be ≤ 999999"),
            (QUEUED, "'priority'"),
            ({**QUEUED, "priority": 5, "relpath": ""}, "'relpath'"),
        ]
        for body, expected in cases:
            self.assertIn(expected, self.prioritize(body, 400)["error"]["message"], body)
        self.assertEqual(self.admin.prioritized, [])

    def test_documented_with_an_integer_field(self) -> None:
        """The body schema types priority as a bounded integer."""
        operation = DOCUMENT["paths"]["/api/v1/queue/priority"]["post"]
        schema = operation["requestBody"]["content"]["application/json"]["schema"]
        self.assertEqual(
            schema["properties"]["priority"],
            {
                "type": "integer",
                "description": "The new priority.",
                "minimum": 0,
                "maximum": 999_999,
            },
        )
        self.assertEqual(schema["required"], ["customer", "profile", "relpath", "priority"])


class NotificationTests(APITestCase):
    """GET notifications lists them by state; POST notifications/retry queues one again."""

    def test_notifications_by_state(self) -> None:
        """All of them, newest first, or one state; the page says the total."""
        everything = self.call("GET", "/api/v1/notifications")
        self.assertEqual([n["id"] for n in everything["items"]], ["msg_0", "msg_1"])
        failed = self.call("GET", "/api/v1/notifications?state=failed&limit=10")
        self.assertEqual(([n["id"] for n in failed["items"]], failed["total"]), (["msg_0"], 1))
        self.assertEqual(failed["items"][0]["last_error"], "HTTP 404 Not Found")
        message = self.error_message("GET", "/api/v1/notifications?state=pending", 400)
        self.assertIn("state", message)

    def test_retry_a_notification(self) -> None:
        """202 with the notification queued again; an unknown id answers 404 naming it."""
        body = json.dumps({"id": "msg_0"}).encode()
        again = self.call("POST", "/api/v1/notifications/retry", 202, data=body)
        self.assertEqual((again["id"], again["state"], again["attempts"]), ("msg_0", "queued", 0))
        unknown = json.dumps({"id": "msg_x"}).encode()
        message = self.error_message("POST", "/api/v1/notifications/retry", 404, data=unknown)
        self.assertIn("msg_x", message)
        self.error_message("POST", "/api/v1/notifications/retry", 400, data=b"{}")


class DocumentedInputTests(APITestCase):
    """The requests the OpenAPI document allows are the ones the API takes (what
    schemathesis checks against a real admin, ``.ci/schemathesis``)."""

    def test_an_empty_query_value_is_documented_and_taken_as_not_given(self) -> None:
        """Every optional query parameter allows an empty value, and a GET with all of
        them empty answers 200 as without them."""
        for route in ROUTES:
            optional = [p.name for p in route.params if not p.needed(in_body=False)]
            documented = DOCUMENT["paths"][route.path][route.method.lower()]
            for parameter in documented.get("parameters", []):
                allowed = parameter.get("allowEmptyValue", False)
                self.assertEqual(allowed, parameter["name"] in optional, parameter)
            if optional and route.method == "GET":
                query = "&".join(f"{name}=" for name in optional)
                self.call("GET", f"{route.path}?{query}")

    def test_a_diagnosis_needs_its_job_id(self) -> None:
        """``job_id`` is documented as required and not empty, and is: absent or empty,
        it answers 400."""
        [job_id] = DOCUMENT["paths"]["/api/v1/diagnosis"]["get"]["parameters"]
        self.assertEqual((job_id["required"], "allowEmptyValue" in job_id), (True, False))
        self.assertEqual(job_id["schema"]["minLength"], 1)
        for query in ("", "?job_id="):
            message = self.error_message("GET", "/api/v1/diagnosis" + query, 400)
            self.assertIn("query parameter 'job_id' is required", message)

    def test_report_times_are_dates_or_rfc3339_times_as_documented(self) -> None:
        """``since`` takes what its documented formats allow (date, date-time) and
        refuses the rest with 400 before asking the admin; a time past year 9999 in UTC
        is sent as the last one Python has, not a 500."""
        [since] = [
            p
            for p in DOCUMENT["paths"]["/api/v1/reports"]["get"]["parameters"]
            if p["name"] == "since"
        ]
        valid = Draft202012Validator(
            since["schema"], format_checker=Draft202012Validator.FORMAT_CHECKER
        ).is_valid
        for given, sent in (
            ("2025-03-01", "2025-03-01"),
            ("2025-03-01T12:00:00Z", "2025-03-01T12:00:00Z"),
            ("2025-03-01t12:00:00.5%2B02:00", "2025-03-01T12:00:00.5+02:00"),
            ("9999-12-31T23:59:59-23:59", "9999-12-31T23:59:59.999999+00:00"),
            ("0001-01-01T00:00:00%2B01:00", "0001-01-01T00:00:00+00:00"),
        ):
            self.admin.report_calls.clear()
            self.call("GET", "/api/v1/reports?since=" + given)
            self.assertEqual(self.admin.report_calls, [{"since": sent}])
            self.assertTrue(valid(given.replace("%2B", "+")), given)
        self.admin.report_calls.clear()
        for refused in ("0" * 64, "yesterday", "2025-02-30", "2025-03-01T12:00:00", "20250301"):
            message = self.error_message("GET", "/api/v1/reports?since=" + refused, 400)
            self.assertIn("is not a date or date-time", message)
            self.assertFalse(valid(refused), refused)
        self.assertEqual(self.admin.report_calls, [])

    def test_a_priority_written_as_a_whole_float_is_an_integer(self) -> None:
        """``"priority": 900.0`` is an integer to JSON Schema, so the API takes it as 900."""
        data = json.dumps({**QUEUED, "priority": 900.0}).encode()
        body = self.call("POST", "/api/v1/queue/priority", 200, data=data)
        self.assertEqual(body["priority"], 900)
        self.assertEqual(self.admin.prioritized, [(*QUEUED.values(), 900)])


class ErrorTests(APITestCase):
    """Requests the API refuses get a JSON error, never twisted.web's HTML."""

    def test_unknown_paths(self) -> None:
        """Paths outside the route table answer a JSON 404."""
        for path in (
            "/",
            "/api",
            "/api/v1",
            "/api/v1/",
            "/api/v2/health",
            "/api/v1/nothing",
            "/api/v1/health/more",
            "/api/v1/health//",
        ):
            self.assertIn(path, self.error_message("GET", path, 404))

    def test_wrong_method_on_read(self) -> None:
        """POST to a read-only path answers 405 and allows GET and HEAD."""
        response, body = self.finish(self.start("POST", "/api/v1/health"))
        self.assertEqual(response.code, 405)
        self.assertEqual(response.headers.getRawHeaders(b"allow"), [b"GET, HEAD"])
        self.assertEqual(json.loads(body)["error"]["code"], 405)

    def test_wrong_method_on_action(self) -> None:
        """GET on an action answers 405, allows POST, and does not act."""
        response, _ = self.finish(self.start("GET", "/api/v1/pause"))
        self.assertEqual(response.code, 405)
        self.assertEqual(response.headers.getRawHeaders(b"allow"), [b"POST"])
        self.assertEqual(self.admin.state, "started")

    def test_unsupported_method(self) -> None:
        """A method twisted.web does not know answers a JSON 405, not an HTML 501."""
        self.error_message("DELETE", "/api/v1/files", 405)

    def test_bad_query_values(self) -> None:
        """Bad query values answer 400 naming the parameter."""
        for query, word in (
            ("files?state=lost", "state"),
            ("reports?limit=501", "limit"),
            ("reports?limit=ten", "limit"),
            ("reports?limit=1e3", "limit"),
            ("reports?offset=-1", "offset"),
            ("reports?offset=99999999999999999999", "offset"),
            ("reports?outcome=maybe", "outcome"),
            ("reports?limit=5&limit=6", "limit"),
            ("health?verbose=1", "verbose"),
            ("files?status=done", "status"),
            ("files?limit=501", "limit"),
            ("components?kind=robot", "kind"),
            ("queue?offset=-1", "offset"),
            ("queue?limit=many", "limit"),
            ("reports?search=" + "x" * 300, "search"),
        ):
            self.assertIn(word, self.error_message("GET", "/api/v1/" + query, 400), query)
        self.assertEqual(self.admin.report_calls, [])

    def test_query_not_utf8(self) -> None:
        """A query string that is not UTF-8 answers 400."""
        self.error_message("GET", "/api/v1/files?state=%ff", 400)

    def test_admin_refuses_filter(self) -> None:
        """A filter the admin refuses with ValueError answers 400 with its reason."""
        self.admin.pending_reports = fail(ValueError("since: '2025-01-01' is after until"))
        message = self.error_message("GET", "/api/v1/reports?since=2025-01-01", 400)
        self.assertIn("is after until", message)

    def test_unexpected_error_hides_details(self) -> None:
        """An unexpected exception answers 500 without its traceback, and is logged."""
        self.admin.status_error = RuntimeError("db password hunter2")
        response, body = self.finish(self.start("GET", "/api/v1/status"))
        self.assertEqual(response.code, 500)
        self.assertEqual(json.loads(body)["error"]["code"], 500)
        self.assertNotIn(b"hunter2", body)
        self.assertNotIn(b"Traceback", body)
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)

    def test_value_error_without_input_is_unexpected(self) -> None:
        """A ValueError from a call that took no client input is a 500, not a 400."""
        self.admin.status_error = ValueError("bug")
        self.error_message("GET", "/api/v1/status", 500)
        self.assertEqual(len(self.flushLoggedErrors(ValueError)), 1)


class ClientGoneTests(APITestCase):
    """A client that leaves before the answer causes no error."""

    def test_read_is_cancelled(self) -> None:
        """A reports query is cancelled when its client goes away."""
        cancelled: list[Deferred[Any]] = []
        self.admin.pending_reports = Deferred(cancelled.append)
        d = self.start("GET", "/api/v1/reports")
        self.assertEqual(cancelled, [])
        d.cancel()
        self.client.flush()
        self.failureResultOf(d)
        self.assertEqual(cancelled, [self.admin.pending_reports])
        self.assertEqual(self.flushLoggedErrors(), [])

    def test_action_goes_on(self) -> None:
        """A reload goes on when its client goes away, and its late result is dropped quietly."""
        cancelled: list[Deferred[Any]] = []
        self.admin.pending_reload = Deferred(cancelled.append)
        d = self.start("POST", "/api/v1/reload")
        d.cancel()
        self.client.flush()
        self.failureResultOf(d)
        self.assertEqual(cancelled, [])
        self.admin.pending_reload.callback({"added": [], "removed": [], "changed": []})
        self.client.flush()
        self.assertEqual(self.flushLoggedErrors(), [])


def _hang_up(protocol: Any) -> None:
    """End a memory connection of the site: its idle timeout, set on the global
    reactor, is cancelled (left, it would make a later test's reactor unclean)."""
    protocol.connectionLost(Failure(ConnectionDone()))


class SiteTests(SynchronousTestCase):
    """The site from build_site, spoken to in raw HTTP over a memory transport."""

    def exchange(self, raw: bytes) -> bytes:
        """Feed ``raw`` to a fresh connection of the site; return what it wrote back."""
        site = build_site(FakeAdmin())
        protocol = site.buildProtocol(IPv4Address("TCP", "127.0.0.1", 50000))
        assert protocol is not None
        transport = StringTransport()
        protocol.makeConnection(transport)
        protocol.dataReceived(raw)
        _hang_up(protocol)
        return bytes(transport.value())

    def test_large_body_is_refused_without_being_stored(self) -> None:
        """A 1 MiB POST body answers 413 and is not kept in memory."""
        body = b"x" * (1 << 20)
        head = (
            b"POST /api/v1/pause HTTP/1.1\r\nHost: localhost\r\nContent-Length: %d\r\n\r\n"
            % len(body)
        )
        site = build_site(FakeAdmin())
        requests: list[Any] = []
        factory: Any = site.requestFactory

        class Recording(factory):  # type: ignore[misc,valid-type]
            def __init__(self, *args: Any, **kwargs: Any) -> None:
                super().__init__(*args, **kwargs)
                requests.append(self)

        site.requestFactory = Recording
        protocol = site.buildProtocol(IPv4Address("TCP", "127.0.0.1", 50000))
        assert protocol is not None
        transport = StringTransport()
        protocol.makeConnection(transport)
        protocol.dataReceived(head + body[:200_000])
        self.assertLessEqual(requests[0].content.tell(), 64 * 1024)
        protocol.dataReceived(body[200_000:])
        _hang_up(protocol)
        self.assertTrue(transport.value().startswith(b"HTTP/1.1 413 "))

    def test_json_404_at_site_root(self) -> None:
        """The site answers unknown paths with JSON, not HTML."""
        answer = self.exchange(b"GET /nothing HTTP/1.1\r\nHost: localhost\r\n\r\n")
        self.assertTrue(answer.startswith(b"HTTP/1.1 404 "))
        self.assertIn(b'{"error": {"code": 404', answer)

    def test_health_over_http(self) -> None:
        """GET health through the real site answers 200 with a Content-Length."""
        answer = self.exchange(b"GET /api/v1/health HTTP/1.1\r\nHost: localhost\r\n\r\n")
        self.assertTrue(answer.startswith(b"HTTP/1.1 200 "))
        self.assertIn(b"Content-Length: ", answer)


class OpenAPITests(APITestCase):
    """The OpenAPI document describes exactly the route table."""

    def test_served_document_is_valid_openapi(self) -> None:
        """GET openapi.json answers a document that passes the OpenAPI validator."""
        document = self.call("GET", "/api/v1/openapi.json")
        self.assertTrue(document["openapi"].startswith("3."))
        validate_openapi(document)
        self.assertEqual(document, json.loads(json.dumps(DOCUMENT)))

    def test_every_route_is_documented(self) -> None:
        """Every route of the table appears with its method, parameters and error schema."""
        operations = {(path, method) for path, item in DOCUMENT["paths"].items() for method in item}
        self.assertEqual(operations, {(r.path, r.method.lower()) for r in ROUTES})
        for route in ROUTES:
            operation = DOCUMENT["paths"][route.path][route.method.lower()]
            names = [p["name"] for p in operation.get("parameters", [])]
            self.assertEqual(names, [p.name for p in route.params])
            self.assertIn(str(route.status), operation["responses"])
            for code in route.errors:
                self.assertIn(str(code), operation["responses"])
        self.assertIn("Error", DOCUMENT["components"]["schemas"])

    def test_enums_are_documented(self) -> None:
        """The state and outcome parameters carry their allowed values."""
        files = DOCUMENT["paths"]["/api/v1/files"]["get"]["parameters"]
        self.assertEqual(files[0]["schema"]["enum"], list(STATES))
        reports = {
            p["name"]: p["schema"]
            for p in DOCUMENT["paths"]["/api/v1/reports"]["get"]["parameters"]
        }
        self.assertEqual(reports["outcome"]["enum"], ["done", "failed"])
        self.assertEqual(reports["limit"]["maximum"], 500)


class ListenTests(SynchronousTestCase):
    """The API listens on loopback only."""

    def test_loopback_endpoints_accepted(self) -> None:
        """Endpoints bound to 127.0.0.1, ::1, localhost or a UNIX socket pass the check."""
        for endpoint in (
            "tcp:7667:interface=127.0.0.1",
            "tcp:port=7667:interface=localhost",
            "tcp:7667:127.0.0.1",
            "tcp6:7667:interface=\\:\\:1",
            "unix:/run/transcoder/api.sock",
        ):
            check_listen(endpoint)

    def test_other_endpoints_refused(self) -> None:
        """Endpoints reachable from other hosts, or that cannot be checked, raise ValueError."""
        for endpoint in (
            "tcp:7667",
            "tcp:7667:interface=0.0.0.0",
            "tcp:7667:interface=192.168.1.5",
            "tcp:7667:interface=127.0.0.1:interface=0.0.0.0",
            "tcp6:7667:interface=\\:\\:",
            "systemd:domain=INET:index=0",
            "tcp:http:interface=127.0.0.1",
            "nonsense",
        ):
            with self.assertRaises(ValueError, msg=endpoint) as caught:
                check_listen(endpoint)
            self.assertIn(endpoint, str(caught.exception))

    def test_service_refuses_public_endpoint(self) -> None:
        """APIService cannot be built for an endpoint open to the network."""
        with self.assertRaises(ValueError) as caught:
            APIService(FakeAdmin(), "tcp:7667", reactor=MemoryReactor())
        self.assertIn("loopback", str(caught.exception))

    def test_service_listens_and_stops(self) -> None:
        """APIService listens with the API site on start and stops listening on stop."""
        stopped: Deferred[None] = Deferred()

        class Port:
            def getHost(self) -> IPv4Address:
                return IPv4Address("TCP", "127.0.0.1", 7667)

            def stopListening(self) -> Deferred[None]:
                return stopped

        class Reactor(MemoryReactor):
            def listenTCP(self, *args: Any, **kwargs: Any) -> Port:
                super().listenTCP(*args, **kwargs)
                return Port()

        reactor = Reactor()
        service = APIService(FakeAdmin(), "tcp:7667:interface=127.0.0.1", reactor=reactor)
        self.successResultOf(service.startService())
        [(port, site, _, interface)] = reactor.tcpServers
        self.assertEqual((port, interface), (7667, "127.0.0.1"))
        self.assertIsInstance(site, Site)
        stopping = service.stopService()
        self.assertNoResult(stopping)
        stopped.callback(None)
        self.successResultOf(stopping)
