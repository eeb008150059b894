"""A real admin notifies a real HTTP receiver when files end, and keeps what it could not
deliver across a restart."""

from __future__ import annotations

import http.server
import json
import threading
import urllib.parse
from typing import Any

import pytest
from standardwebhooks.webhooks import Webhook

from tests.farm import Farm, free_port, wait_for

SECRET = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


class Receiver:
    """An HTTP server on loopback (its own thread) that keeps every request it gets."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.requests: list[dict[str, Any]] = []
        self._server: http.server.ThreadingHTTPServer | None = None

    def start(self) -> Receiver:
        received = self.requests

        class Handler(http.server.BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                received.append(
                    {
                        "method": self.command,
                        "path": self.path,
                        "headers": {k.lower(): v for k, v in self.headers.items()},
                        "body": body,
                    }
                )
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_GET = do_POST = _answer  # noqa: N815

            def log_message(self, *args: Any) -> None:
                pass

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


def customer(port: int) -> dict[str, Any]:
    """A customer whose profile and target notify the receiver; failures are POSTed signed."""
    return {
        "name": "ACME",
        "notify-done": [f"http://127.0.0.1:{port}/customer?file=%(inputRelPath)s"],
        "profiles": {
            "web": {
                "notify-done": [
                    f"http://127.0.0.1:{port}/done?file=%(inputRelPath)s&ok=%(success)d"
                    "&seconds=%(sourceSeconds)d&job=%(jobId)s"
                ],
                "notify-failed": [
                    {
                        "url": f"http://127.0.0.1:{port}/failed",
                        "method": "POST",
                        "secret-file": "hooks.secret",
                    }
                ],
                "targets": {
                    "sound": {
                        "type": "audio",
                        "extension": "m4a",
                        "notify-done": [
                            f"http://127.0.0.1:{port}/target/%(targetName)s?out=%(outputRelPath)s"
                        ],
                    }
                },
            }
        },
    }


@pytest.fixture
def receiver():
    """A started receiver, stopped after the test."""
    r = Receiver().start()
    yield r
    r.stop()


def make_farm(tmp_path: Any, port: int) -> Farm:
    """A farm notifying ``port``, retrying fast."""
    farm = Farm(str(tmp_path), {"acme": customer(port)})
    with open(tmp_path / "etc" / "customers" / "hooks.secret", "w") as f:
        f.write(SECRET)
    farm.configure("notifications", retry={"attempts": 50, "first-delay": 0.2, "max-delay": 0.5})
    return farm


def paths(receiver: Receiver, prefix: str) -> list[str]:
    """The paths of the requests received under ``prefix``."""
    return [r["path"] for r in receiver.requests if r["path"].startswith(prefix)]


def test_a_done_file_notifies_customer_profile_and_target_with_its_variables(
    tmp_path, clips, receiver
):
    """A clip done: the customer's, the profile's and the target's URLs are called, in
    that order, with the file's values; the API lists them delivered."""
    farm = make_farm(tmp_path, receiver.port)
    farm.start()
    try:
        farm.drop("acme", "web", "news/a clip.m4a", clips["audio"])
        wait_for(lambda: len(receiver.requests) == 3, 60, "three notifications")
        arrived = sorted(urllib.parse.urlsplit(r["path"]).path for r in receiver.requests)
        assert arrived == ["/customer", "/done", "/target/sound"]
        # Fired in the levels' order (each endpoint on its own, so they may arrive in any).
        listed = farm.get("/api/v1/notifications")["items"]
        fired = [urllib.parse.urlsplit(n["destination"]).path for n in reversed(listed)]
        assert fired == ["/customer", "/done", "/target/sound"]
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(paths(receiver, "/done")[0]).query)
        assert query["file"] == ["news/a clip.m4a"] and query["ok"] == ["1"]
        assert query["seconds"] == ["2"]
        target = urllib.parse.parse_qs(urllib.parse.urlsplit(paths(receiver, "/target")[0]).query)
        [out] = target["out"]  # below the profile's outgoing folder
        assert out.startswith("news/") and out.endswith("/a clip.m4a"), out
        ids = {r["headers"]["webhook-id"] for r in receiver.requests}
        assert len(ids) == 3
        listed = farm.get("/api/v1/notifications?state=delivered")
        assert listed["total"] == 3
        assert {n["trigger"] for n in listed["items"]} == {"file-done", "target-done"}
    finally:
        farm.stop()


