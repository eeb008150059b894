"""Whether a process on this host still has a file open for writing.

A file that kept its size and mtime for ``stable-for`` seconds may still be an upload
that stalled (an SFTP or FTP server on this host waiting for a slow client): it is not
complete while its writer holds it open.  Runs in the scan thread, once per batch of
files the stability rule found complete:

* first an fcntl read lease, taken and released at once: the kernel refuses it
  (``EAGAIN``) while any process on this host has the file open for writing.  Leases
  need the file's owner or ``CAP_LEASE``, a local filesystem, and SIGIO not left at its
  default action (a writer opening the file in the instant we hold the lease makes the
  kernel send SIGIO to us: :func:`ignore_lease_breaks` ignores it);
* for the files a lease cannot tell, one pass over ``/proc/*/fd`` and ``fdinfo``: an
  fd on the same (device, inode) opened ``O_WRONLY`` or ``O_RDWR``.  Without root (or
  ``CAP_SYS_PTRACE``) it only sees the processes of the admin's own user.

Writers on other hosts (NFS, SMB clients) are invisible here: for them only the timing
rule applies.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import signal
import threading
from collections.abc import Hashable, Mapping
from typing import TypeVar

K = TypeVar("K", bound=Hashable)

_F_SETLEASE = getattr(fcntl, "F_SETLEASE", None)  # Linux only
_SIGIO = getattr(signal, "SIGIO", None)
_OPEN_FLAGS = (
    os.O_RDONLY
    | getattr(os, "O_NOFOLLOW", 0)
    | getattr(os, "O_NONBLOCK", 0)
    | getattr(os, "O_NOCTTY", 0)
    | getattr(os, "O_CLOEXEC", 0)
)


def ignore_lease_breaks() -> None:
    """Ignore SIGIO (left at its default, it would kill the process) so leases can be used.

    Signal dispositions can only be set from the main thread: elsewhere (a test runner's
    thread) leases are simply not used and ``/proc`` tells instead.  Children inherit an
    ignored signal: Twisted's ``spawnProcess`` resets it, ``subprocess`` does not (the
    local workers, which ignore it as well).
    """
    if _SIGIO is None or threading.current_thread() is not threading.main_thread():
        return
    if signal.getsignal(_SIGIO) == signal.SIG_DFL:
        signal.signal(_SIGIO, signal.SIG_IGN)


def _leases_usable() -> bool:
    if _F_SETLEASE is None or _SIGIO is None:
        return False
    handler = signal.getsignal(_SIGIO)
    return handler is not None and handler != signal.SIG_DFL


def open_for_writing(files: Mapping[K, tuple[str, int, int]]) -> set[K]:
    """The keys of ``files`` (key → path, device, inode) that a process has open for writing.

    A path that now names another file than (device, inode) counts as written too: it
    changed, and the next scan looks at it anew.
    """
    busy: set[K] = set()
    unknown: dict[K, tuple[int, int]] = {}
    leases = _leases_usable()
    for key, (path, dev, ino) in files.items():
        verdict = _lease_says(path, dev, ino) if leases else None
        if verdict is None:
            unknown[key] = (dev, ino)
        elif verdict:
            busy.add(key)
    if unknown:
        writing = proc_writers(set(unknown.values()))
        busy.update(key for key, ident in unknown.items() if ident in writing)
    return busy


def _lease_says(path: str, dev: int, ino: int) -> bool | None:
    """True: open for writing (or replaced); False: not; None: a lease cannot tell."""
    try:
        fd = os.open(path, _OPEN_FLAGS)
    except OSError:
        return None  # gone, a link now, not readable by us: /proc (or the next scan) tells
    try:
        return _lease_on(fd, dev, ino)
    finally:
        os.close(fd)  # drops the lease, if we still held it


def _lease_on(fd: int, dev: int, ino: int) -> bool | None:
    assert _F_SETLEASE is not None
    try:
        st = os.fstat(fd)
        if (st.st_dev, st.st_ino) != (dev, ino):
            return True
        fcntl.fcntl(fd, _F_SETLEASE, fcntl.F_RDLCK)
    except OSError as e:
        if e.errno in (errno.EAGAIN, errno.EWOULDBLOCK):
            return True
        return None  # not the owner (EACCES), no leases on this filesystem (EINVAL)…
    with contextlib.suppress(OSError):
        fcntl.fcntl(fd, _F_SETLEASE, fcntl.F_UNLCK)
    return False


def proc_writers(wanted: set[tuple[int, int]], proc: str = "/proc") -> set[tuple[int, int]]:
    """Which of the (device, inode) pairs some process has open for writing, by ``/proc``."""
    found: set[tuple[int, int]] = set()
    try:
        pids = [p for p in os.listdir(proc) if p.isdigit()]
    except OSError:
        return found  # no /proc here: only the timing rule
    for pid in pids:
        fd_dir = f"{proc}/{pid}/fd"
        try:
            fds = os.listdir(fd_dir)
        except OSError:
            continue  # gone, or another user's process we may not look into
        for fd in fds:
            link = f"{fd_dir}/{fd}"
            try:
                if not os.readlink(link).startswith("/"):
                    continue  # sockets, pipes, anonymous inodes: no need to stat them
                st = os.stat(link)
            except OSError:
                continue
            ident = (st.st_dev, st.st_ino)
            if ident in wanted and _writes(f"{proc}/{pid}/fdinfo/{fd}"):
                found.add(ident)
    return found


def _writes(fdinfo: str) -> bool:
    """Whether the fd described by an fdinfo file was opened for writing."""
    try:
        with open(fdinfo, encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("flags:"):
                    return int(line.split()[1], 8) & os.O_ACCMODE in (os.O_WRONLY, os.O_RDWR)
    except (OSError, ValueError, IndexError):
        pass
    return False
