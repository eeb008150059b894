"""A worker with valid credentials is not trusted with the admin's files, on the real farm.

The admin runs with ``workers.local: 0``; external workers are real processes, some of
them started through :mod:`tests.tampering_worker`, which patches what the normal worker
daemon sends (its hello, the spec it reports for adoption, its acknowledgement replies).
What is asserted is what an operator sees: the media root, the reports, the API, the log.
"""

from __future__ import annotations

import os
import signal
import sys

from tests.farm import Farm, wait_for
from tests.integration.test_distributed import (
    CUSTOMER,
    PROFILE,
    assert_all_done_once,
    done_reports,
    drop_clips,
    make_farm,
    workers_up,
)
from tests.tampering_worker import SENTINEL


def start_tampering_worker(farm: Farm, name: str, modes: str, credentials: str) -> None:
    """A real worker process on the farm's roots whose messages are tampered with."""
    argv = [sys.executable, "-m", "tests.tampering_worker", modes, "--name", name]
    argv += ["--manager", f"tcp:127.0.0.1:{farm.manager_port}"]
    argv += ["--root", f"default={farm.media}", "--root", f"temp={farm.temp}"]
    argv += ["--max-jobs", "1", "--credentials-file", credentials]
    argv += ["--heartbeat-interval", "0.5", "--log-level", "debug"]
    farm.start_daemon(name, argv)


def with_workers(farm: Farm, *names: str) -> str:
    """Credentials for these workers, configured on the farm's manager; returns the file."""
    creds = farm.write_credentials("workers.credentials", {n: f"secret-{n}" for n in names})
    farm.configure("manager", credentials=creds)
    return creds


def test_bad_facts_are_refused_and_a_reply_naming_another_job_writes_no_row(tmp_path, clips, farms):
    """max_jobs "x" at hello: refused with a log line, /status answers. A reply whose row
    names another job: no row for that job; the file's row is a system failure. An honest
    worker then transcodes."""
    farm = make_farm(tmp_path, job_seconds=0.1, max_attempts=1)
    farms.append(farm)
    creds = with_workers(farm, "bad-hello", "liar", "honest")
    farm.start()
    start_tampering_worker(farm, "bad-hello", "max-jobs", creds)
    wait_for(lambda: "worker bad-hello refused: bad max_jobs" in farm.log(), 30, "the refusal")
    status = farm.get("/api/v1/status")
    assert (status["capacity"], status["free_slots"]) == (0, 0)
    assert farm.get("/api/v1/workers")["items"] == []

    start_tampering_worker(farm, "liar", "other-row", creds)
    wait_for(lambda: workers_up(farm, {"liar"}), 30, "the lying worker")
    [first] = drop_clips(farm, clips["audio"], 1, prefix="first")
    rows = wait_for(lambda: farm.get("/api/v1/reports")["items"], 60, "the first row")
    assert [(r["customer"], r["relative_path"]) for r in rows] == [("ACME", first)]
    assert rows[0]["outcome"] == "failed" and rows[0]["failure_kind"] == "system"
    assert "worker sent an outcome that does not match job" in rows[0]["failure_reason"]
    assert "does not match job" in farm.log() and "liar" in farm.log()
    farm.daemons["liar"].stop()

    farm.start_worker("honest", creds)
    wait_for(lambda: workers_up(farm, {"honest"}), 30, "the honest worker")
    assert farm.get("/api/v1/status")["capacity"] == 1
    [second] = drop_clips(farm, clips["audio"], 1, prefix="second")
    wait_for(lambda: [r for r in done_reports(farm) if r["relpath"] == second], 60, "the file")
    rows = farm.get("/api/v1/reports?outcome=done")["items"]
    assert [(r["customer"], r["relative_path"]) for r in rows] == [("ACME", second)]
    assert farm.get("/api/v1/reports?customer=Other")["total"] == 0
    assert farm.log().count("worker bad-hello refused") >= 1
    assert farm.get("/api/v1/workers")["items"][0]["name"] == "honest"


def test_a_forged_spec_at_adoption_cannot_touch_the_media_root(tmp_path, clips, farms):
    """The admin is killed mid-job; its worker reports the job with a spec whose work is
    ``default:/`` and max_attempts 0. The restarted admin adopts the job with its own
    spec: when that worker dies, the honest worker cleans only the job's work folder,
    the media root is intact, and the file is done as attempt 2."""
    farm = make_farm(tmp_path, job_seconds=12, lost_timeout=3.0, max_attempts=2)
    farms.append(farm)
    creds = with_workers(farm, "a-tamper", "b-honest")
    os.makedirs(farm.media, exist_ok=True)
    sentinel = os.path.join(farm.media, SENTINEL)
    with open(sentinel, "w") as f:
        f.write("the admin's own\n")
    farm.start()
    start_tampering_worker(farm, "a-tamper", "forged-spec", creds)
    wait_for(lambda: workers_up(farm, {"a-tamper"}), 30, "the tampering worker")
    [name] = drop_clips(farm, clips["audio"], 1)
    wait_for(lambda: farm.get("/api/v1/tasks")["items"], 30, "its job to start")
    work = farm.folder(CUSTOMER, "work", PROFILE)
    wait_for(lambda: os.path.isdir(work) and os.listdir(work), 30, "its work folder")

    farm.signal(signal.SIGKILL)
    assert farm.process is not None
    farm.process.wait(30)
    farm.start()
    wait_for(lambda: "adopted job" in farm.log(), 30, "the job to be adopted")
    farm.start_worker("b-honest", creds)
    wait_for(lambda: workers_up(farm, {"a-tamper", "b-honest"}), 30, "both workers")
    farm.daemons["a-tamper"].kill()

    wait_for(lambda: len(done_reports(farm)) == 1, 60, "the file, done elsewhere")
    [report] = assert_all_done_once(farm, [name]).values()
    assert (report["attempt"], report["worker"]) == (2, "b-honest")
    with open(sentinel) as f:
        assert f.read() == "the admin's own\n"
    assert not os.path.exists(os.path.join(farm.media, "stolen"))
    assert os.path.isdir(farm.folder(CUSTOMER, "incoming", PROFILE))
    assert farm.get("/api/v1/status")["state"] == "started"
