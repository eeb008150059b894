"""A job's commit on real folders: undone on any file-system error, never through a link."""

from __future__ import annotations

import errno
import os
from dataclasses import replace

import pytest
from twisted.internet.task import Clock

from transcoder_admin.context.paths import Roots
from transcoder_admin.job import safefs
from transcoder_admin.job.job import Job, SourceNotFailed, build_report, fail_source
from transcoder_admin.job.safefs import OWNER_XATTR, Identity
from transcoder_admin.prognosis import JobFailure
from transcoder_admin.records import JobSpec
from transcoder_admin.reports.files import read_report

SOURCE = "default:/in/clip.mov"


def ready_job(
    tmp_path, relpath="clip.mov", outcome_failure=None, outputs=("sd/clip.mp4",), job_id="J1"
):
    """A job whose outcome is ready to commit: a source in incoming, outputs in work."""
    media, temp = tmp_path / "media", tmp_path / "tmp"
    roots = Roots({"default": str(media), "temp": str(temp)})
    source = media / "in" / relpath
    source.parent.mkdir(parents=True, exist_ok=True)
    source.write_bytes(b"the source " + relpath.encode())
    name = relpath.rsplit("/", 1)[-1]
    sub = relpath.rsplit("/", 1)[0] + "/" if "/" in relpath else ""
    spec = JobSpec.from_wire(
        {
            "job_id": job_id,
            "attempt": 1,
            "customer": "acme",
            "profile": "web",
            "relpath": relpath,
            "source": f"default:/in/{relpath}",
            "done": f"default:/done/{relpath}",
            "failed": f"default:/failed/{relpath}",
            "report_done": f"default:/reports/done/{sub}{name}.{job_id}.yaml",
            "report_failed": f"default:/reports/failed/{sub}{name}.{job_id}.yaml",
            "work": f"temp:/work/{job_id}",
            "targets": [],
        }
    )
    job = Job(spec, roots, "w1", Clock())
    work = temp / "work" / job_id
    work.mkdir(parents=True)
    for index, output in enumerate(outputs):
        produced = work / f"{index:02d}-out"
        produced.write_bytes(f"output {index} of {relpath}".encode())
        job.outputs.append((str(produced), str(media / "out" / sub / output)))
    job.identity = Identity.of(os.lstat(source))
    job.outcome = build_report(spec, "w1", Clock(), outcome_failure)
    return job, media, source


def files_under(folder):
    """Every file below a folder, relative, sorted ([] if it does not exist)."""
    found = []
    for parent, _dirs, names in os.walk(folder):
        found += [os.path.relpath(os.path.join(parent, n), folder) for n in names]
    return sorted(found)


def test_a_commit_says_committed_and_moves_everything(tmp_path):
    """The normal case: outputs in outgoing, report written, source in done."""
    job, media, source = ready_job(tmp_path)
    report = job.commit_files(job.outcome)
    assert report["committed"] is True and report["outcome"] == "done"
    assert (media / "out" / "sd" / "clip.mp4").read_bytes() == b"output 0 of clip.mov"
    assert (media / "done" / "clip.mov").exists() and not source.exists()
    assert read_report(str(media / "reports" / "done" / "clip.mov.J1.yaml"))["committed"] is True
    assert os.getxattr(media / "out" / "sd" / "clip.mp4", OWNER_XATTR) == SOURCE.encode()


def test_a_report_folder_blocked_by_a_file_undoes_the_outputs(tmp_path):
    """The reports folder cannot be made: no output left, no report, source in incoming."""
    job, media, source = ready_job(tmp_path)
    (media / "reports").mkdir()
    (media / "reports" / "done").write_text("a file where a folder is needed")
    report = job.commit_files(job.outcome)
    assert report["committed"] is False and report["outcome"] == "failed"
    assert report["failure"]["kind"] == "system"
    assert report["failure"]["reason"] == (
        f"cannot write the report {media}/reports/done/clip.mov.J1.yaml: "
        f"{media}/reports/done is a file, a folder is needed"
    )
    assert files_under(media / "out") == []
    assert source.exists() and not (media / "done").exists()
    assert not (tmp_path / "tmp" / "work" / "J1").exists()