def test_a_failed_file_posts_a_signed_event_with_the_reason(tmp_path, clips, receiver):
    """Not media: the profile's failure hook gets a POST the receiver can verify."""
    farm = make_farm(tmp_path, receiver.port)
    farm.start()
    try:
        farm.drop("acme", "web", "notes.m4a", clips["text"])
        wait_for(lambda: paths(receiver, "/failed"), 60, "the failure notification")
        [request] = [r for r in receiver.requests if r["path"] == "/failed"]
        event = Webhook(SECRET).verify(request["body"], request["headers"])
        assert event["type"] == "file-failed"
        data = event["data"]
        assert (data["success"], data["failureKind"], data["inputRelPath"]) == (
            0,
            "source",
            "notes.m4a",
        )
        assert data["errorMessage"]
        assert paths(receiver, "/done") == [] and paths(receiver, "/customer") == []
    finally:
        farm.stop()


@pytest.mark.parametrize("end", ["stop", "crash"])
def test_notifications_left_queued_at_a_stop_are_delivered_after_a_restart_once_each(
    tmp_path, clips, end
):
    """The receiver is down while two files end; the admin stops (SIGTERM) or crashes
    (SIGKILL), the receiver comes up, the admin starts again: every notification
    arrives, each once by its id."""
    port = free_port()
    farm = make_farm(tmp_path, port)
    farm.start()
    receiver = Receiver(port)
    try:
        farm.drop("acme", "web", "one.m4a", clips["audio"])
        farm.drop("acme", "web", "two.m4a", clips["audio"])
        wait_for(lambda: farm.finished("acme", "web") == 2, 60, "two files")

        def tried() -> list[dict[str, Any]] | None:
            queued = farm.get("/api/v1/notifications?state=queued")["items"]
            done = len(queued) == 6 and all(n["attempts"] >= 1 for n in queued)
            return queued if done else None

        queued = wait_for(tried, 30, "six notifications queued, each tried")
        assert all("refused" in n["last_error"].lower() for n in queued), queued[0]
        if end == "stop":
            assert farm.stop() == 0
        else:
            assert farm.process is not None
            farm.process.kill()
            farm.process.wait(30)
        receiver.start()
        farm.start()
        wait_for(lambda: len(receiver.requests) >= 6, 60, "every notification")
        wait_for(
            lambda: farm.get("/api/v1/notifications?state=delivered")["total"] == 6,
            30,
            "six delivered",
        )
        ids = [r["headers"]["webhook-id"] for r in receiver.requests]
        assert sorted(ids) == sorted(n["id"] for n in queued)
        assert len(ids) == len(set(ids)) == 6
    finally:
        farm.stop()
        receiver.stop()


def test_check_config_names_an_unknown_variable(tmp_path):
    """A misspelt placeholder is found by check-config, with its file and key."""
    farm = Farm(str(tmp_path), {"acme": customer(1)})
    bad = customer(1)
    bad["profiles"]["web"]["notify-done"] = ["http://x/?f=%(inputRelpath)s"]
    farm.write_customer("acme", bad)
    run = farm.command("check-config")
    assert run.returncode == 1
    assert "inputRelpath" in run.stdout + run.stderr
    assert "notify-done" in run.stdout + run.stderr
    json.dumps(run.stdout)  # printable


def test_a_failed_files_mail_carries_its_report_and_diagnosis(tmp_path, clips):
    """A real admin mails a failure through a real SMTP server (aiosmtpd, in a thread):
    the subject names the file, the report and its diagnosis are attached."""
    import email

    from aiosmtpd.controller import Controller

    received: list[email.message.Message] = []

    class Handler:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
            received.append(email.message_from_bytes(envelope.content))
            return "250 OK"

    port = free_port()
    controller = Controller(Handler(), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        mail_customer = {
            "name": "ACME",
            "profiles": {
                "web": {
                    "notify-failed": [
                        {"mail": ["ops@example.com"], "subject": "Failed: %(inputRelPath)s"}
                    ],
                    "targets": {"sound": {"type": "audio", "extension": "m4a"}},
                }
            },
        }
        farm = Farm(str(tmp_path), {"acme": mail_customer})
        farm.configure(
            "notifications",
            smtp={"host": "127.0.0.1", "port": port, "starttls": "none"},
            sender="farm@example.com",
        )
        farm.start()
        try:
            farm.drop("acme", "web", "notes.m4a", clips["text"])
            wait_for(lambda: received, 60, "the failure mail")
        finally:
            farm.stop()
    finally:
        controller.stop()
    [mail] = received
    assert mail["Subject"] == "Failed: notes.m4a"
    names = sorted(p.get_filename() for p in mail.walk() if p.get_filename())
    assert len(names) == 2 and names[0].endswith(".diagnosis.yaml"), names
    assert names[1].endswith(".yaml") and names[1].startswith("notes.m4a.")
