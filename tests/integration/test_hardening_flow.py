"""Every error of a job ends it once: a commit that fails, a source that cannot be failed,
a journal that cannot be written.  Real admin process, real worker process, real ffmpeg.

The folders are broken the way a full or misconfigured disk breaks them: a regular file
stands where a report folder should be, so writing the report fails.
"""

from __future__ import annotations

import json
import os
import re
import time
import urllib.error
import urllib.request
from typing import Any

from tests.farm import Farm, wait_for

CUSTOMER = {
    "name": "R",
    "profiles": {
        "p": {
            "max-attempts": 2,
            "targets": {"a": {"type": "audio", "extension": "m4a"}},
        }
    },
}


def block(path: str) -> None:
    """Put a regular file where the folder ``path`` should be."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write("not a folder\n")


def jobs_started(farm: Farm, relpath: str) -> int:
    """How many jobs (attempts) the admin started for a file, by its log."""
    pattern = re.compile(r"job \S+ \(attempt \d+\) for R/p/" + re.escape(relpath) + " on ")
    return len(pattern.findall(farm.log()))


def post_json(farm: Farm, path: str, body: Any) -> tuple[int, Any]:
    """POST ``body`` as JSON to the API; (status, decoded answer)."""
    req = urllib.request.Request(
        f"http://127.0.0.1:{farm.port}{path}",
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def stuck(farm: Farm) -> list[dict[str, Any]]:
    """The files the API lists as stuck."""
    return list(farm.get("/api/v1/files?state=stuck")["items"])


def test_a_report_that_cannot_be_written_fails_the_file_after_its_attempts(tmp_path, clips):
    """Committing fails twice (max-attempts 2): the source goes to failed with a report
    naming the commit error, and the file is not transcoded a third time."""
    farm = Farm(str(tmp_path), {"r": CUSTOMER})
    blocked = farm.folder("r", "reports-done", "p")
    block(blocked)
    farm.start()
    try:
        farm.drop("r", "p", "x.m4a", clips["audio"])
        wait_for(lambda: farm.reports("r", "p", "failed"), 90, "the failure report")
        [report] = farm.reports("r", "p", "failed")
        assert report["outcome"] == "failed" and report["attempt"] == 2
        assert report["failure"]["kind"] == "system"
        assert "reports/done/p" in report["failure"]["reason"], report["failure"]
        failed = farm.folder("r", "failed", "p")
        wait_for(lambda: os.listdir(failed), 10, "the source in failed")
        assert not os.path.exists(os.path.join(farm.folder("r", "incoming", "p"), "x.m4a"))
        time.sleep(3)  # three poll intervals: nothing takes the file again
        assert jobs_started(farm, "x.m4a") == 2
        assert farm.get("/api/v1/status")["files"]["stuck"] == 0
    finally:
        farm.stop()


def test_a_file_that_cannot_be_failed_is_stuck_until_an_operator_retries_it(tmp_path, clips):
    """Both report folders blocked: the file stays in incoming, listed as stuck with the
    reason, is not taken again; once the folders are fixed a retry brings it to done."""
    customer = {**CUSTOMER, "profiles": {"p": {**CUSTOMER["profiles"]["p"], "max-attempts": 1}}}
    farm = Farm(str(tmp_path), {"r": customer})
    blocked = [farm.folder("r", "reports-done", "p"), farm.folder("r", "reports-failed", "p")]
    for path in blocked:
        block(path)
    farm.start()
    try:
        source = farm.drop("r", "p", "y.m4a", clips["audio"])
        deleted = farm.drop("r", "p", "deleted.m4a", clips["audio"])
        wait_for(lambda: len(stuck(farm)) == 2, 90, "both files to be stuck")
        os.unlink(deleted)  # an operator removes one by hand: it is no longer listed
        wait_for(
            lambda: [i["relpath"] for i in stuck(farm)] == ["y.m4a"],
            10,
            "the deleted file to leave the list",
        )
        [item] = stuck(farm)
        assert (item["customer"], item["profile"], item["relpath"]) == ("R", "p", "y.m4a")
        assert "cannot move the source to failed" in item["reason"]
        assert "reports/failed/p" in item["reason"], item["reason"]
        assert item["since"]
        assert os.path.exists(source)
        assert farm.get("/api/v1/status")["files"]["stuck"] == 1
        time.sleep(3.5)  # several poll intervals: it is not taken again
        assert jobs_started(farm, "y.m4a") == 1
        assert farm.log().count("R/p/y.m4a is stuck in incoming") == 1
        assert [i["relpath"] for i in stuck(farm)] == ["y.m4a"]

        other = {"customer": "R", "profile": "p", "relpath": "nothing.m4a"}
        assert post_json(farm, "/api/v1/files/retry", other)[0] == 404
        assert post_json(farm, "/api/v1/files/retry", {"customer": "R"})[0] == 400
        for path in blocked:
            os.unlink(path)
        retry = {"customer": "R", "profile": "p", "relpath": "y.m4a"}
        status, body = post_json(farm, "/api/v1/files/retry", retry)
        assert (status, body["state"]) == (202, "offered")
        wait_for(lambda: farm.reports("r", "p", "done"), 90, "the retried file to be done")
        assert os.listdir(farm.folder("r", "done", "p"))
        assert not os.path.exists(source)
        assert stuck(farm) == [] and jobs_started(farm, "y.m4a") == 2
        assert post_json(farm, "/api/v1/files/retry", retry)[0] == 404
    finally:
        farm.stop()


def test_a_journal_that_cannot_be_used_costs_no_job_and_no_slot(tmp_path, clips):
    """A folder where the journal of running jobs should be: the admin says so, runs on,
    the file ends in done and every slot is free again."""
    farm = Farm(str(tmp_path), {"r": CUSTOMER})
    journal = os.path.join(farm.temp, ".transcoder-admin", "jobs.journal")
    os.makedirs(os.path.join(journal, "in-the-way"))
    farm.start()
    try:
        farm.drop("r", "p", "z.m4a", clips["audio"])
        wait_for(lambda: farm.reports("r", "p", "done"), 90, "the job to be done")
        assert "cannot use the journal of running jobs" in farm.log()

        def settled() -> bool:
            status = farm.get("/api/v1/status")
            return status["running"] == 0 and status["free_slots"] == status["capacity"] > 0

        wait_for(settled, 10, "every slot to be free again")
    finally:
        farm.stop()
