"""Which source an output belongs to, and one commit at a time per output folder.

An output is tagged with its source's path in an extended attribute; where a file system
has no user xattrs, the folder keeps a small ledger file instead.  A lock file in an
output folder makes two jobs that write the same names take turns (a stale lock, left
by a crash, is taken over after a while).
"""

from __future__ import annotations

import contextlib
import errno
import functools
import os
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

from ..reports.files import PathProblem

#: The extended attribute that names the source an output was made from.
OWNER_XATTR = "user.transcoder_admin.source"
#: Where a folder on a file system without user xattrs records its outputs' sources.
OWNERS_FILE = ".transcoder-admin.owners"
#: The lock a commit holds in an output folder while it checks and places outputs.
LOCK_FILE = ".transcoder-admin.lock"
#: A lock older than this (seconds) was left by a crashed commit and is taken over.
LOCK_STALE = 300.0
#: How long a commit waits for another commit's lock on a folder (seconds).
LOCK_WAIT = 120.0
_NO_XATTR = {errno.ENOTSUP, errno.EOPNOTSUPP, errno.EPERM}
if hasattr(errno, "ENODATA"):
    _MISSING_XATTR = errno.ENODATA
else:  # pragma: no cover - BSDs
    _MISSING_XATTR = errno.ENOATTR  # type: ignore[attr-defined]


def set_owner(target: str | int, owner: str) -> bool:
    """Tag a file with the source it was made from; False where xattrs are unsupported."""
    try:
        os.setxattr(target, OWNER_XATTR, os.fsencode(owner))
        return True
    except OSError as e:
        if e.errno in _NO_XATTR:
            return False
        raise


def owner_of(folder_fd: int, name: str) -> str | None:
    """The source an existing output was made from (its xattr, else the folder's ledger)."""
    try:
        fd = os.open(
            name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=folder_fd
        )
    except FileNotFoundError:
        return None
    try:
        return os.fsdecode(os.getxattr(fd, OWNER_XATTR))
    except OSError as e:
        if e.errno != _MISSING_XATTR and e.errno not in _NO_XATTR:
            raise
    finally:
        os.close(fd)
    return _read_ledger(folder_fd).get(name)


def _read_ledger(folder_fd: int) -> dict[str, str]:
    """The folder's owners ledger: ``name\\0source\\n`` lines (later lines win)."""
    try:
        fd = os.open(OWNERS_FILE, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=folder_fd)
    except FileNotFoundError:
        return {}
    with os.fdopen(fd, "rb") as f:
        data = f.read()
    owners: dict[str, str] = {}
    for line in data.split(b"\n"):
        name, sep, source = line.partition(b"\0")
        if sep:
            owners[os.fsdecode(name)] = os.fsdecode(source)
    return owners


def note_owner_in_ledger(folder_fd: int, name: str, owner: str) -> None:
    """Record an output's source in the folder's ledger (file systems without xattrs).

    Appended under the folder's commit lock; NUL and newline cannot occur in a file
    name or in a virtual path, so they separate entries.
    """
    flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW | os.O_CLOEXEC
    fd = os.open(OWNERS_FILE, flags, 0o644, dir_fd=folder_fd)
    try:
        os.write(fd, os.fsencode(name) + b"\0" + os.fsencode(owner) + b"\n")
        os.fsync(fd)
    finally:
        os.close(fd)


# -- the commit lock of an output folder ------------------------------------------------


class _Turns:
    """In-process locks by folder identity: the slots of one worker wait for each other's
    commit without polling the lock file.  An entry lives while someone holds or waits.
    """

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._locks: dict[tuple[int, int], list[Any]] = {}  # key -> [Lock, users]

    @contextlib.contextmanager
    def hold(self, key: tuple[int, int], timeout: float) -> Iterator[bool]:
        """Yield whether this folder's turn was had within ``timeout`` seconds."""
        with self._guard:
            entry = self._locks.setdefault(key, [threading.Lock(), 0])
            entry[1] += 1
        lock: threading.Lock = entry[0]
        had = lock.acquire(timeout=max(timeout, 0.0))
        try:
            yield had
        finally:
            if had:
                lock.release()
            with self._guard:
                entry[1] -= 1
                if not entry[1]:
                    del self._locks[key]


_turns = _Turns()


@functools.cache
def _host() -> str:
    """This host's name, written in the lock files it holds."""
    return socket.gethostname()


#: The first and the longest pause between two tries of another process's lock file.
LOCK_POLL = (0.002, 0.05)


@contextlib.contextmanager
def folder_lock(folder_fd: int, shown: str, clock: Any = time) -> Iterator[None]:
    """Hold a folder's commit lock (an ``O_EXCL`` file) while checking and placing outputs.

    Two slots of one worker and workers on other hosts share output folders.  Slots of
    this process take turns on an in-process lock first (no polling); another process's
    lock file is tried again after a pause that doubles from 2 to 50 ms.  A lock file
    left by a crashed commit is taken over after :data:`LOCK_STALE` seconds.
    """
    deadline = clock.monotonic() + LOCK_WAIT
    st = os.fstat(folder_fd)
    with _turns.hold((st.st_dev, st.st_ino), LOCK_WAIT) as had:
        if not had:
            raise PathProblem(f"{os.path.join(shown, LOCK_FILE)} is held by another commit")
        with _lock_file(folder_fd, shown, deadline, clock):
            yield


@contextlib.contextmanager
def _lock_file(folder_fd: int, shown: str, deadline: float, clock: Any) -> Iterator[None]:
    pause = LOCK_POLL[0]
    while True:
        try:
            fd = os.open(
                LOCK_FILE,
                os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                0o644,
                dir_fd=folder_fd,
            )
            break
        except FileExistsError:
            try:
                st = os.stat(LOCK_FILE, dir_fd=folder_fd, follow_symlinks=False)
                if clock.time() - st.st_mtime > LOCK_STALE:
                    os.unlink(LOCK_FILE, dir_fd=folder_fd)
                    continue
            except FileNotFoundError:
                continue
            if clock.monotonic() > deadline:
                raise PathProblem(
                    f"{os.path.join(shown, LOCK_FILE)} is held by another commit"
                ) from None
            clock.sleep(pause)
            pause = min(pause * 2, LOCK_POLL[1])
    try:
        os.write(fd, f"{_host()} {os.getpid()}\n".encode())
    finally:
        os.close(fd)
    try:
        yield
    finally:
        with contextlib.suppress(OSError):
            os.unlink(LOCK_FILE, dir_fd=folder_fd)