def test_no_space_for_the_report_undoes_the_commit(tmp_path, monkeypatch):
    """ENOSPC while the report is written: reason says so; nothing stays behind."""
    job, media, source = ready_job(tmp_path)
    real_fsync = os.fsync

    def full(fd):
        if os.path.basename(os.readlink(f"/proc/self/fd/{fd}")).startswith(".report-"):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_fsync(fd)

    monkeypatch.setattr(os, "fsync", full)
    report = job.commit_files(job.outcome)
    assert report["committed"] is False
    assert report["failure"]["reason"] == (
        f"cannot write the report {media}/reports/done/clip.mov.J1.yaml: No space left on device"
    )
    assert files_under(media / "out") == [] and files_under(media / "reports") == []
    assert source.exists()


@pytest.mark.parametrize("first", ["file", "folder"])
def test_a_file_and_a_folder_of_one_name_in_done(tmp_path, first):
    """`news` then `news/clip.mov`, and the reverse: the second commit is undone, named."""
    if first == "file":
        job, media, source = ready_job(tmp_path, "news/clip.mov")
        (media / "done").mkdir()
        (media / "done" / "news").write_text("an earlier file named news")
        why = f"{media}/done/news is a file, a folder is needed"
        where = f"{media}/done/news/clip.mov"
    else:
        job, media, source = ready_job(tmp_path, "news", outputs=("sd/news.mp4",))
        (media / "done" / "news").mkdir(parents=True)
        why = f"{media}/done/news is a folder, a file is needed"
        where = f"{media}/done/news"
    report = job.commit_files(job.outcome)
    assert report["committed"] is False
    assert report["failure"]["reason"] == f"cannot move the source to done {where}: {why}"
    assert files_under(media / "out") == [] and files_under(media / "reports") == []
    assert source.exists()


