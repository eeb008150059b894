"""What a worker does to files for one job, on the real farm (issue 9).

Commit failures are undone and named, never looped; long names fit; a replaced source
is not judged; outputs of another source are never replaced; links are never followed.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys

import av
import pytest

from tests.farm import Farm, wait_for

SD = {"type": "audio-video", "extension": "mp4", "video": {"height": 120}}


def profile(**extra: object) -> dict:
    """A profile with one small audio-video target, sd."""
    return {"allow-without-audio": True, "targets": {"sd": dict(SD)}, **extra}


#: A post-process that holds the job for a while after its output is made.
HOLD = [sys.executable, "-c", "import time; time.sleep(4)"]

CUSTOMER = {
    "name": "ACME",
    "profiles": {
        "p": profile(),
        "q": profile(),
        "slow": {
            "allow-without-audio": True,
            "targets": {"sd": dict(SD, **{"post-process": HOLD})},
        },
    },
}


@pytest.fixture
def farm(tmp_path):
    """A started farm with the ACME customer; stopped after the test."""
    f = Farm(str(tmp_path), {"acme": CUSTOMER})
    f.start()
    yield f
    f.stop()


def files_under(folder: str) -> list[str]:
    """Every file below a folder, relative, sorted ([] if it does not exist)."""
    found = []
    for parent, _dirs, names in os.walk(folder):
        found += [os.path.relpath(os.path.join(parent, n), folder) for n in names]
    return sorted(found)


def duration(path: str) -> float:
    """A media file's duration in seconds."""
    with av.open(path) as c:
        return float(c.duration or 0) / 1_000_000


def test_a_230_byte_name_goes_to_done_with_its_report_and_outputs(farm, clips):
    """75 CJK characters + .mp4: report name shortened (job id kept), nothing loops."""
    name = "長" * 75 + ".mp4"
    assert len(name.encode()) == 229
    farm.drop("acme", "p", name, clips["av"])
    wait_for(lambda: farm.finished("acme", "p") == 1, 120, "the job to end")
    [report] = farm.reports("acme", "p", "done")
    assert report["outcome"] == "done" and report["committed"] is True
    [path] = glob.glob(os.path.join(farm.folder("acme", "reports-done", "p"), "*.yaml"))
    base = os.path.basename(path)
    assert len(base.encode()) <= 255 and base.endswith(f".{report['job_id']}.yaml")
    assert base.startswith("長" * 10) and "~" in base
    assert report["report_path"].endswith("/" + base)
    assert os.listdir(farm.folder("acme", "done", "p")) == [name]
    assert files_under(farm.folder("acme", "outgoing", "p")) == [f"sd/{'長' * 75}.mp4"]
    assert os.listdir(farm.folder("acme", "incoming", "p")) == []


def test_a_report_folder_that_cannot_be_made_undoes_the_commit(farm, clips):
    """reports/done/p is a file: the commit is undone (no output left in outgoing), then,
    max-attempts being 1, the source goes to failed with a report naming the error."""
    blocked = farm.folder("acme", "reports-done", "p")
    os.makedirs(os.path.dirname(blocked), exist_ok=True)
    with open(blocked, "w") as f:
        f.write("a file where the reports folder should be\n")
    farm.drop("acme", "p", "clip.mp4", clips["av"])
    wait_for(lambda: farm.reports("acme", "p", "failed"), 120, "the failure report")
    [report] = farm.reports("acme", "p", "failed")
    reason = report["failure"]["reason"]
    assert reason.startswith(f"cannot write the report {blocked}/clip.mp4.")
    assert f"{blocked} is a file, a folder is needed" in reason
    assert report["failure"]["kind"] == "system"
    assert files_under(farm.folder("acme", "outgoing", "p")) == []
    assert os.listdir(farm.folder("acme", "incoming", "p")) == []
    assert os.listdir(farm.folder("acme", "failed", "p")) == ["clip.mp4"]
    assert not os.path.exists(farm.folder("acme", "done", "p"))
    assert files_under(os.path.dirname(blocked)) == ["p"]  # the blocking file only
    assert farm.log().count("(attempt 1) for ACME/p/clip.mp4") == 1  # transcoded once


