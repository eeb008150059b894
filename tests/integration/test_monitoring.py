"""Monitoring in the real admin process: inotify without a thread per folder."""

from __future__ import annotations

import os
import time

import pytest

from tests.farm import Farm, wait_for
from transcoder_admin.monitoring.trigger import ChangeTrigger

pytestmark = pytest.mark.skipif(not ChangeTrigger.available(), reason="needs inotify")

IDENTITY = {"targets": {"c": {"type": "identity"}}}


def threads_of(pid: int) -> int:
    """The number of threads of a process, from /proc."""
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("Threads:"))


def test_admin_threads_do_not_grow_with_the_number_of_profiles(tmp_path):
    """300 watched profile folders (with subfolders) and the admin has a handful of threads."""
    profiles = {f"p{i}": IDENTITY for i in range(300)}
    farm = Farm(str(tmp_path), {"many": {"name": "Many", "profiles": profiles}}, local=0)
    for i in range(300):
        os.makedirs(os.path.join(farm.folder("many", "incoming", f"p{i}"), "sub"))
    farm.start()
    try:
        assert farm.process is not None
        # one watchdog emitter thread per folder gave 300+ here
        assert threads_of(farm.process.pid) < 40
    finally:
        farm.stop()


def test_inotify_takes_a_file_in_a_subfolder_made_after_start_before_any_poll(tmp_path, clips):
    """With a poll a minute away, a file in a nested folder created after start still runs."""
    customer = {"name": "I", "profiles": {"p": IDENTITY, "q": IDENTITY}}
    farm = Farm(str(tmp_path), {"i": customer}, mode="inotify", poll_interval=60)
    farm.start()
    try:
        incoming = farm.folder("i", "incoming", "p")
        os.makedirs(os.path.join(incoming, "news", "today"))
        time.sleep(0.2)  # the folders exist and are watched before the file arrives
        farm.drop("i", "p", "news/today/a.m4a", clips["audio"])
        farm.drop("i", "p", "b.m4a", clips["audio"])
        # 40 s: long before the first poll after start-up (60 s)
        wait_for(lambda: farm.finished("i", "p") == 2, 40, "both jobs")
        done = farm.folder("i", "done", "p")
        assert os.path.exists(os.path.join(done, "news", "today", "a.m4a"))
        # the same name dropped again is taken again, still without a poll
        farm.drop("i", "p", "b.m4a", clips["audio"])
        wait_for(lambda: farm.finished("i", "p") == 3, 40, "the job of the file dropped again")
    finally:
        farm.stop()
    assert "watch limit" not in farm.log()


def test_a_renamed_upload_is_taken_at_once_and_a_copy_in_place_waits(tmp_path, clips):
    """stable-for 60 s, polls a minute apart: a file renamed into incoming is transcoded
    long before either; a file written in place is listed pending, waiting stable-for."""
    customer = {"name": "R", "profiles": {"p": IDENTITY}}
    farm = Farm(str(tmp_path), {"r": customer}, mode="inotify", poll_interval=60, stable_for=60)
    farm.start()
    try:
        incoming = farm.folder("r", "incoming", "p")
        dropped = time.monotonic()
        farm.drop("r", "p", "renamed.m4a", clips["audio"])
        wait_for(lambda: farm.finished("r", "p") == 1, 30, "the renamed file's job")
        assert time.monotonic() - dropped < 30  # stable-for (60 s) was not waited
        with (
            open(clips["audio"], "rb") as src,
            open(os.path.join(incoming, "copied.m4a"), "wb") as out,
        ):
            out.write(src.read())
        wait_for(
            lambda: (
                [f["relpath"] for f in farm.get("/api/v1/files?state=pending")["items"]]
                == ["copied.m4a"]
            ),
            10,
            "the copy listed pending",
        )
        time.sleep(2)
        assert farm.finished("r", "p") == 1  # still waiting for stable-for
    finally:
        farm.stop()
