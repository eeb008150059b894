"""The operators' actions on a real farm (a queued file's priority) and its metrics."""

from __future__ import annotations

import os
import urllib.error
import urllib.request

from prometheus_client.parser import text_string_to_metric_families

from tests.farm import Farm, processes_with, wait_for

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


def metrics(farm: Farm, token: str | None = None) -> tuple[int, dict[tuple[str, tuple], float]]:
    """GET /metrics: (status, {(sample name, sorted labels): value})."""
    request = urllib.request.Request(f"http://127.0.0.1:{farm.port}/metrics")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            assert answer.headers["Content-Type"].startswith("text/plain; version=0.0.4")
            text = answer.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, {}
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return 200, samples


def test_metrics_count_what_the_farm_did(tmp_path, clips):
    """After one done and one failed file: the finished counters by outcome and kind,
    the duration and queue-time histograms, the workers and slots, the queue gauge; with
    tokens, /metrics needs one."""
    farm = Farm(str(tmp_path), {"acme": CUSTOMER}, max_jobs=1)
    tokens = str(tmp_path / "etc" / "tokens.yaml")
    farm.configure("api", tokens_file=tokens)
    added = farm.command(
        "token", "add", "prometheus", "--role", "read", "--tokens-file", tokens, config=False
    )
    farm.token = added.stdout.strip().splitlines()[-1]
    farm.start()
    try:
        assert metrics(farm)[0] == 401
        farm.drop("acme", "web", "good.m4a", clips["audio"])
        wait_for(lambda: farm.finished("acme", "web") == 1, 60, "the good file")
        broken = tmp_path / "broken.m4a"
        broken.write_bytes(b"not media at all" * 100)
        farm.drop("acme", "web", "broken.m4a", str(broken))
        wait_for(lambda: farm.finished("acme", "web") == 2, 60, "the broken file")
        wait_for(lambda: farm.recorded() == 2, 10, "the admin to record both")
        assert farm.request("POST", "/api/v1/pause")[0] == 403  # a read token
        status, found = metrics(farm, farm.token)
        assert status == 200
        done = found[
            ("transcoder_jobs_finished_total", (("failure_kind", "none"), ("outcome", "done")))
        ]
        assert done == 1
        failed = {
            k: v
            for k, v in found.items()
            if k[0] == "transcoder_jobs_finished_total" and ("outcome", "failed") in k[1]
        }
        assert sum(failed.values()) == 1, failed
        assert found[("transcoder_job_duration_seconds_count", ())] == 2
        assert found[("transcoder_time_in_queue_seconds_count", ())] == 2
        assert found[("transcoder_workers", (("state", "attached"),))] == 1
        assert found[("transcoder_slots", ())] == 1
        assert found[("transcoder_free_slots", ())] == 1
        assert found[("transcoder_running_jobs", ())] == 0
        assert found[("transcoder_ffmpeg_cpu_seconds_total", ())] > 0
        assert ("transcoder_report_rows_waiting", ()) in found
    finally:
        farm.stop()


def test_a_failed_file_sent_back_is_a_new_arrival(tmp_path):
    """A file that failed is sent back by files/retry: it leaves failed, arrives in
    incoming, and is judged again (here it fails again: a second report)."""
    farm = Farm(str(tmp_path), {"acme": CUSTOMER})
    farm.start()
    try:
        broken = tmp_path / "broken.m4a"
        broken.write_bytes(b"not media at all" * 100)
        farm.drop("acme", "web", "news/broken.m4a", str(broken))
        wait_for(lambda: len(farm.reports("acme", "web", "failed")) == 1, 60, "the failure")
        failed = farm.folder("acme", "failed", "web")
        assert os.listdir(os.path.join(failed, "news")) == ["broken.m4a"]
        body = {"customer": "ACME", "profile": "web", "relpath": "news/broken.m4a"}
        status, answer = farm.request("POST", "/api/v1/files/retry", body=body)
        assert (status, answer["state"]) == (202, "returned"), answer
        wait_for(lambda: len(farm.reports("acme", "web", "failed")) == 2, 60, "the second run")
        assert "sent back from failed to incoming by an operator" in farm.log()
        status, answer = farm.request(
            "POST", "/api/v1/files/retry", body={**body, "relpath": "x.m4a"}
        )
        assert (
            status == 404 and "neither stuck nor in the failed folder" in answer["error"]["message"]
        )
        status, answer = farm.request(
            "POST", "/api/v1/files/retry", body={**body, "relpath": "../../etc/passwd"}
        )
        assert status == 404
    finally:
        farm.stop()