@pytest.fixture
def full_reports(farm):
    """The reports folder of profile p on a tiny tmpfs that is full (skipped if no mount)."""
    folder = os.path.join(farm.media, "acme", "reports")
    os.makedirs(folder)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", folder], capture_output=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        os.makedirs(os.path.join(folder, "done", "p"))
        with open(os.path.join(folder, "filler"), "wb", buffering=0) as f:
            try:
                while True:
                    f.write(b"\0" * 4096)
            except OSError:
                pass  # full: ENOSPC from now on
        yield folder
    finally:
        subprocess.run(["umount", "-l", folder], check=False)


def test_no_space_for_the_report_undoes_the_commit(farm, clips, full_reports):
    """A full reports file system (ENOSPC): undone, the reason says so."""
    farm.drop("acme", "p", "clip.mp4", clips["av"])
    reason = "No space left on device"
    wait_for(lambda: "cannot write the report" in farm.log(), 120, "the commit to fail")
    line = next(ln for ln in farm.log().splitlines() if "cannot write the report" in ln)
    assert reason in line and f"{full_reports}/done/p/clip.mp4." in line
    assert files_under(farm.folder("acme", "outgoing", "p")) == []
    assert os.listdir(farm.folder("acme", "incoming", "p")) == ["clip.mp4"]
    assert [n for n in os.listdir(os.path.join(full_reports, "done", "p"))] == []


def test_a_file_and_a_folder_of_one_name_in_done_both_orders(farm, clips):
    """`news` then `news/clip.mp4` (p), `news/clip.mp4` then `news` (q): the commit of
    the second of each is undone (nothing of it in outgoing or done reports) and its
    source goes to failed with a report naming the clash."""
    farm.drop("acme", "p", "news", clips["av"])
    farm.drop("acme", "q", "news/clip.mp4", clips["av"])
    wait_for(lambda: farm.finished("acme", "p") == 1, 120, "news in p")
    wait_for(lambda: farm.finished("acme", "q") == 1, 120, "news/clip.mp4 in q")
    farm.drop("acme", "p", "news/clip.mp4", clips["av"])
    emptied = os.path.join(farm.folder("acme", "incoming", "q"), "news")
    if os.path.isdir(emptied):  # the folder its first file left behind
        os.rmdir(emptied)
    farm.drop("acme", "q", "news", clips["av"])
    done_p, done_q = farm.folder("acme", "done", "p"), farm.folder("acme", "done", "q")
    file_first = (
        f"cannot move the source to done {done_p}/news/clip.mp4: "
        f"{done_p}/news is a file, a folder is needed"
    )
    folder_first = (
        f"cannot move the source to done {done_q}/news: {done_q}/news is a folder, a file is needed"
    )
    wait_for(lambda: file_first in farm.log(), 120, "the file-first commit to fail")
    wait_for(lambda: folder_first in farm.log(), 120, "the folder-first commit to fail")
    assert files_under(farm.folder("acme", "outgoing", "p")) == ["sd/news.mp4"]
    assert files_under(farm.folder("acme", "outgoing", "q")) == ["news/sd/clip.mp4"]
    wait_for(lambda: farm.finished("acme", "p") == farm.finished("acme", "q") == 2, 120)
    assert files_under(farm.folder("acme", "incoming", "p")) == []
    assert files_under(farm.folder("acme", "incoming", "q")) == []
    assert files_under(farm.folder("acme", "failed", "p")) == ["news/clip.mp4"]
    assert files_under(farm.folder("acme", "failed", "q")) == ["news"]
    assert len(farm.reports("acme", "p", "done")) == len(farm.reports("acme", "q", "done")) == 1
    [failed_p] = farm.reports("acme", "p", "failed")
    [failed_q] = farm.reports("acme", "q", "failed")
    assert failed_p["failure"]["reason"] == file_first
    assert failed_q["failure"]["reason"] == folder_first


