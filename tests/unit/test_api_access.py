"""API tokens (the ``token`` command, the file) and the access rules: 401, 403, Host, Origin."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from typing import Any

from treq.testing import StubTreq
from twisted.internet.defer import Deferred
from twisted.trial.unittest import SynchronousTestCase

from transcoder_admin.api import Access, build_resource, check_listen, openapi_document
from transcoder_admin.api.routes import ROUTES
from transcoder_admin.api.tokens import TokenFileError, add_token, read_tokens

from .pbpairs import scratch
from .test_api import FakeAdmin

BASE = "http://127.0.0.1:7667"


def token_command(*argv: str) -> subprocess.CompletedProcess[str]:
    """Run ``transcoder-admin token …`` as an operator would."""
    command = [sys.executable, "-m", "transcoder_admin", "token", *argv]
    return subprocess.run(command, capture_output=True, text=True, timeout=60)


class TokenFileTests(SynchronousTestCase):
    """The tokens file holds names, roles and hashes; the command prints a token once."""

    def setUp(self) -> None:
        self.folder = scratch(self)
        self.path = os.path.join(self.folder, "tokens.yaml")

    def test_add_prints_the_token_last_and_stores_only_its_hash(self) -> None:
        """The token is stdout's last line; the file (mode 0600) does not hold it."""
        added = token_command("add", "ops", "--role", "admin", "--tokens-file", self.path)
        self.assertEqual(added.returncode, 0, added.stderr)
        secret = added.stdout.strip().splitlines()[-1]
        self.assertTrue(secret.startswith("ta_") and len(secret) > 40, secret)
        with open(self.path) as f:
            text = f.read()
        self.assertNotIn(secret, text)
        self.assertNotIn(secret[3:], text)
        self.assertEqual(stat.S_IMODE(os.stat(self.path).st_mode), 0o600)
        holder = read_tokens(self.path).holder(secret)
        assert holder is not None
        self.assertEqual((holder.name, holder.role), ("ops", "admin"))
        self.assertIsNone(read_tokens(self.path).holder(secret + "x"))

    def test_list_and_revoke(self) -> None:
        """``list`` shows names and roles (never a token); ``revoke`` removes one."""
        read_secret = add_token(self.path, "dashboard", "read")
        add_token(self.path, "ops", "admin")
        listed = token_command("list", "--tokens-file", self.path)
        self.assertEqual(listed.returncode, 0, listed.stderr)
        rows = [line.split("\t")[:2] for line in listed.stdout.splitlines()]
        self.assertEqual(rows, [["dashboard", "read"], ["ops", "admin"]])
        self.assertNotIn(read_secret, listed.stdout)
        revoked = token_command("--tokens-file", self.path, "revoke", "dashboard")
        self.assertEqual(revoked.returncode, 0, revoked.stderr)
        self.assertIsNone(read_tokens(self.path).holder(read_secret))
        self.assertEqual([t.name for t in read_tokens(self.path).entries], ["ops"])

    def test_refusals_name_the_problem(self) -> None:
        """A taken name, an unknown name, a bad name or role, a broken file: exit 1, why."""
        add_token(self.path, "ops", "admin")
        before = open(self.path).read()
        again = token_command("add", "ops", "--role", "read", "--tokens-file", self.path)
        self.assertEqual(again.returncode, 1)
        self.assertIn("a token named 'ops' exists", again.stderr)
        self.assertEqual(open(self.path).read(), before)
        gone = token_command("revoke", "nobody", "--tokens-file", self.path)
        self.assertEqual(gone.returncode, 1)
        self.assertIn("no token named 'nobody'", gone.stderr)
        with self.assertRaises(TokenFileError) as caught:
            add_token(self.path, "a\nb", "admin")
        self.assertIn("token name", str(caught.exception))
        with open(self.path, "w") as f:
            f.write("tokens:\n- {name: ops, role: superuser, sha256: abc}\n")
        broken = token_command("list", "--tokens-file", self.path)
        self.assertEqual(broken.returncode, 1)
        self.assertIn(self.path, broken.stderr)
        self.assertIn("role 'superuser'", broken.stderr)

    def test_the_config_names_the_file_or_the_error_says_what_to_give(self) -> None:
        """Without --tokens-file, the config's api.tokens-file is used, or the error says so."""
        config = os.path.join(self.folder, "admin.yaml")
        with open(config, "w") as f:
            f.write("roots: {default: media, temp: tmp}\napi: {tokens-file: tokens.yaml}\n")
        os.makedirs(os.path.join(self.folder, "customers"))
        added = token_command("add", "ops", "--role", "read", "--config", config)
        self.assertEqual(added.returncode, 0, added.stderr)
        self.assertEqual([t.name for t in read_tokens(self.path).entries], ["ops"])
        with open(config, "w") as f:
            f.write("roots: {default: media, temp: tmp}\n")
        unset = token_command("list", "--config", config)
        self.assertEqual(unset.returncode, 1)
        self.assertIn("api.tokens-file is not set; give --tokens-file PATH", unset.stderr)


