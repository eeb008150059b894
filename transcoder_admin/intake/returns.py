"""An operator sends a failed file back: its source moves from *failed* to *incoming*,
where monitoring takes it as a new arrival (``POST /api/v1/files/retry``).

The move is one ``renameat2(RENAME_NOREPLACE)``: the file appears in incoming whole,
with one link (monitoring refuses hard-linked files), and never replaces a file of the
same name there (that one may be a newer upload).  A source that has other links (a
failed job kept for inspection shares it) is copied under a hidden name and renamed
the same way instead.  A link in either folder, or a folder
of the path that leads out of its folder, is refused.  Both folders must be on one file
system that supports the flag (ext4, XFS, btrfs, tmpfs; below one root in the usual
layout); otherwise nothing moves and the answer says why.
"""

from __future__ import annotations

import ctypes
import errno
import os
import secrets
import shutil
import stat

from ..context.paths import PathEscapeError, join_virtual
from ..errors import InvalidStateError, NotStuck


def _inside(path: str, folder: str) -> bool:
    """Whether ``path``'s real location is below ``folder``'s."""
    real, base = os.path.realpath(path), os.path.realpath(folder)
    return real == base or real.startswith(base.rstrip("/") + "/")


def return_failed(failed: str, incoming: str, relpath: str) -> None:
    """Move ``failed/relpath`` to ``incoming/relpath`` (blocking: run it in a thread).

    NotStuck when there is no such failed file; InvalidStateError (with the reason) when
    it cannot be moved back.
    """
    try:
        join_virtual("x:/", relpath)
    except PathEscapeError as error:
        raise NotStuck(str(error)) from None
    if relpath.startswith("/") or not relpath.strip("/"):
        raise NotStuck(f"{relpath!r} is not a path under the failed folder")
    source = os.path.join(failed, relpath)
    target = os.path.join(incoming, relpath)
    if not _inside(os.path.dirname(source), failed):
        raise NotStuck(f"{relpath!r}: a folder of its path leads out of the failed folder")
    try:
        facts = os.lstat(source)
    except OSError:
        raise NotStuck(f"{relpath!r} is neither stuck nor in the failed folder") from None
    if not stat.S_ISREG(facts.st_mode):
        raise InvalidStateError(f"{relpath!r} in the failed folder is not a regular file")
    parent = existing = os.path.dirname(target)
    while not os.path.lexists(existing):
        existing = os.path.dirname(existing)
    if not _inside(existing, incoming):  # before any folder is made through a link
        raise InvalidStateError(f"{relpath!r}: a folder of its path leads out of incoming")
    os.makedirs(parent, exist_ok=True)
    try:
        if facts.st_nlink > 1:  # a failed job kept for inspection shares it: a copy
            _copy_in(source, target)
        else:
            rename_no_replace(source, target)
    except FileExistsError:
        raise InvalidStateError(
            f"{relpath!r} is in incoming already (a newer upload?): nothing was moved"
        ) from None
    except OSError as error:
        if error.errno == errno.EXDEV:
            raise InvalidStateError(
                f"{relpath!r}: failed and incoming are on different file systems"
            ) from None
        raise InvalidStateError(f"{relpath!r} cannot be moved back: {error.strerror}") from None


def _copy_in(source: str, target: str) -> None:
    """Copy ``source`` to a hidden name beside ``target`` (monitoring skips dot files),
    put it in place without replacing anything, then remove ``source``."""
    hidden = os.path.join(os.path.dirname(target), f".transcoder-return-{secrets.token_hex(6)}")
    reading = os.open(source, os.O_RDONLY | os.O_NOFOLLOW)
    try:
        writing = os.open(hidden, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
        try:
            with (
                open(reading, "rb", closefd=False) as src,
                open(writing, "wb", closefd=False) as dst,
            ):
                shutil.copyfileobj(src, dst, 1024 * 1024)
                dst.flush()
                os.fsync(writing)
        finally:
            os.close(writing)
        rename_no_replace(hidden, target)
    except BaseException:
        if os.path.lexists(hidden):
            os.unlink(hidden)
        raise
    finally:
        os.close(reading)
    os.unlink(source)


_RENAME_NOREPLACE = 1
_AT_FDCWD = -100


def rename_no_replace(source: str, target: str) -> None:
    """Rename ``source`` to ``target`` atomically, failing (EEXIST) if ``target`` exists."""
    libc = ctypes.CDLL(None, use_errno=True)
    result = libc.renameat2(
        _AT_FDCWD, os.fsencode(source), _AT_FDCWD, os.fsencode(target), _RENAME_NOREPLACE
    )
    if result != 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code), target)