def test_a_source_replaced_during_its_job_is_not_judged_and_the_new_one_is_done(farm, clips):
    """A re-upload renamed over the source while it runs: the attempt leaves nothing;
    the new file is transcoded as a new arrival and only it ends in done."""
    farm.drop("acme", "slow", "clip.ts", clips["long"])
    work = farm.folder("acme", "work", "slow")
    made = os.path.join(work, "*", "00-audio-video.mp4")
    wait_for(lambda: glob.glob(made), 60, "the job to make its output")
    incoming = farm.folder("acme", "incoming", "slow")
    shutil.copyfile(clips["av"], os.path.join(incoming, ".reupload"))
    os.replace(os.path.join(incoming, ".reupload"), os.path.join(incoming, "clip.ts"))
    wait_for(lambda: "source changed during the job" in farm.log(), 60, "the discarded attempt")
    wait_for(lambda: farm.reports("acme", "slow", "done"), 120, "the new file to be done")
    [report] = farm.reports("acme", "slow", "done")
    assert report["file"]["size"] == os.path.getsize(clips["av"])
    with open(os.path.join(farm.folder("acme", "done", "slow"), "clip.ts"), "rb") as a:
        with open(clips["av"], "rb") as b:
            assert a.read() == b.read()
    assert farm.reports("acme", "slow", "failed") == []
    out = os.path.join(farm.folder("acme", "outgoing", "slow"), "sd", "clip.mp4")
    assert abs(duration(out) - 2.0) < 0.5  # made from the new 2 s file, not the 6 s one


def test_outputs_of_two_sources_never_replace_each_other(farm, clips):
    """clip.mp4 then clip.mov (both give sd/clip.mp4): the second fails naming the clash;
    clip.mp4 dropped again is a re-delivery: outputs replaced, earlier original kept."""
    farm.drop("acme", "p", "clip.mp4", clips["av"])
    wait_for(lambda: farm.finished("acme", "p") == 1, 120, "clip.mp4")
    out = os.path.join(farm.folder("acme", "outgoing", "p"), "sd", "clip.mp4")
    with open(out, "rb") as f:
        first = f.read()
    farm.drop("acme", "p", "clip.mov", clips["long"])
    wait_for(lambda: farm.reports("acme", "p", "failed"), 120, "clip.mov to fail")
    [failed] = farm.reports("acme", "p", "failed")
    assert failed["failure"]["kind"] == "source"
    incoming = "default:/acme/files/incoming/p/clip.mp4"
    assert failed["failure"]["reason"].startswith(
        f"output {out} clashes with an existing file there, made from {incoming}"
    )
    with open(out, "rb") as f:
        assert f.read() == first
    assert os.listdir(farm.folder("acme", "failed", "p")) == ["clip.mov"]
    farm.drop("acme", "p", "clip.mp4", clips["silent"])
    wait_for(lambda: len(farm.reports("acme", "p", "done")) == 2, 120, "the re-delivery")
    assert sorted(os.listdir(farm.folder("acme", "done", "p"))) == ["clip.1.mp4", "clip.mp4"]
    with open(os.path.join(farm.folder("acme", "done", "p"), "clip.1.mp4"), "rb") as a:
        with open(clips["av"], "rb") as b:
            assert a.read() == b.read()  # the earlier original, kept
    with open(out, "rb") as f:
        assert f.read() != first  # replaced by the re-delivery's own rendition
    assert files_under(farm.folder("acme", "outgoing", "p")) == ["sd/clip.mp4"]


def test_a_link_in_incoming_never_copies_its_target(farm, clips):
    """alice's incoming holds a link to a file in the roots: nothing of it is delivered."""
    theirs = os.path.join(farm.media, "bob", "files", "outgoing", "x", "secret.mp4")
    os.makedirs(os.path.dirname(theirs))
    shutil.copyfile(clips["av"], theirs)
    incoming = farm.folder("acme", "incoming", "p")
    os.makedirs(incoming, exist_ok=True)
    os.symlink(theirs, os.path.join(incoming, "secret.mp4"))
    # This job refuses the link; once the scan ignores links, the log says so instead.
    wait_for(
        lambda: (
            farm.reports("acme", "p", "failed")
            or ("secret.mp4" in farm.log() and "link" in farm.log())
        ),
        60,
        "the link to be refused",
    )
    wait_for(lambda: not farm.get("/api/v1/tasks")["items"], 60, "no job running")
    assert files_under(farm.folder("acme", "outgoing", "p")) == []
    assert os.path.isfile(theirs) and not os.path.islink(theirs)
    with open(theirs, "rb") as a, open(clips["av"], "rb") as b:
        assert a.read() == b.read()
    for report in farm.reports("acme", "p", "failed"):
        assert report["failure"]["reason"] == "the source is a link"
