"""A failed file sent back to incoming, on real folders: never over a newer upload,
never through a link, never out of its folders."""

from __future__ import annotations

import os

import pytest

from transcoder_admin.errors import InvalidStateError, NotStuck
from transcoder_admin.intake.returns import return_failed


@pytest.fixture
def folders(tmp_path):
    """failed/ and incoming/ of one profile, with one failed source in a subfolder."""
    failed, incoming = tmp_path / "failed", tmp_path / "incoming"
    (failed / "news").mkdir(parents=True)
    incoming.mkdir()
    (failed / "news" / "clip.mov").write_bytes(b"source bytes")
    return str(failed), str(incoming), tmp_path


def test_the_source_goes_back_under_its_path(folders):
    """failed/news/clip.mov → incoming/news/clip.mov, same bytes, failed copy gone."""
    failed, incoming, _ = folders
    return_failed(failed, incoming, "news/clip.mov")
    with open(os.path.join(incoming, "news", "clip.mov"), "rb") as f:
        assert f.read() == b"source bytes"
    assert not os.path.exists(os.path.join(failed, "news", "clip.mov"))


def test_a_newer_upload_of_the_same_name_is_not_replaced(folders):
    """incoming has the name: refused, both files as they were."""
    failed, incoming, _ = folders
    os.makedirs(os.path.join(incoming, "news"))
    with open(os.path.join(incoming, "news", "clip.mov"), "wb") as f:
        f.write(b"newer")
    with pytest.raises(InvalidStateError, match="in incoming already"):
        return_failed(failed, incoming, "news/clip.mov")
    assert open(os.path.join(incoming, "news", "clip.mov"), "rb").read() == b"newer"
    assert os.path.exists(os.path.join(failed, "news", "clip.mov"))


@pytest.mark.parametrize(
    "relpath", ["../outside.mov", "news/../../x", "/etc/passwd", "", "missing.mov"]
)
def test_names_that_are_not_a_failed_file_are_not_found(folders, relpath):
    """Escapes, absolute paths, nothing, a missing file: NotStuck (404)."""
    failed, incoming, _ = folders
    with pytest.raises(NotStuck):
        return_failed(failed, incoming, relpath)


def test_links_are_refused_and_nothing_is_made_outside(folders):
    """A link as the failed file, a failed folder that is a link out, an incoming
    folder that is a link out: refused, nothing created or moved."""
    failed, incoming, tmp_path = folders
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.mov").write_bytes(b"secret")
    os.symlink(outside / "secret.mov", os.path.join(failed, "link.mov"))
    with pytest.raises(InvalidStateError, match="not a regular file"):
        return_failed(failed, incoming, "link.mov")
    os.symlink(outside, os.path.join(failed, "away"))
    with pytest.raises(NotStuck, match="leads out"):
        return_failed(failed, incoming, "away/secret.mov")
    os.symlink(outside, os.path.join(incoming, "news"))
    with pytest.raises(InvalidStateError, match="leads out of incoming"):
        return_failed(failed, incoming, "news/clip.mov")
    assert sorted(os.listdir(outside)) == ["secret.mov"]
    assert os.path.exists(os.path.join(failed, "news", "clip.mov"))


def test_a_source_with_another_link_arrives_as_a_copy_of_one_link(folders):
    """A kept job's link to the source stays; incoming gets a file monitoring accepts."""
    failed, incoming, tmp_path = folders
    kept = tmp_path / "kept-source.mov"
    os.link(os.path.join(failed, "news", "clip.mov"), kept)
    return_failed(failed, incoming, "news/clip.mov")
    arrived = os.path.join(incoming, "news", "clip.mov")
    assert os.stat(arrived).st_nlink == 1
    assert open(arrived, "rb").read() == b"source bytes"
    assert os.listdir(os.path.join(incoming, "news")) == ["clip.mov"]  # no hidden leftover
    assert not os.path.exists(os.path.join(failed, "news", "clip.mov"))
    assert kept.read_bytes() == b"source bytes"
