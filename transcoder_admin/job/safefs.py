"""File operations of a job that never follow a link and never lose a file.

Everything here runs in a thread (it blocks).  Destination folders are opened one
component at a time below their root with ``O_DIRECTORY | O_NOFOLLOW``, so that a
symlinked folder (or a file where a folder is needed) inside done, failed, outgoing or
reports is an error naming it, never a path outside the roots.  Files are moved into
those folders relative to the opened folder: renamed on one file system; copied to a
temporary dot-name, flushed, renamed and the original removed across file systems.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import socket
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..context.paths import NAME_MAX, PathEscapeError, Roots, fit_name, name_bytes
from ..reports.files import PathProblem
from .owners import (
    LOCK_FILE,
    OWNER_XATTR,
    OWNERS_FILE,
    folder_lock,
    note_owner_in_ledger,
    owner_of,
    set_owner,
)

COPY_CHUNK = 1 << 20


def describe(error: OSError) -> str:
    """What went wrong, for a reason a person reads ("No space left on device", …)."""
    if isinstance(error, PathProblem):
        return error.message
    return error.strerror or str(error)


def folder_name_max(fd_or_path: int | str) -> int:
    """The longest file name (bytes) a folder takes; 255 where it cannot be asked."""
    try:
        if isinstance(fd_or_path, int):
            value = os.fpathconf(fd_or_path, "PC_NAME_MAX")
        else:
            path = fd_or_path
            while not os.path.isdir(path) and os.path.dirname(path) != path:
                path = os.path.dirname(path)
            value = os.pathconf(path, "PC_NAME_MAX")
    except (OSError, ValueError):
        return NAME_MAX
    return value if value and value > 0 else NAME_MAX


# -- the source: opened once, without following links ---------------------------------


@dataclass(frozen=True)
class Identity:
    """What makes a file the one that was offered: device, inode, size and mtime."""

    dev: int
    ino: int
    size: int
    mtime_ns: int

    @classmethod
    def of(cls, st: os.stat_result) -> Identity:
        """The identity of a stat result."""
        return cls(st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)

    def matches(self, offered: Mapping[str, Any] | None) -> bool:
        """Whether this is the file the admin offered (dev/ino only on the host that saw it)."""
        if not offered:
            return True
        if offered.get("size") is not None and int(offered["size"]) != self.size:
            return False
        if offered.get("mtime_ns") is not None and int(offered["mtime_ns"]) != self.mtime_ns:
            return False
        if offered.get("host") == socket.gethostname():
            if offered.get("dev") is not None and int(offered["dev"]) != self.dev:
                return False
            if offered.get("ino") is not None and int(offered["ino"]) != self.ino:
                return False
        return True


class SourceIsLink(Exception):
    """The source in incoming is a symbolic link."""


class SourceNotRegular(Exception):
    """The source in incoming is not a regular file (a fifo, a device, a folder)."""


def open_source(path: str) -> tuple[int, os.stat_result]:
    """Open the source without following a link; (fd, its fstat). Never blocks on a fifo."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise SourceIsLink(path) from None
        raise
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise SourceNotRegular(path)
    return fd, st


