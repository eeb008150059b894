"""Credentials files: errors name the file and the line, never the secret."""

from __future__ import annotations

import os
import stat

import pytest

from transcoder_admin.credentials import (
    CredentialsError,
    group_or_world_readable,
    load_credentials,
    local_secret,
    read_secret_file,
)


def credentials(tmp_path, text: str | bytes, name: str = "workers.credentials") -> str:
    """A credentials file with the given content."""
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return str(path)


def error_of(path: str) -> str:
    """The message of the error loading ``path`` raises."""
    with pytest.raises(CredentialsError) as caught:
        load_credentials(path)
    return str(caught.value)


def test_names_and_passwords_with_comments_and_blank_lines(tmp_path):
    """Comments and blank lines are skipped; a password may hold a colon."""
    path = credentials(tmp_path, "# workers\n\n w1 :alpha\nw2:be:ta\nadmin:root-pw\n")
    assert load_credentials(path) == {"w1": b"alpha", "w2": b"be:ta", "admin": b"root-pw"}


@pytest.mark.parametrize(
    "line",
    ["w2-without-colon", ":no-name", "w2:"],
    ids=["missing colon", "empty name", "empty password"],
)
def test_a_malformed_line_is_named_by_file_and_number(tmp_path, line):
    """The error says which file and line, and does not repeat the line's secret."""
    path = credentials(tmp_path, f"# header\nw1:alpha\n{line}\n")
    message = error_of(path)
    assert message == f"{path}, line 3: expected name:password"
    assert "alpha" not in message


def test_a_duplicate_name_is_named_with_its_line(tmp_path):
    """A name listed twice is refused at its second line."""
    path = credentials(tmp_path, "w1:alpha\nw2:beta\nw1:gamma\n")
    message = error_of(path)
    assert message == f"{path}, line 3: 'w1' is listed twice"
    assert "gamma" not in message and "alpha" not in message


def test_an_empty_file_is_refused(tmp_path):
    """A file with only comments has no login in it."""
    path = credentials(tmp_path, "# nobody yet\n\n")
    assert error_of(path) == f"{path}: no name:password line"


def test_a_missing_or_unreadable_file_is_named(tmp_path):
    """A path that cannot be read (absent, a folder) is named with the reason."""
    missing = str(tmp_path / "absent.credentials")
    assert error_of(missing).startswith(f"{missing}: cannot read the credentials file: ")
    folder = tmp_path / "a-folder"
    folder.mkdir()
    assert error_of(str(folder)).startswith(f"{folder}: cannot read the credentials file: ")


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_a_file_without_read_permission_is_named(tmp_path):
    """Mode 000: the error names the file and says it cannot be read."""
    path = credentials(tmp_path, "w1:alpha\n")
    os.chmod(path, 0)
    assert "cannot read the credentials file" in error_of(path)


def test_a_file_that_is_not_utf8_is_named(tmp_path):
    """Binary garbage is refused naming the file."""
    path = credentials(tmp_path, b"w1:\xff\xfe\n")
    assert error_of(path) == f"{path}: not UTF-8 text"


def test_a_worker_reads_its_own_line(tmp_path):
    """A worker takes its line from a shared file; a missing name is named."""
    path = credentials(tmp_path, "w1:alpha\nw2:beta\n")
    assert read_secret_file(path, "w2") == b"beta"
    with pytest.raises(CredentialsError) as caught:
        read_secret_file(path, "w3")
    assert str(caught.value) == f"{path}: no line for 'w3'"


def test_group_or_world_readable(tmp_path):
    """A file others may read is worth a warning; 0600 is not; a missing file is not."""
    path = credentials(tmp_path, "w1:alpha\n")
    os.chmod(path, 0o644)
    assert group_or_world_readable(path)
    os.chmod(path, 0o600)
    assert not group_or_world_readable(path)
    assert not group_or_world_readable(str(tmp_path / "absent"))


def test_local_secret_is_made_once_and_private(tmp_path):
    """The shared secret survives restarts: the same on every call, in a 0600 file."""
    folder = tmp_path / "state"
    first = local_secret(str(folder))
    assert first == local_secret(str(folder)) == local_secret(str(folder))
    assert len(first) == 48 and int(first, 16) >= 0
    assert stat.S_IMODE(os.stat(folder / "secret").st_mode) == 0o600
    assert stat.S_IMODE(os.stat(folder).st_mode) == 0o700
    assert not (folder / "secret.tmp").exists()


def test_local_secret_differs_between_farms_and_replaces_an_empty_file(tmp_path):
    """Two state folders get two secrets; an empty secret file is made anew."""
    a, b = tmp_path / "a", tmp_path / "b"
    assert local_secret(str(a)) != local_secret(str(b))
    (b / "secret").write_bytes(b"")
    fresh = local_secret(str(b))
    assert fresh and fresh == (b / "secret").read_bytes()