def test_a_symlinked_folder_in_outgoing_is_never_written_through(tmp_path):
    """outgoing/sd is a link elsewhere: nothing is written there; the link is named."""
    job, media, source = ready_job(tmp_path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (media / "out").mkdir()
    os.symlink(elsewhere, media / "out" / "sd")
    report = job.commit_files(job.outcome)
    assert report["committed"] is False
    assert report["failure"]["reason"] == (
        f"cannot move an output to outgoing {media}/out/sd/clip.mp4: "
        f"{media}/out/sd is a link; refusing to write through it"
    )
    assert os.listdir(elsewhere) == [] and source.exists()


def test_a_symlinked_report_file_is_not_replaced(tmp_path):
    """The report's name is a link: refused, the link and its target left alone."""
    job, media, source = ready_job(tmp_path)
    target = tmp_path / "secret"
    target.write_text("keep")
    (media / "reports" / "done").mkdir(parents=True)
    os.symlink(target, media / "reports" / "done" / "clip.mov.J1.yaml")
    report = job.commit_files(job.outcome)
    assert report["committed"] is False
    assert "is a link; refusing to write through it" in report["failure"]["reason"]
    assert target.read_text() == "keep" and source.exists()
    assert files_under(media / "out") == []


def test_a_failed_move_of_the_second_output_removes_the_first(tmp_path, monkeypatch):
    """All or nothing: the first output placed is removed when the second cannot move."""
    job, media, source = ready_job(tmp_path, outputs=("sd/clip.mp4", "hd/clip.mp4"))
    (media / "out" / "hd").mkdir(parents=True)
    (media / "out" / "hd" / "clip.mp4").mkdir()  # a folder where the output must go
    report = job.commit_files(job.outcome)
    assert report["committed"] is False
    assert "hd/clip.mp4 is a folder, a file is needed" in report["failure"]["reason"]
    assert files_under(media / "out") == [] and source.exists()


def test_a_replaced_source_is_not_committed(tmp_path):
    """A re-upload renamed over the source: discarded, nothing moved, no report."""
    job, media, source = ready_job(tmp_path)
    newer = source.parent / ".upload"
    newer.write_bytes(b"a new upload")
    os.replace(newer, source)
    report = job.commit_files(job.outcome)
    assert report["committed"] is False
    assert report["failure"]["kind"] == "changed"
    assert report["failure"]["reason"] == "source changed during the job"
    assert files_under(media / "out") == [] and files_under(media / "reports") == []
    assert source.read_bytes() == b"a new upload"


def test_a_source_that_grew_is_not_judged(tmp_path):
    """An upload still growing when its job failed as a source failure: not failed."""
    job, media, source = ready_job(tmp_path, outcome_failure=JobFailure("source", "decode error"))
    with open(source, "ab") as f:
        f.write(b" and more")
    report = job.commit_files(job.outcome)
    assert report["failure"]["kind"] == "changed" and report["committed"] is False
    assert source.exists() and not (media / "failed").exists()


def test_outputs_of_another_source_are_never_replaced(tmp_path):
    """clip.mov's sd/clip.mp4 exists: clip.mp4 fails as a source failure naming it."""
    job, media, source = ready_job(tmp_path, "clip.mp4")
    other = media / "out" / "sd" / "clip.mp4"
    other.parent.mkdir(parents=True)
    other.write_bytes(b"clip.mov's rendition")
    os.setxattr(other, OWNER_XATTR, b"default:/in/clip.mov")
    report = job.commit_files(job.outcome)
    assert report["committed"] is True and report["outcome"] == "failed"
    assert report["failure"]["kind"] == "source"
    assert report["failure"]["reason"].startswith(
        f"output {other} clashes with an existing file there, made from default:/in/clip.mov"
    )
    assert other.read_bytes() == b"clip.mov's rendition"
    assert (media / "failed" / "clip.mp4").exists()
    assert (media / "reports" / "failed" / "clip.mp4.J1.yaml").exists()
    assert not (media / "out" / "sd" / ".transcoder-admin.lock").exists()


def test_an_output_of_no_known_source_is_not_replaced(tmp_path):
    """A file put there by hand (no owner) is not replaced either."""
    job, media, _source = ready_job(tmp_path)
    other = media / "out" / "sd" / "clip.mp4"
    other.parent.mkdir(parents=True)
    other.write_bytes(b"by hand")
    report = job.commit_files(job.outcome)
    assert "made from no known source" in report["failure"]["reason"]
    assert other.read_bytes() == b"by hand"


def test_a_redelivery_replaces_outputs_made_before_owners_were_recorded(tmp_path):
    """clip.mov is in done and its output has no owner (made by an earlier version): the
    same name dropped again replaces it; the earlier original is kept as clip.1.mov."""
    job, media, _source = ready_job(tmp_path)
    earlier = media / "out" / "sd" / "clip.mp4"
    earlier.parent.mkdir(parents=True)
    earlier.write_bytes(b"made before owners were recorded")
    (media / "done").mkdir()
    (media / "done" / "clip.mov").write_bytes(b"the earlier original")
    report = job.commit_files(job.outcome)
    assert report["committed"] is True and report["outcome"] == "done", report["failure"]
    assert earlier.read_bytes() == b"output 0 of clip.mov"
    assert os.getxattr(earlier, OWNER_XATTR) == SOURCE.encode()
    assert (media / "done" / "clip.1.mov").read_bytes() == b"the earlier original"


def test_a_redelivery_replaces_its_outputs_and_keeps_the_earlier_original(tmp_path):
    """The same name dropped twice: outputs replaced, done keeps clip.1.mov, clip.2.mov."""
    for round_ in range(3):
        job, media, source = ready_job(tmp_path / "f")
        source.write_bytes(f"delivery {round_}".encode())
        job.identity = Identity.of(os.lstat(source))
        report = job.commit_files(job.outcome)
        assert report["committed"] is True and report["outcome"] == "done", report["failure"]
        (tmp_path / "f" / "tmp" / "work").rename(tmp_path / f"work{round_}")
    done = tmp_path / "f" / "media" / "done"
    assert sorted(os.listdir(done)) == ["clip.1.mov", "clip.2.mov", "clip.mov"]
    assert (done / "clip.mov").read_bytes() == b"delivery 2"
    assert (done / "clip.1.mov").read_bytes() == b"delivery 0"
    assert (done / "clip.2.mov").read_bytes() == b"delivery 1"
    assert files_under(tmp_path / "f" / "media" / "out") == ["sd/clip.mp4"]


def test_an_undone_redelivery_restores_the_earlier_output(tmp_path):
    """A re-delivery whose commit fails later: the earlier output is back as it was."""
    job, media, _source = ready_job(tmp_path)
    earlier = media / "out" / "sd" / "clip.mp4"
    earlier.parent.mkdir(parents=True)
    earlier.write_bytes(b"earlier rendition")
    os.setxattr(earlier, OWNER_XATTR, SOURCE.encode())
    (media / "reports").mkdir()
    (media / "reports" / "done").write_text("blocked")
    report = job.commit_files(job.outcome)
    assert report["committed"] is False
    assert earlier.read_bytes() == b"earlier rendition"
    assert os.listdir(earlier.parent) == ["clip.mp4"]


def test_owners_are_kept_in_a_ledger_where_xattrs_are_unsupported(tmp_path, monkeypatch):
    """No user xattrs: the folder's ledger says whose an output is; clashes still seen."""

    def unsupported(*_args):
        raise OSError(errno.ENOTSUP, os.strerror(errno.ENOTSUP))

    monkeypatch.setattr(os, "setxattr", unsupported)
    monkeypatch.setattr(os, "getxattr", unsupported)
    job, media, _source = ready_job(tmp_path / "a")
    assert job.commit_files(job.outcome)["outcome"] == "done"
    assert safefs.OWNERS_FILE in os.listdir(media / "out" / "sd")
    again, _media, _src = ready_job(tmp_path / "a", "clip.mp4")
    report = again.commit_files(again.outcome)
    assert "made from default:/in/clip.mov" in report["failure"]["reason"]


def test_outputs_cross_file_systems_by_copy_rename_and_removal(tmp_path):
    """Work folder on another file system (/dev/shm): outputs copied, originals removed."""
    shm = "/dev/shm"
    if not os.path.isdir(shm) or os.stat(shm).st_dev == os.stat(tmp_path).st_dev:
        pytest.skip("no second file system here")
    import tempfile

    with tempfile.TemporaryDirectory(dir=shm) as other:
        job, media, source = ready_job(tmp_path)
        job.roots = Roots({"default": str(media), "temp": other})
        os.makedirs(os.path.join(other, "work", "J1"))
        moved = []
        for index, (work, final) in enumerate(job.outputs):
            there = os.path.join(other, "work", "J1", f"{index:02d}-out")
            _copy(work, there)
            moved.append((there, final))
        job.outputs = moved
        report = job.commit_files(job.outcome)
        assert report["committed"] is True, report["failure"]
        out = media / "out" / "sd"
        assert (out / "clip.mp4").read_bytes() == b"output 0 of clip.mov"
        assert os.getxattr(out / "clip.mp4", OWNER_XATTR) == SOURCE.encode()
        assert os.listdir(out) == ["clip.mp4"]  # no temporary copy left
        assert not os.path.exists(moved[0][0])


def _copy(src, dst):
    """Copy a file's bytes."""
    with open(src, "rb") as a, open(dst, "wb") as b:
        b.write(a.read())


def test_a_partial_cross_device_copy_is_removed(tmp_path, monkeypatch):
    """EXDEV then ENOSPC while copying: no temporary file left, the original kept."""
    job, media, source = ready_job(tmp_path)
    real_replace, real_write = os.replace, os.write

    def cross(src, dst, **kw):
        if isinstance(src, str) and src.startswith(str(tmp_path / "tmp")):
            raise OSError(errno.EXDEV, os.strerror(errno.EXDEV))
        return real_replace(src, dst, **kw)

    def full(fd, data):
        if ".ta-copy-" in os.readlink(f"/proc/self/fd/{fd}"):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_write(fd, data)

    # Patching os.replace to raise EXDEV stands in for a second file system where none
    # can be mounted; the copy path itself runs for real.
    monkeypatch.setattr(os, "replace", cross)
    monkeypatch.setattr(os, "write", full)
    report = job.commit_files(job.outcome)
    assert report["committed"] is False
    assert report["failure"]["reason"].endswith("No space left on device")
    assert files_under(media / "out") == [] and source.exists()


def test_fail_source_raises_naming_step_and_path(tmp_path):
    """failed is blocked by a file: fail_source raises; no report is left behind."""
    job, media, source = ready_job(tmp_path)
    (media / "failed").write_text("a file")
    report = build_report(job.spec, "w1", Clock(), JobFailure("system", "gave up"))
    with pytest.raises(SourceNotFailed) as caught:
        fail_source(job.roots, job.spec, report)
    assert str(caught.value) == (
        f"cannot move the source to failed {media}/failed/clip.mov: "
        f"{media}/failed is a file, a folder is needed"
    )
    assert files_under(media / "reports") == [] and source.exists()


def test_fail_source_raises_when_the_report_cannot_be_written(tmp_path):
    """The failure report's folder is a link: fail_source raises naming it."""
    job, media, source = ready_job(tmp_path)
    os.symlink(tmp_path, media / "reports")
    report = build_report(job.spec, "w1", Clock(), JobFailure("system", "gave up"))
    with pytest.raises(SourceNotFailed, match="is a link; refusing to write through it"):
        fail_source(job.roots, job.spec, report)
    assert source.exists()


def test_a_source_replaced_while_the_outputs_move_is_not_committed(tmp_path):
    """Replaced between the first check and the source's move: outputs taken back."""
    job, media, source = ready_job(tmp_path)
    place = job.place_outputs

    def place_then_replace(folders, undo):
        result = place(folders, undo)
        (source.parent / ".new").write_bytes(b"a re-upload")
        os.replace(source.parent / ".new", source)
        return result

    job.place_outputs = place_then_replace
    report = job.commit_files(job.outcome)
    assert report["committed"] is False and report["failure"]["kind"] == "changed"
    assert files_under(media / "out") == [] and files_under(media / "reports") == []
    assert source.read_bytes() == b"a re-upload"


def test_two_slots_committing_clashing_outputs_at_once_never_mix_them(tmp_path, monkeypatch):
    """clip.mov and clip.mp4 commit in parallel threads: one is done, one fails the clash."""
    import threading
    import time

    from transcoder_admin.job import commit as commit_module

    checked = commit_module.existing

    def slow_check(*args):
        # Widen the window between the check and the move that the lock must close.
        found = checked(*args)
        time.sleep(0.2)
        return found

    monkeypatch.setattr(commit_module, "existing", slow_check)

    first, media, _ = ready_job(tmp_path / "f", "clip.mov")
    second, _media, _ = ready_job(tmp_path / "f", "clip.mp4", job_id="J2")
    reports = {}
    barrier = threading.Barrier(2)

    def commit(job):
        barrier.wait()
        reports[job.spec.relpath] = job.commit_files(job.outcome)

    threads = [threading.Thread(target=commit, args=(j,)) for j in (first, second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    outcomes = sorted(r["outcome"] for r in reports.values())
    assert outcomes == ["done", "failed"], reports
    [winner] = [name for name, r in reports.items() if r["outcome"] == "done"]
    [loser] = [r for r in reports.values() if r["outcome"] == "failed"]
    assert "clashes with an existing file there" in loser["failure"]["reason"]
    out = media / "out" / "sd" / "clip.mp4"
    assert out.read_bytes() == f"output 0 of {winner}".encode()
    assert os.getxattr(out, OWNER_XATTR) == f"default:/in/{winner}".encode()
    assert os.listdir(media / "out" / "sd") == ["clip.mp4"]


def test_an_unexpected_error_in_a_commit_is_undone_too(tmp_path, monkeypatch):
    """An error outside the named steps (here the kept-folder check) never escapes."""
    job, media, source = ready_job(tmp_path, outcome_failure=JobFailure("source", "bad"))
    job.spec = replace(job.spec, keep_failed=1)

    def broken(_path):
        raise PermissionError(13, "Permission denied", "/somewhere")

    monkeypatch.setattr(os.path, "isdir", broken)
    report = job.commit_files(job.outcome)
    assert report["committed"] is False
    assert report["failure"]["reason"] == "cannot commit /somewhere: Permission denied"
    assert source.exists() and files_under(media / "reports") == []
