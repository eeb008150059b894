"""Derived names within the file system's limit; the source opened once, without links."""

from __future__ import annotations

import os
import socket

import pytest

from transcoder_admin.context.paths import Roots, fit_name, name_bytes
from transcoder_admin.job import source as source_module
from transcoder_admin.job.source import check_name_limits, prepare
from transcoder_admin.media.probe import NotMediaError
from transcoder_admin.prognosis import JobFailed
from transcoder_admin.records import JobSpec

LONG = "長" * 75 + ".mp4"  # 229 bytes: the report name <name>.<job id>.yaml is over 255
JOB = "20261202T161200Z-0123456789"


def test_a_long_report_name_is_shortened_keeping_job_id_and_extension():
    """The report of a 229-byte name fits in 255 bytes and still ends .<job>.yaml."""
    name = f"{LONG}.{JOB}.yaml"
    assert name_bytes(name) > 255
    fitted = fit_name(name, tail=f".{JOB}.yaml")
    assert name_bytes(fitted) <= 255 and fitted.endswith(f".{JOB}.yaml")
    assert fitted.startswith("長" * 10)
    fitted.encode("utf-8")  # cut on a character boundary


def test_shortened_names_stay_distinct_and_short_names_stay_as_they_are():
    """Two long names that differ only at the end get different names; short ones kept."""
    a, b = "x" * 300 + "a.mp4", "x" * 300 + "b.mp4"
    assert fit_name(a) != fit_name(b)
    assert fit_name(a).endswith(".mp4") and name_bytes(fit_name(a)) == 255
    assert fit_name("clip.mp4") == "clip.mp4"
    assert name_bytes(fit_name("長" * 100 + ".jpg", 143)) <= 143


def test_names_that_are_not_utf8_are_cut_between_bytes():
    """Surrogate-escaped bytes count as one byte each and survive the cut."""
    name = os.fsdecode(b"\xff" * 300 + b".mov")
    fitted = fit_name(name)
    assert name_bytes(fitted) <= 255 and os.fsencode(fitted).startswith(b"\xff" * 100)


def test_a_folder_name_too_long_for_a_destination_is_a_source_failure(tmp_path, monkeypatch):
    """A folder of the path that cannot exist in done (smaller limit): fails at once."""
    roots = Roots({"default": str(tmp_path)})
    relpath = "a" * 200 + "/clip.mov"
    spec = JobSpec(
        job_id="J",
        attempt=1,
        customer="c",
        profile="p",
        relpath=relpath,
        source=f"default:/in/{relpath}",
        done="default:/done/x",
        failed="default:/failed/x",
    )
    check_name_limits(roots, spec)  # 200 bytes fit in 255
    monkeypatch.setattr(source_module, "folder_name_max", lambda folder: 143)
    with pytest.raises(JobFailed) as caught:
        check_name_limits(roots, spec)
    assert caught.value.failure.kind == "source"
    assert "is 200 bytes, over the 143-byte name limit of" in caught.value.failure.reason


def run_prepare(tmp_path, source, offered=None):
    """Run a job's first step on ``source`` (no media needed: nothing probes here)."""
    return prepare(str(tmp_path / "work"), str(source), offered, "clip.mov")


def test_a_symlinked_source_is_a_source_failure(tmp_path):
    """A link in incoming is never followed: the job fails it as a link."""
    secret = tmp_path / "bob.mp4"
    secret.write_bytes(b"bob's file")
    link = tmp_path / "alice.mp4"
    os.symlink(secret, link)
    with pytest.raises(JobFailed) as caught:
        run_prepare(tmp_path, link)
    assert (caught.value.failure.kind, caught.value.failure.reason) == (
        "source",
        "the source is a link",
    )
    assert os.listdir(tmp_path / "work" / "source") == []


def test_a_fifo_is_refused_without_blocking(tmp_path):
    """A named pipe in incoming: not a regular file, and opening it does not hang."""
    fifo = tmp_path / "pipe.mov"
    os.mkfifo(fifo)
    with pytest.raises(JobFailed, match="not a regular file"):
        run_prepare(tmp_path, fifo)