#: The post-process a cancel must kill: unique to this run, so parallel suites differ.
CANCEL_MARK = f"47.{os.getpid() % 10000:04d}"


def marked_sleepers() -> list[str]:
    """Processes still running this test's marker sleep."""
    return processes_with(CANCEL_MARK)


def test_a_running_job_is_cancelled_back_to_incoming_then_to_failed(tmp_path, clips):
    """A job whose post-process sleeps: cancelled "incoming", it is killed, its work
    folder emptied and the file offered again (a new job, attempt 1); cancelled "fail",
    its source lands in failed with "cancelled by nightshift" in its report; a read
    token may not cancel; a file with no job is 404; a bad choice 400."""
    target = {"type": "audio", "extension": "m4a", "post-process": ["sleep", CANCEL_MARK]}
    customer = {"name": "ACME", "profiles": {"p": {"targets": {"a": target}}}}
    farm = Farm(str(tmp_path), {"acme": customer}, max_jobs=1)
    tokens = str(tmp_path / "etc" / "tokens.yaml")
    farm.configure("api", tokens_file=tokens)

    def add(name: str, role: str) -> str:
        added = farm.command("token", "add", name, "--role", role, "--tokens-file", tokens)
        return added.stdout.strip().splitlines()[-1]

    reader, farm.token = add("dashboard", "read"), add("nightshift", "admin")
    farm.start()
    file = {"customer": "ACME", "profile": "p", "relpath": "clip.m4a"}
    try:
        farm.drop("acme", "p", "clip.m4a", clips["audio"])
        wait_for(marked_sleepers, 60, "the post-process to run")
        [task] = farm.get("/api/v1/tasks")["items"]
        first_job = task["job_id"]

        status, answer = farm.request(
            "POST", "/api/v1/tasks/cancel", body=file, headers={"Authorization": f"Bearer {reader}"}
        )
        assert status == 403, answer
        status, answer = farm.request("POST", "/api/v1/tasks/cancel", body={**file, "then": "x"})
        assert status == 400 and "'x' is not one of fail, incoming" in answer["error"]["message"]
        status, answer = farm.request(
            "POST", "/api/v1/tasks/cancel", body={**file, "relpath": "none.m4a"}
        )
        assert status == 404, answer

        status, answer = farm.request(
            "POST", "/api/v1/tasks/cancel", body={**file, "then": "incoming"}
        )
        assert status == 200, answer
        assert (answer["state"], answer["job_id"], answer["cancelled_by"]) == (
            "returned",
            first_job,
            "nightshift",
        )
        assert first_job not in os.listdir(farm.folder("acme", "work", "p"))  # cleaned
        assert not os.path.exists(farm.folder("acme", "failed", "p"))
        # Offered again as a new arrival: a new job, and the cancelled attempt not counted.
        wait_for(marked_sleepers, 60, "the file's new job to run")
        [task] = farm.get("/api/v1/tasks")["items"]
        assert task["job_id"] != first_job and task["attempt"] == 1

        status, answer = farm.request("POST", "/api/v1/tasks/cancel", body=file)
        assert status == 200, answer
        assert (answer["state"], answer["reason"]) == ("failed", "cancelled by nightshift")
        assert marked_sleepers() == []  # the post-process was killed with its group
        assert os.listdir(farm.folder("acme", "work", "p")) == []
        assert os.listdir(farm.folder("acme", "incoming", "p")) == []
        assert "clip.m4a" in os.listdir(farm.folder("acme", "failed", "p"))
        [report] = farm.reports("acme", "p", "failed")
        assert report["failure"]["kind"] == "cancelled"
        assert report["failure"]["reason"] == "cancelled by nightshift"
        assert farm.get("/api/v1/tasks")["items"] == []
        assert "cancelled by nightshift (source: incoming)" in farm.log()
    finally:
        farm.stop()
        assert marked_sleepers() == []
