"""What enters the farm from an upload area: links are refused, stalled uploads wait.

Real admin process, real local worker, real ffmpeg; the upload area is the customers'
incoming folders on this host.
"""

from __future__ import annotations

import glob
import os
import subprocess
import sys
import time

from tests.farm import Farm, wait_for

AUDIO = {"targets": {"a": {"type": "audio", "extension": "m4a", "audio": {"codec": "aac"}}}}
IDENTITY = {"targets": {"c": {"type": "identity"}}}

#: An upload that stalls: half the file, a pause with the file still open, the rest.
WRITER = """\
import sys, time
path, source, pause = sys.argv[1], sys.argv[2], float(sys.argv[3])
with open(source, "rb") as f:
    data = f.read()
with open(path, "wb") as out:
    out.write(data[: len(data) // 2])
    out.flush()
    time.sleep(pause)
    out.write(data[len(data) // 2 :])
"""


def files_below(folder: str) -> list[str]:
    """Every file (not folder) below ``folder``, relative, sorted."""
    found = glob.glob(os.path.join(glob.escape(folder), "**", "*"), recursive=True)
    return sorted(os.path.relpath(p, folder) for p in found if not os.path.isdir(p))


def test_links_to_another_customers_files_are_never_transcoded(tmp_path, clips):
    """A symlink to bob's output and a hard link to bob's done file in alice's incoming:
    neither is taken, nothing of bob's reaches alice's outgoing, both are listed as
    ignored with their reasons and each is warned about once."""
    customers = {
        "alice": {"name": "alice", "profiles": {"p": IDENTITY}},
        "bob": {"name": "bob", "profiles": {"p": IDENTITY}},
    }
    farm = Farm(str(tmp_path), customers)
    farm.start()
    try:
        farm.drop("bob", "p", "secret.m4a", clips["audio"])
        wait_for(lambda: farm.finished("bob", "p") == 1, 60, "bob's file")
        (bob_output,) = files_below(farm.folder("bob", "outgoing", "p"))
        bob_output = os.path.join(farm.folder("bob", "outgoing", "p"), bob_output)
        bob_done = os.path.join(farm.folder("bob", "done", "p"), "secret.m4a")
        incoming = farm.folder("alice", "incoming", "p")
        os.symlink(bob_output, os.path.join(incoming, "soft.m4a"))
        os.link(bob_done, os.path.join(incoming, "hard.m4a"))

        def ignored():
            items = farm.get("/api/v1/files?state=ignored")["items"]
            return {i["relpath"]: (i["customer"], i["state"], i["reason"]) for i in items}

        expected = {
            "soft.m4a": ("alice", "ignored", "a symbolic link"),
            "hard.m4a": ("alice", "ignored", "a file with 2 hard links"),
        }
        wait_for(lambda: ignored() == expected, 20, "both links listed as ignored")
        time.sleep(3.5)  # several polls (1 s) and far more than stable-for (0.3 s)
        assert ignored() == expected
        everything = farm.get("/api/v1/files")["items"]
        assert {i["relpath"]: i["state"] for i in everything if i["customer"] == "alice"} == {
            "soft.m4a": "ignored",
            "hard.m4a": "ignored",
        }
        assert farm.finished("alice", "p") == 0
        assert files_below(farm.folder("alice", "outgoing", "p")) == []
        assert files_below(farm.folder("alice", "done", "p")) == []
        assert os.path.islink(os.path.join(incoming, "soft.m4a"))
        assert os.path.exists(bob_output) and os.path.exists(bob_done)
    finally:
        farm.stop()
    warned = [line for line in farm.log().splitlines() if "not taking alice/p/" in line]
    assert len([w for w in warned if "soft.m4a" in w and "symbolic link" in w]) == 1, warned
    assert len([w for w in warned if "hard.m4a" in w and "2 hard links" in w]) == 1, warned
    assert len(warned) == 2, warned


def test_stalled_upload_still_open_for_writing_is_transcoded_once_whole(tmp_path, clips):
    """An uploader that stops for longer than stable-for with the file open: the file
    waits as pending, then is transcoded once, whole, and ends in done."""
    farm = Farm(str(tmp_path), {"alice": {"name": "alice", "profiles": {"p": AUDIO}}})
    farm.start()
    try:
        incoming = farm.folder("alice", "incoming", "p")
        os.makedirs(incoming, exist_ok=True)
        path = os.path.join(incoming, "upload.m4a")
        writer = subprocess.Popen([sys.executable, "-c", WRITER, path, clips["audio"], "3"])

        def waiting_for_the_writer():
            items = farm.get("/api/v1/files?state=pending")["items"]
            return [i for i in items if "open for writing" in i.get("reason", "")]

        (row,) = wait_for(waiting_for_the_writer, 2.5, "the stalled upload listed as pending")
        assert row["relpath"] == "upload.m4a"
        assert writer.wait(30) == 0
        wait_for(lambda: farm.finished("alice", "p") == 1, 60, "the upload's job")
        time.sleep(1.5)  # a second, wrong job would end about now
        assert len(farm.reports("alice", "p", "done")) == 1
        assert farm.reports("alice", "p", "failed") == []
        with (
            open(clips["audio"], "rb") as f,
            open(os.path.join(farm.folder("alice", "done", "p"), "upload.m4a"), "rb") as done,
        ):
            assert done.read() == f.read()
        assert files_below(farm.folder("alice", "failed", "p")) == []
        assert len(files_below(farm.folder("alice", "outgoing", "p"))) == 1
    finally:
        farm.stop()