def test_the_job_reads_its_private_copy_not_the_path(tmp_path):
    """The private copy is the opened file: a later replacement does not reach it."""
    source = tmp_path / "clip.mov"
    source.write_bytes(b"the offered file")
    facts, private, identity = run_prepare(tmp_path, source)
    assert private == str(tmp_path / "work" / "source" / "clip.mov")
    assert os.stat(private).st_ino == os.stat(source).st_ino  # a hard link, same fs
    (tmp_path / "new").write_bytes(b"a re-upload")
    os.replace(tmp_path / "new", source)
    with open(private, "rb") as f:
        assert f.read() == b"the offered file"
    assert facts["size"] == len(b"the offered file") and identity.size == facts["size"]


def test_a_source_that_is_not_the_offered_one_is_changed(tmp_path):
    """Size or mtime differ from the offer (or the inode on the scanning host): changed."""
    source = tmp_path / "clip.mov"
    source.write_bytes(b"data")
    st = os.stat(source)
    offered = {"dev": None, "ino": None, "size": 999, "mtime_ns": st.st_mtime_ns, "host": None}
    with pytest.raises(JobFailed) as caught:
        run_prepare(tmp_path, source, offered)
    assert caught.value.failure.kind == "changed"
    same_host = {
        "dev": st.st_dev,
        "ino": st.st_ino + 1,
        "size": st.st_size,
        "mtime_ns": st.st_mtime_ns,
        "host": socket.gethostname(),
    }
    with pytest.raises(JobFailed, match="source changed"):
        run_prepare(tmp_path, source, same_host)
    other_host = dict(same_host, host="elsewhere")  # inodes mean nothing there
    assert run_prepare(tmp_path, source, other_host)[2].ino == st.st_ino


def test_the_private_copy_is_copied_through_the_handle_across_file_systems(tmp_path):
    """Work folder on another file system: a copy made from the open handle."""
    shm = "/dev/shm"
    if not os.path.isdir(shm) or os.stat(shm).st_dev == os.stat(tmp_path).st_dev:
        pytest.skip("no second file system here")
    import tempfile

    source = tmp_path / "clip.mov"
    source.write_bytes(b"x" * 3_000_000)
    with tempfile.TemporaryDirectory(dir=shm) as other:
        _facts, private, _identity = prepare(
            os.path.join(other, "work"), str(source), None, "clip.mov"
        )
        assert os.stat(private).st_ino != os.stat(source).st_ino
        with open(private, "rb") as f:
            assert f.read() == b"x" * 3_000_000


def test_the_job_spec_names_fit_in_255_bytes():
    """A 256-byte source name: report, outputs, done and failed names all fit, distinct."""
    from tests.unit.test_paths import ACME, make_store

    prof = make_store(ACME).customer("ACME").profile("Web")
    name = "長" * 84 + ".mov"  # 256 bytes: longer than any name a file system takes
    spec = prof.file(f"news/{name}").job_spec(JOB, 1)
    for key in ("report_done", "report_failed", "done", "failed"):
        last = getattr(spec, key).rsplit("/", 1)[-1]
        assert name_bytes(last) <= 255, key
    assert spec.report_done.endswith(f".{JOB}.yaml")
    assert spec.done.endswith(".mov") and "/news/" in spec.done
    outputs = [t["output_name"] for t in spec.targets if "output_name" in t]
    assert outputs and all(name_bytes(o) <= 255 for o in outputs)
    other = prof.file(f"news/{'長' * 84}.mkv").job_spec(JOB, 1)
    assert other.report_done != spec.report_done


@pytest.mark.parametrize(
    ("content", "kind"),
    [
        (b"#EXTM3U\n#EXT-X-VERSION:3\n#EXTINF:2.0,\n/etc/passwd.ts\n", "hls"),
        (b"ffconcat version 1.0\nfile other.mp4\n", "concat"),
        (b'<?xml version="1.0"?>\n<MPD profiles="urn:mpeg:dash:profile:isoff-live:2011">', "dash"),
    ],
)
def test_a_playlist_is_refused_before_any_program_reads_it(tmp_path, content, kind):
    """A file that names other files is not media: refused with its facts, unread by ffmpeg."""
    source = tmp_path / "clip.mov"
    source.write_bytes(content)
    with pytest.raises(NotMediaError, match=f"^not a media file: a {kind} playlist$") as caught:
        run_prepare(tmp_path, source)
    assert caught.value.facts["size"] == len(content)
    assert caught.value.facts["head"] == content[:128].hex()
