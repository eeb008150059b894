"""The API with tokens on a real admin: it may listen on every interface, asks every
request but health for a token, lets only admin tokens act, and re-reads the tokens on
SIGHUP; it may be served over TLS."""

from __future__ import annotations

import http.client
import signal
import ssl
import urllib.error
import urllib.request

import jsonschema
import pytest

from tests.farm import Farm, wait_for
from tests.pki import make_ca
from transcoder_admin.api import schemas

CUSTOMER = {"name": "ACME", "profiles": {"web": {"targets": {"copy": {"type": "identity"}}}}}


def token(farm: Farm, *argv: str) -> str:
    """``transcoder-admin token …``; the last line of its output."""
    done = farm.command("token", *argv, config=False)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()[-1]


def test_tokens_guard_a_public_api_and_a_revocation_holds_after_sighup(tmp_path):
    """Listening on 0.0.0.0 with tokens: 401 without one, 403 for a read token's pause,
    an admin token pauses; after ``token revoke`` and SIGHUP the revoked token is 401."""
    farm = Farm(str(tmp_path), {"acme": CUSTOMER})
    tokens = str(tmp_path / "etc" / "tokens.yaml")
    farm.configure("api", listen=f"tcp:{farm.port}", tokens_file="tokens.yaml")
    admin_token = token(farm, "add", "ops", "--role", "admin", "--tokens-file", tokens)
    read_token = token(farm, "add", "dashboard", "--role", "read", "--config", farm.config_path)
    checked = farm.command("check-config")
    assert checked.returncode == 0, checked.stderr
    farm.start()
    try:
        assert farm.request("GET", "/api/v1/status")[0] == 401
        farm.token = read_token
        assert farm.get("/api/v1/status")["state"] == "started"
        for path, schema in (("workers", schemas.WORKER), ("customers", schemas.CUSTOMER)):
            for item in farm.get(f"/api/v1/{path}")["items"]:
                jsonschema.validate(item, schema)  # what a generated client expects
        [acme] = farm.get("/api/v1/customers")["items"]
        assert [t["name"] for t in acme["profiles"][0]["targets"]] == ["copy"]
        status, body = farm.request("POST", "/api/v1/pause")
        assert status == 403, body
        assert farm.get("/api/v1/status")["state"] == "started"
        farm.token = admin_token
        status, body = farm.request("POST", "/api/v1/pause")
        assert (status, body["state"]) == (200, "paused")
        assert "API POST /api/v1/pause by ops" in farm.log()
        assert admin_token not in farm.log() and read_token not in farm.log()

        token(farm, "revoke", "dashboard", "--tokens-file", tokens)
        farm.token = read_token
        assert farm.request("GET", "/api/v1/status")[0] == 200  # until the admin re-reads
        farm.signal(signal.SIGHUP)
        wait_for(lambda: farm.request("GET", "/api/v1/status")[0] == 401, 30, "the revocation")
        farm.token = admin_token
        assert farm.get("/api/v1/status")["state"] == "paused"

        with open(tokens, "w") as f:
            f.write("tokens: [{name: broken}]\n")
        farm.signal(signal.SIGHUP)
        wait_for(lambda: "API tokens not reloaded" in farm.log(), 30, "the refusal")
        assert farm.get("/api/v1/status")["state"] == "paused"  # the old tokens stay
    finally:
        assert farm.stop() == 0


def test_a_public_api_without_tokens_does_not_start(tmp_path):
    """``tcp:PORT`` without api.tokens-file: the admin exits 1 and says why."""
    farm = Farm(str(tmp_path), {"acme": CUSTOMER})
    farm.configure("api", listen=f"tcp:{farm.port}")
    done = farm.command("run")
    assert done.returncode == 1
    assert "api.listen" in done.stderr and "api.tokens-file" in done.stderr


def test_the_api_over_tls(tmp_path):
    """``api.listen: ssl:…``: a client trusting the CA gets answers; plain HTTP gets none,
    and a client trusting another CA refuses the server."""
    farm = Farm(str(tmp_path), {"acme": CUSTOMER})
    pki = make_ca(str(tmp_path / "pki"))
    other = make_ca(str(tmp_path / "other-pki"))
    tokens = str(tmp_path / "etc" / "tokens.yaml")
    farm.configure(
        "api",
        listen=f"ssl:{farm.port}:privateKey={pki['key']}:certKey={pki['cert']}",
        tokens_file=tokens,
    )
    farm.token = token(farm, "add", "ops", "--role", "read", "--tokens-file", tokens)
    farm.api_ca = pki["ca"]
    farm.start()
    try:
        assert farm.get("/api/v1/status")["state"] == "started"
        with pytest.raises((ssl.SSLError, urllib.error.URLError)):
            urllib.request.urlopen(
                f"https://127.0.0.1:{farm.port}/api/v1/health",
                timeout=10,
                context=ssl.create_default_context(cafile=other["ca"]),
            )
        with pytest.raises((OSError, http.client.HTTPException)):
            urllib.request.urlopen(f"http://127.0.0.1:{farm.port}/api/v1/health", timeout=10)
    finally:
        assert farm.stop() == 0
