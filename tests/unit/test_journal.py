"""The journal of running jobs: what a killed admin must find again when it restarts."""

from __future__ import annotations

import json
import os
import stat

from transcoder_admin.transcoding.journal import FILE_NAME, Journal


def lines(folder) -> list[dict]:
    """The journal file's entries."""
    with open(os.path.join(folder, FILE_NAME), encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def write(folder, *entries: dict, tail: str = "") -> None:
    """A journal file as a previous admin left it (``tail``: a line cut by the crash)."""
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, FILE_NAME), "w", encoding="utf-8") as f:
        for entry in entries:
            f.write(json.dumps(entry) + "\n")
        f.write(tail)


def start(job_id: str, attempt: int = 1, worker: str = "w1") -> dict:
    """A start entry."""
    return {
        "op": "start",
        "job_id": job_id,
        "key": ["c", "p", f"{job_id}.mov"],
        "attempt": attempt,
        "worker": worker,
        "priority": 7,
        "detected_at": 12.5,
    }


def end(job_id: str) -> dict:
    """An end entry."""
    return {"op": "end", "job_id": job_id}


def test_open_returns_jobs_started_but_not_ended(tmp_path):
    """Only jobs without an end entry are still running somewhere."""
    write(tmp_path, start("J1"), start("J2", 2, "w2"), end("J1"), start("J3"), end("J3"))
    running = Journal(str(tmp_path)).open()
    assert list(running) == ["J2"]
    assert running["J2"] == start("J2", 2, "w2")


def test_open_survives_a_truncated_last_line(tmp_path):
    """The line the crash cut short is skipped, the rest is read."""
    write(tmp_path, start("J1"), start("J2"), tail='{"op": "end", "job_id": "J')
    assert sorted(Journal(str(tmp_path)).open()) == ["J1", "J2"]


def test_open_compacts_the_file_so_new_lines_start_clean(tmp_path):
    """After open the file holds just the running jobs; appends after a cut line parse."""
    write(tmp_path, start("J1"), start("J2"), end("J1"), tail='{"op": "sta')
    journal = Journal(str(tmp_path))
    journal.open()
    assert lines(tmp_path) == [start("J2")]
    journal.started("J3", ["c", "p", "J3.mov"], 1, "w1", priority=1, detected_at=2.0)
    journal.ended("J2")
    journal.close()
    assert sorted(Journal(str(tmp_path)).open()) == ["J3"]
    assert lines(tmp_path) == [
        {
            "op": "start",
            "job_id": "J3",
            "key": ["c", "p", "J3.mov"],
            "attempt": 1,
            "worker": "w1",
            "priority": 1,
            "detected_at": 2.0,
        }
    ]


def test_lines_that_are_not_entries_are_ignored(tmp_path):
    """Garbage, lists and entries without a job id do not stop the restart."""
    write(tmp_path, start("J1"), {"op": "start"}, tail="[1, 2]\nnot json\n")
    assert list(Journal(str(tmp_path)).open()) == ["J1"]


def test_a_later_attempt_replaces_the_earlier_start(tmp_path):
    """The last start entry of a job id is the one kept."""
    write(tmp_path, start("J1", 1), start("J1", 2, "w2"))
    assert Journal(str(tmp_path)).open()["J1"]["attempt"] == 2


def test_first_open_makes_a_private_folder_and_an_empty_journal(tmp_path):
    """No journal yet: nothing runs; the state folder is made, readable by its owner only."""
    folder = tmp_path / "state"
    journal = Journal(str(folder))
    assert journal.open() == {}
    assert stat.S_IMODE(os.stat(folder).st_mode) == 0o700
    assert lines(folder) == []
    journal.close()


def test_entries_reach_the_file_at_once_and_none_after_close(tmp_path):
    """Each entry is on disk when the call returns (a SIGKILL loses nothing)."""
    journal = Journal(str(tmp_path))
    journal.open()
    journal.started("J1", ["c", "p", "a.mov"], 1, "w1")
    assert [e["job_id"] for e in lines(tmp_path)] == ["J1"]
    journal.close()
    journal.ended("J1")  # after close: ignored, no error
    assert sorted(Journal(str(tmp_path)).open()) == ["J1"]
