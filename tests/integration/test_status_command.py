"""``transcoder-admin status`` against a real admin: what an operator woken at night reads,
and the exit status a monitoring check reads (0 healthy, 1 degraded, 2 not answered)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.farm import ROOT, Farm, wait_for
from tests.pki import make_ca

CUSTOMER = {"name": "ACME", "profiles": {"web": {"targets": {"copy": {"type": "identity"}}}}}


def status(farm: Farm, *argv: str, env: dict[str, str] | None = None, config: bool = True):
    """``transcoder-admin status ARGV… [--config]``, run to its end."""
    extra = ["--config", farm.config_path] if config else []
    return subprocess.run(
        [sys.executable, "-m", "transcoder_admin", "status", *argv, *extra],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
    )


def test_status_shows_the_farm_and_says_when_the_admin_is_not_there(tmp_path, clips):
    """A failed upload whose name carries a terminal escape: listed with its reason and
    job, the escape written out; --json holds the same answers; once the admin stops,
    exit 2 and why."""
    farm = Farm(str(tmp_path), {"acme": CUSTOMER})
    farm.start()
    try:
        broken = tmp_path / "broken.mov"
        broken.write_bytes(b"not media at all" * 100)
        farm.drop("acme", "web", "news/\x1b[2Jwiped.mov", str(broken))
        wait_for(lambda: len(farm.reports("acme", "web", "failed")) == 1, 60, "the failure")
        farm.drop("acme", "web", "news/fine.m4a", clips["audio"])
        wait_for(lambda: len(farm.reports("acme", "web", "done")) == 1, 60, "the copy")
        wait_for(lambda: farm.get("/api/v1/status")["files"]["done"] == 1, 30, "the record")
        shown = status(farm)
        assert shown.returncode == 0, shown.stderr
        text = shown.stdout
        assert f"admin at http://127.0.0.1:{farm.port}/: started, ok" in text
        assert "1 done · 1 failed · 0 stuck" in text
        assert "test-local-1  attached  0/2 slots" in text
        [job] = [r["job_id"] for r in farm.reports("acme", "web", "failed")]
        failed = [line for line in text.splitlines() if "wiped.mov" in line]
        assert (
            len(failed) == 1
            and "ACME / web / news/\\x1b[2Jwiped.mov: not a media file" in (failed[0])
        )
        assert job in failed[0]
        assert "\x1b" not in text  # the name cannot clear the operator's screen
        as_json = status(farm, "--json")
        assert as_json.returncode == 0, as_json.stderr
        found = json.loads(as_json.stdout)
        assert found["health"]["status"] == "ok" and found["failed"]["items"][0]["job_id"] == job
        assert [w["name"] for w in found["workers"]["items"]] == ["test-local-1"]
        # Read through a pipe its reader closed before the answer (`status --json | head`,
        # here `| true`, which reads nothing): no traceback.
        command = [sys.executable, "-m", "transcoder_admin", "status", "--json", "--config"]
        piped = subprocess.run(
            f"{' '.join(command)} {farm.config_path} | true",
            shell=True,  # the pipe is the point: a shell's, as an operator types it
            capture_output=True,
            text=True,
            timeout=60,
            cwd=ROOT,
        )
        assert piped.returncode == 0 and "Traceback" not in piped.stderr, piped.stderr
    finally:
        assert farm.stop() == 0
    gone = status(farm)
    assert gone.returncode == 2 and gone.stdout == ""
    assert f"127.0.0.1:{farm.port}" in gone.stderr and "is it running?" in gone.stderr


def test_status_over_tls_with_a_token(tmp_path):
    """An API behind TLS and tokens: without a token, exit 2 and how to give one; with
    the token (environment or file) and the API's CA, the farm; with a wrong token or
    without the CA, exit 2 and why; the token is never printed."""
    farm = Farm(str(tmp_path), {"acme": CUSTOMER})
    pki = make_ca(str(tmp_path / "pki"))
    tokens = str(tmp_path / "etc" / "tokens.yaml")
    farm.configure(
        "api",
        listen=f"ssl:{farm.port}:privateKey={pki['key']}:certKey={pki['cert']}",
        tokens_file=tokens,
    )
    added = farm.command("token", "add", "pager", "--role", "read", "--tokens-file", tokens)
    secret = added.stdout.strip().splitlines()[-1]
    token_file = tmp_path / "pager.token"
    token_file.write_text(secret + "\n")
    farm.token, farm.api_ca = secret, pki["ca"]
    farm.start()
    try:
        ca = ("--ca-file", pki["ca"])
        anonymous = status(farm, *ca)
        assert anonymous.returncode == 2
        assert "needs a token" in anonymous.stderr and "TRANSCODER_ADMIN_TOKEN" in anonymous.stderr
        by_env = status(farm, *ca, env={"TRANSCODER_ADMIN_TOKEN": secret})
        assert by_env.returncode == 0, by_env.stderr
        assert f"admin at https://127.0.0.1:{farm.port}/: started, ok" in by_env.stdout
        by_file = status(farm, *ca, "--token-file", str(token_file))
        assert by_file.returncode == 0, by_file.stderr
        assert by_file.stdout.splitlines()[1:] == by_env.stdout.splitlines()[1:]
        # --url: the name the certificate carries, without any configuration.
        by_url = status(
            farm,
            *ca,
            "--url",
            f"https://localhost:{farm.port}/",
            "--token-file",
            str(token_file),
            config=False,
        )
        assert by_url.returncode == 0, by_url.stderr
        assert f"admin at https://localhost:{farm.port}/: started" in by_url.stdout
        wrong = status(farm, *ca, env={"TRANSCODER_ADMIN_TOKEN": "tk_wrong"})
        assert wrong.returncode == 2 and "unknown or revoked" in wrong.stderr
        untrusted = status(farm, env={"TRANSCODER_ADMIN_TOKEN": secret})
        assert untrusted.returncode == 2
        assert "TLS" in untrusted.stderr and "--ca-file" in untrusted.stderr
        for done in (anonymous, by_env, by_file, by_url, wrong, untrusted):
            assert secret not in done.stdout + done.stderr
    finally:
        assert farm.stop() == 0


def test_status_over_a_unix_socket_is_degraded_without_workers(tmp_path):
    """``api.listen: unix:PATH`` (relative to the config's folder), no worker, a broken
    customer file: status still reads the API, says there are no workers and exits 1."""
    farm = Farm(str(tmp_path), {"acme": CUSTOMER}, local=0)
    farm.configure("api", listen="unix:api.sock")
    farm.start(wait=False)
    socket_path = os.path.join(os.path.dirname(farm.config_path), "api.sock")
    try:
        wait_for(lambda: os.path.exists(socket_path), 60, "the API's socket")
        wait_for(lambda: "admin started" in farm.log(), 60, "the admin to start")
        with open(os.path.join(os.path.dirname(farm.config_path), "customers", "x.yaml"), "w") as f:
            f.write("name: [broken\n")
        shown = status(farm)
        assert shown.returncode == 1, shown.stdout + shown.stderr
        assert "degraded (database ok, workers no workers)" in shown.stdout
        assert "workers: no worker" in shown.stdout
        assert "http+unix://" in shown.stdout
    finally:
        assert farm.stop() == 0