def private_copy(fd: int, work_dir: str, name: str) -> str:
    """The source as a private file in the work folder, made from its open handle.

    A hard link when the work folder is on the source's file system (instant, and the
    same inode: a later replacement of the path in incoming does not reach it), else a
    copy read through the handle.
    """
    dest = os.path.join(work_dir, name)
    folder = os.open(work_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(name, dir_fd=folder)
        try:
            # linkat(AT_SYMLINK_FOLLOW) of the magic link: Python uses linkat only when a
            # dir fd is given, plain link() would try to link the /proc symlink itself.
            os.link(f"/proc/self/fd/{fd}", name, dst_dir_fd=folder, follow_symlinks=True)
            return dest
        except OSError as e:
            if e.errno not in (errno.EXDEV, errno.EPERM, errno.ENOENT, errno.EMLINK):
                raise
        out = os.open(
            name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600, dir_fd=folder
        )
        try:
            _copy_fd(fd, out)
        except BaseException:
            os.close(out)
            with contextlib.suppress(OSError):
                os.unlink(name, dir_fd=folder)
            raise
        os.close(out)
        return dest
    finally:
        os.close(folder)


def _copy_fd(src: int, dst: int) -> None:
    """Copy a whole file from ``src`` to ``dst`` (positional reads: no shared offset)."""
    offset = 0
    while True:
        chunk = os.pread(src, COPY_CHUNK, offset)
        if not chunk:
            return
        view = memoryview(chunk)
        while view:
            written = os.write(dst, view)
            view = view[written:]
        offset += len(chunk)


def current_identity(path: str) -> Identity | None:
    """The identity of whatever is at ``path`` now, not following a link (None: gone)."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None
    if not stat.S_ISREG(st.st_mode):
        return Identity(st.st_dev, -1, -1, -1)
    return Identity.of(st)


# -- destination folders ----------------------------------------------------------------


class Folders:
    """Destination folders of one commit, opened below their roots without links.

    Keeps each folder open for the commit (no path is looked up twice) and fsyncs the
    ones that changed once, at the end.
    """

    def __init__(self, roots: Roots) -> None:
        self.roots = roots
        self._fds: dict[str, int] = {}
        self._changed: set[str] = set()

    def open(self, folder: str) -> int:
        """The fd of a local folder inside a root, made if missing; PathProblem on a link."""
        folder = os.path.normpath(folder)
        if folder in self._fds:
            return self._fds[folder]
        base, parts = self._split(folder)
        fd = os.open(base, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        path = base
        try:
            for part in parts:
                path = os.path.join(path, part)
                try:
                    child = _open_folder(part, fd, path)
                except FileNotFoundError:  # made on first use (a commit seldom needs to)
                    with contextlib.suppress(FileExistsError):
                        os.mkdir(part, 0o755, dir_fd=fd)
                    child = _open_folder(part, fd, path)
                os.close(fd)
                fd = child
        except BaseException:
            os.close(fd)
            raise
        self._fds[folder] = fd
        return fd

    def _split(self, folder: str) -> tuple[str, list[str]]:
        """(the root's folder, the components below it) of a local folder."""
        best = ""
        for base in self.roots.mapping.values():
            if (folder == base or folder.startswith(base.rstrip("/") + "/")) and len(base) > len(
                best
            ):
                best = base
        if not best:
            raise PathEscapeError(f"{folder} is in none of the roots")
        rel = folder[len(best) :].strip("/")
        return best, [p for p in rel.split("/") if p]

    def changed(self, folder: str) -> None:
        """Note that a folder's entries changed (it is fsynced by :meth:`sync`)."""
        self._changed.add(os.path.normpath(folder))

    def sync(self) -> None:
        """Make the changed folders' entries durable, once each (best effort)."""
        for folder in sorted(self._changed):
            fd = self._fds.get(folder)
            if fd is not None:
                with contextlib.suppress(OSError):
                    os.fsync(fd)
        self._changed.clear()

    def close(self) -> None:
        """Close every folder."""
        for fd in self._fds.values():
            with contextlib.suppress(OSError):
                os.close(fd)
        self._fds.clear()


def _open_folder(name: str, parent: int, shown: str) -> int:
    """Open a folder in ``parent`` without following a link; a link or a file there is
    a PathProblem naming ``shown``."""
    try:
        return os.open(
            name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=parent
        )
    except OSError as e:
        if e.errno not in (errno.ELOOP, errno.ENOTDIR):
            raise
    try:
        st = os.stat(name, dir_fd=parent, follow_symlinks=False)
    except OSError:
        raise PathProblem(f"{shown} is not a folder") from None
    if stat.S_ISLNK(st.st_mode):
        raise PathProblem(f"{shown} is a link; refusing to write through it")
    raise PathProblem(f"{shown} is a file, a folder is needed")


def existing(folder_fd: int, name: str, shown: str) -> os.stat_result | None:
    """The regular file ``name`` in a folder, None if absent; PathProblem for anything else."""
    try:
        st = os.stat(name, dir_fd=folder_fd, follow_symlinks=False)
    except FileNotFoundError:
        return None
    if stat.S_ISLNK(st.st_mode):
        raise PathProblem(f"{shown} is a link; refusing to write through it")
    if stat.S_ISDIR(st.st_mode):
        raise PathProblem(f"{shown} is a folder, a file is needed")
    if not stat.S_ISREG(st.st_mode):
        raise PathProblem(f"{shown} is not a regular file")
    return st


def fit_in(folder_fd: int, name: str, tail: str | None = None) -> str:
    """``name`` shortened (with a hash) if it is over the folder's own name limit."""
    return fit_name(name, folder_name_max(folder_fd), tail)


def temporary_name(kind: str) -> str:
    """A short, hidden, unique name for a file being made in a folder."""
    return f".ta-{kind}-{secrets.token_hex(6)}"


def move_file(src: str, folder_fd: int, name: str, owner: str | None = None) -> None:
    """Move ``src`` to ``name`` in an opened folder, replacing a regular file there.

    On one file system: a rename.  Across file systems: a copy to a temporary dot-name,
    fsynced, renamed, the folder fsynced, then ``src`` removed; a partial copy is
    removed on error.  With ``owner``, the file is tagged with the source it was made
    from before it appears under ``name`` (see :func:`owner_of`).
    """
    tagged = owner is not None and set_owner(src, owner)
    try:
        if owner is not None and not tagged:
            _same_device(src, folder_fd)
            note_owner_in_ledger(folder_fd, name, owner)
        os.replace(src, name, dst_dir_fd=folder_fd)
        return
    except OSError as e:
        if e.errno != errno.EXDEV:
            raise
    tmp = temporary_name("copy")
    src_fd = os.open(src, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        st = os.fstat(src_fd)
        out = os.open(
            tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600, dir_fd=folder_fd
        )
        try:
            _copy_fd(src_fd, out)
            os.fchmod(out, stat.S_IMODE(st.st_mode))
            os.utime(out, ns=(st.st_atime_ns, st.st_mtime_ns))
            if owner is not None and not set_owner(out, owner):
                note_owner_in_ledger(folder_fd, name, owner)
            os.fsync(out)
        finally:
            os.close(out)
        os.replace(tmp, name, src_dir_fd=folder_fd, dst_dir_fd=folder_fd)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp, dir_fd=folder_fd)
        raise
    finally:
        os.close(src_fd)
    with contextlib.suppress(OSError):
        os.fsync(folder_fd)
    os.unlink(src)


def _same_device(src: str, folder_fd: int) -> None:
    """Raise EXDEV when ``src`` is on another file system than the folder."""
    if os.stat(src, follow_symlinks=False).st_dev != os.fstat(folder_fd).st_dev:
        raise OSError(errno.EXDEV, os.strerror(errno.EXDEV), src)


def link_aside(folder_fd: int, name: str, aside: str) -> bool:
    """A second name for an existing file (never replacing one); False if ``aside`` exists.

    A hard link keeps the file under ``name`` until it is replaced atomically; where
    hard links are not supported the file is renamed (after checking the name is free).
    """
    try:
        os.link(name, aside, src_dir_fd=folder_fd, dst_dir_fd=folder_fd, follow_symlinks=False)
        return True
    except FileExistsError:
        return False
    except OSError as e:
        if e.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK):
            raise
    try:
        os.stat(aside, dir_fd=folder_fd, follow_symlinks=False)
        return False
    except FileNotFoundError:
        os.rename(name, aside, src_dir_fd=folder_fd, dst_dir_fd=folder_fd)
        return True


def keep_earlier(folder_fd: int, name: str) -> str:
    """Keep an earlier file under the first free ``stem.N.ext`` (N = 1, 2, …); its name."""
    stem, dot, ext = name.rpartition(".")
    if not dot or not stem:
        stem, ext = name, ""
    index = 1
    while True:
        candidate = fit_in(folder_fd, f"{stem}.{index}" + (f".{ext}" if ext else ""))
        if link_aside(folder_fd, name, candidate):
            return candidate
        index += 1


__all__ = [
    "LOCK_FILE",
    "OWNERS_FILE",
    "OWNER_XATTR",
    "folder_lock",
    "set_owner",
    "Folders",
    "Identity",
    "PathProblem",
    "describe",
    "folder_name_max",
    "move_file",
    "name_bytes",
    "open_source",
    "owner_of",
    "private_copy",
]
