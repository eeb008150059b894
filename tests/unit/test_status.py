"""``transcoder-admin status``'s parts: where the API is asked, and what is printed."""

from __future__ import annotations

import pytest

from transcoder_admin.config.endpoints import Reach, reach
from transcoder_admin.status import DEGRADED, HEALTHY, render, verdict


@pytest.mark.parametrize(
    ("endpoint", "url"),
    [
        ("tcp:7667:interface=127.0.0.1", "http://127.0.0.1:7667/"),
        ("tcp:7667", "http://127.0.0.1:7667/"),  # every interface: asked through loopback
        ("tcp:port=7667:interface=0.0.0.0", "http://127.0.0.1:7667/"),
        ("tcp:7667:interface=10.0.0.5", "http://10.0.0.5:7667/"),
        ("tcp6:7667:interface=\\:\\:1", "http://[::1]:7667/"),
        ("tcp6:7667", "http://[::1]:7667/"),
        ("ssl:7667:privateKey=/etc/a\\:b.key:certKey=/etc/c.crt", "https://127.0.0.1:7667/"),
        ("unix:/run/transcoder/api.sock", "http+unix://%2Frun%2Ftranscoder%2Fapi.sock/"),
        ("unix:address=/run/api.sock:mode=660", "http+unix://%2Frun%2Fapi.sock/"),
    ],
)
def test_an_endpoint_is_reached_from_this_host(endpoint, url):
    """Twisted's server endpoint strings, read as a client on the same host reaches them."""
    assert reach(endpoint).url == url


@pytest.mark.parametrize(
    ("endpoint", "why"),
    [
        ("systemd:domain=INET:index=0", "only tcp:, tcp6:, ssl: and unix:"),
        ("tcp:interface=127.0.0.1", "names no port"),
        ("tcp:http", "names no port"),
        ("unix:", "names no socket"),
    ],
)
def test_an_endpoint_that_cannot_be_reached_says_why(endpoint, why):
    """Other kinds, or one without its port or socket: ValueError naming it."""
    with pytest.raises(ValueError, match=why):
        reach(endpoint)


def snapshot(**changes):
    """The answers ``status`` gathers, as the API gives them."""
    found = {
        "health": {"status": "ok", "state": "started", "checks": {"workers": "ok"}},
        "status": {
            "state": "started",
            "version": "1.0",
            "uptime": 7384.2,
            "files": {"queued": 7, "transcoding": 1, "done": 3, "failed": 1, "stuck": 0},
            "capacity": 2,
            "free_slots": 1,
            "reports_pending": 0,
        },
        "workers": {
            "items": [{"name": "w1", "state": "attached", "load": 1, "max_jobs": 2, "host": "h"}]
        },
        "tasks": {
            "items": [
                {
                    "customer": "ACME",
                    "profile": "news",
                    "relpath": "a/b.mov",
                    "worker": "w1",
                    "attempt": 1,
                    "progress": {"percent": 42.4, "speed": 1.25, "eta": 95, "target": "web"},
                }
            ]
        },
        "queue": {
            "items": [
                {"customer": "ACME", "profile": "news", "relpath": "c.mov", "priority": 2100}
            ],
            "total": 7,
        },
        "failed": {
            "items": [
                {
                    "customer": "ACME",
                    "profile": "news",
                    "relative_path": "x\x1b[2J\nforged line.mov",
                    "failure_reason": "not a media file\r\x07",
                    "failure_kind": "source",
                    "verdict": "wrong_mime_type",
                    "finish_time": "2026-12-04T10:00:00+00:00",
                    "job_id": "J1",
                }
            ],
            "total": 1,
        },
        "notifications": {"items": [], "total": 0},
    }
    found.update(changes)
    return found


def test_the_snapshot_reads_as_an_operator_needs_it():
    """State, counts, slots, workers, progress with ETA, the queue's head and how many
    more, the failed file with its reason and job."""
    text = render(snapshot(), "http://127.0.0.1:7667/")
    assert text.startswith(
        "admin at http://127.0.0.1:7667/: started, ok (workers ok), up 2 h 3 min, version 1.0\n"
    )
    assert "files: 0 pending · 7 queued · 1 transcoding · 3 done · 1 failed · 0 stuck" in text
    assert "slots: 1 of 2 free" in text
    assert "  w1  attached  1/2 slots  h" in text
    assert "  ACME / news / a/b.mov  42 %  1.2×  ETA 1 min 35 s  on w1  attempt 1" in text
    assert "queued (7, 6 more):\n  ACME / news / c.mov  priority 2100" in text
    assert "notifications that gave up: none" in text


def test_a_hostile_name_or_reason_cannot_forge_lines_or_drive_the_terminal():
    """Control characters from the farm (a file name, a reason) are written out."""
    text = render(snapshot(), "http://127.0.0.1:7667/")
    [line] = [line for line in text.splitlines() if "forged line" in line]
    assert (
        "x\\x1b[2J\\nforged line.mov: not a media file\\r\\x07 (source · wrong_mime_type)" in line
    )
    assert line.endswith("job J1")
    assert not any(c in text for c in "\x1b\r\x07")
    assert not any(line.startswith("forged") for line in text.splitlines())


def test_degraded_when_a_check_fails_or_a_file_is_stuck():
    """The exit status a monitoring check reads."""
    assert verdict(snapshot()) == HEALTHY
    sick = {"status": "degraded", "state": "started", "checks": {"workers": "no workers"}}
    assert verdict(snapshot(health=sick)) == DEGRADED
    stuck = dict(snapshot()["status"], files={"stuck": 1})
    assert verdict(snapshot(status=stuck)) == DEGRADED


def test_a_url_of_its_own_is_kept_whole():
    """Reach for --url: the https host name is the certificate's, the port the URL's."""
    assert Reach("https", "farm.example.com", 8443).url == "https://farm.example.com:8443/"


def test_a_bad_url_or_token_is_refused_before_any_request(tmp_path, capsys):
    """A port out of range, a scheme other than http(s), a token file with two lines:
    exit 2 and why, nothing asked."""
    import argparse

    from transcoder_admin.status import UNREACHABLE, add_arguments, run

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    two_lines = tmp_path / "token"
    two_lines.write_text("tk_abc\nInjected: header\n")

    def asked() -> str:
        raise AssertionError("the configuration is not read when --url is given")

    for argv, why in (
        (["--url", "http://127.0.0.1:99999/"], "port is not a number"),
        (["--url", "ftp://127.0.0.1/"], "give http://HOST:PORT/"),
        (["--url", "http://127.0.0.1:9/", "--token-file", str(two_lines)], "not a token"),
        (["--url", "http://127.0.0.1:9/", "--token-file", str(tmp_path / "no")], "No such"),
    ):
        assert run(parser.parse_args(argv), asked) == UNREACHABLE
        assert why in capsys.readouterr().err
