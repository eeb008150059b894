"""A client generated from a live admin's OpenAPI document, as an operator's team would
make one (openapi-python-client), reads every view of a real admin and acts on it.

The generated models refuse an answer that lacks a required field or holds a value
outside an enumeration: what passes here is what such a client can use.
"""

from __future__ import annotations

import importlib
import json
import os
import shutil
import subprocess
import sys

import pytest

from tests.farm import Farm, wait_for

#: The generated package's name (nothing else in the tests is called so).
PACKAGE = "generated_transcoder_admin_client"

CUSTOMER = {
    "name": "ACME",
    "profiles": {"web": {"targets": {"sound": {"type": "audio", "extension": "m4a"}}}},
}


def generate(document: dict, folder: str) -> str:
    """The client package generated from ``document`` in ``folder``; its name."""
    generator = shutil.which("openapi-python-client", path=os.path.dirname(sys.executable))
    if generator is None:
        pytest.fail("openapi-python-client is a test dependency (pip install -e '.[test]')")
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, "openapi.json")
    with open(path, "w") as f:
        json.dump(document, f)
    out = os.path.join(folder, PACKAGE)
    done = subprocess.run(
        [generator, "generate", "--path", path, "--meta", "none", "--output-path", out],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Unable to" not in done.stdout + done.stderr, done.stdout + done.stderr
    sys.path.insert(0, folder)
    return PACKAGE


def test_a_client_generated_from_the_document_reads_every_view_and_acts(
    tmp_path, clips, monkeypatch
):
    """Every GET of the document answers a model; pause, priority and resume act."""
    farm = Farm(str(tmp_path / "farm"), {"acme": CUSTOMER}, max_jobs=1)
    tokens = str(tmp_path / "farm" / "etc" / "tokens.yaml")
    farm.configure("api", tokens_file=tokens)
    added = farm.command("token", "add", "robot", "--role", "admin", "--tokens-file", tokens)
    token = added.stdout.strip().splitlines()[-1]
    farm.token = token
    farm.start()
    monkeypatch.setattr(sys, "path", list(sys.path))
    try:
        broken = tmp_path / "broken.m4a"
        broken.write_bytes(b"not media" * 200)
        farm.drop("acme", "web", "news/ok.m4a", clips["audio"])
        farm.drop("acme", "web", "news/broken.m4a", str(broken))
        wait_for(lambda: farm.get("/api/v1/status")["files"]["failed"] == 1, 60, "the failure")
        wait_for(lambda: farm.get("/api/v1/status")["files"]["done"] == 1, 60, "the done file")
        assert farm.request("POST", "/api/v1/pause")[0] == 200
        farm.drop("acme", "web", "later.m4a", clips["audio"])
        wait_for(lambda: farm.get("/api/v1/queue")["total"] == 1, 60, "the queued file")

        package = generate(farm.get("/api/v1/openapi.json"), str(tmp_path / "generated"))
        client_module = importlib.import_module(f"{package}.client")
        inspection = importlib.import_module(f"{package}.api.inspection")
        actions = importlib.import_module(f"{package}.api.actions")
        models = importlib.import_module(f"{package}.models")
        client = client_module.AuthenticatedClient(
            base_url=f"http://127.0.0.1:{farm.port}", token=token, raise_on_unexpected_status=True
        )

        def call(group, name: str, **kwargs):
            operation = importlib.import_module(f"{group.__name__}.{name}")
            answer = operation.sync(client=client, **kwargs)
            assert answer is not None and not isinstance(answer, models.Error), (name, answer)
            return answer

        assert call(inspection, "get_health").status.value == "ok"
        assert call(inspection, "get_status").state == "paused"
        [worker] = call(inspection, "get_workers").items
        assert worker.name == "test-local-1" and worker.state.value == "attached"
        [customer] = call(inspection, "get_customers").items
        assert customer.name == "ACME" and customer.profiles[0].targets[0].name == "sound"
        assert call(inspection, "get_whoami").name == "robot"
        assert sum(m.done for m in call(inspection, "get_throughput").minutes) == 1
        [queued] = call(inspection, "get_queue").items
        assert queued.relpath == "later.m4a"
        assert call(inspection, "get_tasks").items == []
        call(inspection, "get_components")
        files = call(inspection, "get_files").items
        assert {(f.relpath, f.state.value) for f in files} >= {
            ("news/ok.m4a", "done"),
            ("news/broken.m4a", "failed"),
            ("later.m4a", "queued"),
        }
        [failed] = call(inspection, "get_reports", outcome=models.GetReportsOutcome.FAILED).items
        diagnosis = call(inspection, "get_diagnosis", job_id=failed["job_id"])
        assert diagnosis.job_id == failed["job_id"]
        assert "not a media file" in diagnosis.failure["reason"]
        call(inspection, "get_notifications")
        assert "paths" in call(inspection, "get_open_api").to_dict()

        body = models.SetPriorityBody(
            customer="ACME", profile="web", relpath="later.m4a", priority=999
        )
        assert call(actions, "set_priority", body=body).position == 0
        assert call(actions, "resume").state == "started"
        wait_for(lambda: farm.get("/api/v1/status")["files"]["done"] == 2, 60, "the later file")
    finally:
        for name in [n for n in sys.modules if n.split(".")[0] == PACKAGE]:
            del sys.modules[name]
        assert farm.stop() == 0
