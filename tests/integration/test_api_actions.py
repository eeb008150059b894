"""The operators' actions on a real farm: a queued file's priority."""

from __future__ import annotations

from tests.farm import Farm, wait_for

CUSTOMER = {"name": "ACME", "profiles": {"web": {"targets": {"a": {"type": "audio"}}}}}


def test_a_file_given_priority_runs_first(tmp_path, clips):
    """Paused with three files queued, the last one dropped is given a higher priority:
    after resume it is the first transcoded (one slot), and the others follow."""
    farm = Farm(str(tmp_path), {"acme": CUSTOMER}, max_jobs=1)
    farm.start()
    try:
        assert farm.request("POST", "/api/v1/pause")[0] == 200
        for name in ("one.m4a", "two.m4a", "three.m4a"):
            farm.drop("acme", "web", name, clips["audio"])
        wait_for(lambda: len(farm.get("/api/v1/queue")["items"]) == 3, 30, "three queued")
        higher = farm.get("/api/v1/queue")["items"][0]["priority"] + 1  # customer × 1000 + profile
        body = {"customer": "ACME", "profile": "web", "relpath": "three.m4a", "priority": higher}
        status, answer = farm.request("POST", "/api/v1/queue/priority", body=body)
        assert status == 200, answer
        assert (answer["position"], answer["priority"]) == (0, higher)
        assert farm.get("/api/v1/queue")["items"][0]["relpath"] == "three.m4a"
        status, answer = farm.request(
            "POST", "/api/v1/queue/priority", body={**body, "relpath": "none.m4a"}
        )
        assert status == 404 and "'none.m4a' is not queued" in answer["error"]["message"]
        assert farm.request("POST", "/api/v1/resume")[0] == 200
        wait_for(lambda: farm.finished("acme", "web") == 3, 120, "the three files")
        reports = sorted(farm.reports("acme", "web", "done"), key=lambda r: r["times"]["started"])
        assert reports[0]["relpath"] == "three.m4a"
        assert f"priority of ACME/web: three.m4a set to {higher}" in farm.log()
    finally:
        farm.stop()