class AccessTests(SynchronousTestCase):
    """The real resource tree with tokens, reached through StubTreq."""

    def setUp(self) -> None:
        folder = scratch(self)
        self.path = os.path.join(folder, "tokens.yaml")
        self.admin_token = add_token(self.path, "ops", "admin")
        self.read_token = add_token(self.path, "dashboard", "read")
        self.admin = FakeAdmin()
        access = Access(self.path, allowed_hosts=["farm.example.com"])
        self.client: Any = StubTreq(build_resource(self.admin, access))

    def request(
        self,
        method: str,
        path: str,
        token: str | None = None,
        headers: dict[str, str] | None = None,
        base: str = BASE,
    ) -> tuple[int, Any, Any]:
        """Send a request; (status, JSON body, headers)."""
        sent = dict(headers or {})
        if token is not None:
            sent["Authorization"] = f"Bearer {token}"
        d: Deferred[Any] = self.client.request(method, base + path, headers=sent)
        self.client.flush()
        response = self.successResultOf(d)
        body = self.client.content(response)
        self.client.flush()
        return response.code, json.loads(self.successResultOf(body)), response.headers

    def test_health_needs_no_token(self) -> None:
        """Health answers anyone (a load balancer's check carries no token)."""
        code, body, _ = self.request("GET", "/api/v1/health")
        self.assertEqual(code, 200)
        self.assertEqual(body["state"], "started")

    def test_no_token_or_a_wrong_one_is_401_with_a_challenge(self) -> None:
        """Every other path answers 401, JSON, with WWW-Authenticate: Bearer."""
        for path in ("/api/v1/status", "/api/v1/openapi.json", "/api/v1/files?state=done"):
            code, body, headers = self.request("GET", path)
            self.assertEqual(code, 401, path)
            self.assertEqual(body["error"]["code"], 401)
            self.assertIn("Authorization: Bearer", body["error"]["message"])
            [challenge] = headers.getRawHeaders(b"www-authenticate")
            self.assertTrue(challenge.startswith(b"Bearer "), challenge)
        code, body, headers = self.request("GET", "/api/v1/status", token="ta_wrong")
        self.assertEqual(code, 401)
        self.assertIn(b'error="invalid_token"', headers.getRawHeaders(b"www-authenticate")[0])
        code, _, _ = self.request(
            "GET", "/api/v1/status", headers={"Authorization": f"Basic {self.read_token}"}
        )
        self.assertEqual(code, 401)
        code, _, _ = self.request("POST", "/api/v1/pause")
        self.assertEqual(code, 401)
        self.assertEqual(self.admin.state, "started")

    def test_a_read_token_reads_but_may_not_act(self) -> None:
        """A read token gets the status; its pause is 403 and the farm goes on."""
        code, body, _ = self.request("GET", "/api/v1/status", token=self.read_token)
        self.assertEqual(code, 200)
        code, body, _ = self.request("POST", "/api/v1/pause", token=self.read_token)
        self.assertEqual(code, 403)
        self.assertIn("'dashboard' may only read", body["error"]["message"])
        self.assertEqual(self.admin.state, "started")

    def test_an_admin_token_acts(self) -> None:
        """An admin token pauses and resumes."""
        code, body, _ = self.request("POST", "/api/v1/pause", token=self.admin_token)
        self.assertEqual((code, body), (200, {"state": "paused"}))
        self.assertEqual(self.admin.state, "paused")

    def test_a_host_that_is_not_loopback_nor_allowed_is_refused(self) -> None:
        """A rebound DNS name is 403 even with a good token; allowed-hosts let theirs in."""
        code, body, _ = self.request(
            "GET", "/api/v1/status", self.admin_token, {"Host": "evil.example.net:7667"}
        )
        self.assertEqual(code, 403)
        self.assertIn("'evil.example.net' is not a loopback name", body["error"]["message"])
        for host in ("farm.example.com", "FARM.example.com:7667", "localhost:7667", "[::1]:7667"):
            code, _, _ = self.request("GET", "/api/v1/status", self.admin_token, {"Host": host})
            self.assertEqual(code, 200, host)

    def test_an_action_from_another_origin_is_refused(self) -> None:
        """A page of another site cannot pause the farm, even with a token it found."""
        for headers in (
            {"Origin": "https://evil.example.net"},
            {"Origin": "null"},
            {"Origin": "http://127.0.0.1:8080"},
            {"Sec-Fetch-Site": "cross-site"},
        ):
            code, body, _ = self.request("POST", "/api/v1/pause", self.admin_token, headers)
            self.assertEqual(code, 403, headers)
            self.assertIn("other", body["error"]["message"])
        self.assertEqual(self.admin.state, "started")
        code, _, _ = self.request(
            "POST", "/api/v1/pause", self.admin_token, {"Origin": "http://127.0.0.1:7667"}
        )
        self.assertEqual(code, 200)
        code, _, _ = self.request(
            "GET", "/api/v1/status", self.read_token, {"Origin": "https://evil.example.net"}
        )
        self.assertEqual(code, 200)  # reads are the browser's same-origin policy's to guard


