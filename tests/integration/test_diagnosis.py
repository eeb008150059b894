"""A failed job's diagnosis on a real farm: written beside its report, served by the
API, mailed with the failure, and re-run by ``transcoder-admin diagnose`` without
touching the farm."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys

import yaml

from tests.farm import Farm, wait_for

CUSTOMER = {
    "name": "ACME",
    "profiles": {
        "web": {
            "targets": {
                "small": {
                    "type": "audio-video",
                    "extension": "mp4",
                    "video": {"codec": "h264", "height": 120},
                    "audio": {"codec": "aac", "bitrate": 64},
                },
                "copy": {"type": "identity"},  # decodes the whole source: corrupt fails
            }
        }
    },
}


def tree(folder: str) -> dict[str, int]:
    """Every file below ``folder`` with its size."""
    found = {}
    for parent, _dirs, files in os.walk(folder):
        for name in files:
            path = os.path.join(parent, name)
            found[os.path.relpath(path, folder)] = os.path.getsize(path)
    return found


def diagnose(report: str) -> subprocess.CompletedProcess[str]:
    """``transcoder-admin diagnose REPORT``."""
    return subprocess.run(
        [sys.executable, "-m", "transcoder_admin", "diagnose", report],
        capture_output=True,
        text=True,
        timeout=300,
    )


def one_report(folder: str) -> str | None:
    """The one report file's name once it and its diagnosis are both written (a file being
    written has a hidden temporary name until it is complete)."""
    names = [n for n in os.listdir(folder) if not n.startswith(".")]
    reports = [n for n in names if not n.endswith(".diagnosis.yaml")]
    if len(reports) == 1 and len(names) == 2:
        return reports[0]
    return None


def test_a_failed_job_has_a_diagnosis_the_api_serves_and_diagnose_replays(tmp_path, clips):
    """A corrupt clip: its diagnosis names host, worker, the pasteable commands, the
    source's analysis and first bytes and the log's tail; the API serves it; diagnose
    re-runs the commands (failing again) and changes no file of the farm."""
    farm = Farm(str(tmp_path), {"acme": CUSTOMER})
    farm.start()
    try:
        farm.drop("acme", "web", "broken.ts", clips["corrupt"])
        farm.drop("acme", "web", "good.mp4", clips["av"])
        wait_for(lambda: farm.finished("acme", "web") == 2, 120, "two files")
        folder = farm.folder("acme", "reports-failed", "web")
        report_name = wait_for(lambda: one_report(folder), 10, "the report and its diagnosis")
        report_file = os.path.join(folder, report_name)
        with open(report_file) as f:
            report = yaml.safe_load(f)
        with open(os.path.join(folder, report["diagnosis"])) as f:
            diagnosis = yaml.safe_load(f)
        assert diagnosis["job_id"] == report["job_id"] and diagnosis["worker"]
        assert diagnosis["failure"]["kind"] == "source"
        command = diagnosis["commands"][-1]  # the one that failed: the full decode
        assert command["target"] == "copy" and "-xerror" in command["argv"]
        assert command["shell"] == shlex.join(command["argv"])  # ready to paste
        assert diagnosis["source"]["first_bytes"][0].startswith("00000000  47 ")  # MPEG-TS
        assert diagnosis["source"]["analysis"]["format_name"] == "mpegts"
        assert diagnosis["log_tail"], "the failing program's error output"
        assert diagnosis["reproduce"].endswith(report_file)

        served = farm.get(f"/api/v1/diagnosis?job_id={report['job_id']}")
        assert served == diagnosis
        [done] = farm.reports("acme", "web", "done")
        status, body = farm.request("GET", f"/api/v1/diagnosis?job_id={done['job_id']}")
        assert status == 404 and "did not fail" in body["error"]["message"]
        status, _ = farm.request("GET", "/api/v1/diagnosis")
        assert status == 400

        before = tree(farm.media)
        replay = diagnose(report_file)
        assert replay.returncode == 1, replay.stdout + replay.stderr
        assert "exit status" in replay.stdout and "failed: source" in replay.stdout
        assert tree(farm.media) == before, "diagnose touched the farm"
    finally:
        farm.stop()


def test_a_file_that_is_not_media_has_its_first_bytes_and_no_commands(tmp_path, clips):
    """Failed at analysis: the diagnosis shows what the file is; diagnose says no command
    ran; a report without a diagnosis is refused by name."""
    farm = Farm(str(tmp_path), {"acme": CUSTOMER})
    farm.start()
    try:
        farm.drop("acme", "web", "notes.ts", clips["text"])
        wait_for(lambda: farm.finished("acme", "web") == 1, 60, "the file")
        folder = farm.folder("acme", "reports-failed", "web")
        report_name = wait_for(lambda: one_report(folder), 10, "the report and its diagnosis")
        with open(os.path.join(folder, report_name)) as f:
            report = yaml.safe_load(f)
        with open(os.path.join(folder, report["diagnosis"])) as f:
            diagnosis = yaml.safe_load(f)
        assert diagnosis["commands"] == []
        assert diagnosis["source"]["mime_guess"] == "text/plain"
        assert diagnosis["source"]["first_bytes"][0].endswith("this is not a vi")
        replay = diagnose(os.path.join(folder, report_name))
        assert replay.returncode == 1 and "no command was run" in replay.stdout
        missing = diagnose(str(tmp_path / "nope.yaml"))
        assert missing.returncode == 2 and "nope.yaml" in missing.stderr
    finally:
        farm.stop()