class LoopbackWithoutTokensTests(SynchronousTestCase):
    """Without tokens, loopback clients need none, but Host and Origin still hold."""

    def test_rebinding_and_cross_site_posts_refused_without_tokens(self) -> None:
        """The old hole: a page POSTing to localhost pauses the farm. Now 403."""
        admin = FakeAdmin()
        client: Any = StubTreq(build_resource(admin))
        d = client.request("POST", BASE + "/api/v1/pause", headers={"Origin": "https://x.test"})
        client.flush()
        self.assertEqual(self.successResultOf(d).code, 403)
        d = client.request("GET", BASE + "/api/v1/status", headers={"Host": "rebound.test"})
        client.flush()
        self.assertEqual(self.successResultOf(d).code, 403)
        d = client.request("POST", BASE + "/api/v1/pause")
        client.flush()
        self.assertEqual(self.successResultOf(d).code, 200)
        self.assertEqual(admin.state, "paused")


class ListenTests(SynchronousTestCase):
    """With tokens, the API may listen beyond loopback; the document says how to log in."""

    def test_public_endpoint_allowed_with_tokens_only(self) -> None:
        """tcp:7667 (every interface) passes with tokens, not without."""
        check_listen("tcp:7667", authenticated=True)
        check_listen("tcp:7667:interface=192.168.1.5", authenticated=True)
        with self.assertRaises(ValueError) as caught:
            check_listen("tcp:7667")
        self.assertIn("api.tokens-file", str(caught.exception))
        with self.assertRaises(ValueError):
            check_listen("nonsense", authenticated=True)

    def test_the_document_declares_bearer_tokens(self) -> None:
        """Every operation but health asks for the bearer scheme and documents 401/403."""
        document = openapi_document(ROUTES)
        scheme = document["components"]["securitySchemes"]["bearer"]
        self.assertEqual((scheme["type"], scheme["scheme"]), ("http", "bearer"))
        self.assertEqual(document["security"], [{"bearer": []}])
        for path, methods in document["paths"].items():
            for verb, operation in methods.items():
                responses = operation["responses"]
                self.assertIn("403", responses, path)
                if path == "/api/v1/health":
                    self.assertEqual(operation["security"], [])
                    self.assertNotIn("401", responses)
                else:
                    self.assertIn("401", responses, (path, verb))
