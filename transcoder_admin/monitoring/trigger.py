"""Early re-checks from inotify; the periodic scan stays the truth.

One inotify instance for the whole admin, non-blocking and read by the reactor: no
thread, whatever the number of watched folders (watchdog's observer runs one emitter
thread per watch).  Each folder is watched recursively: one inotify watch per
subfolder, added when the scan finds it or when inotify reports it created or moved in.

An event only says "look again soon, here": a lost event, a queue overflow, a watch
that could not be set (``fs.inotify.max_user_watches``) or one that died with its
subfolder costs latency, never a file.  Network filesystems have no inotify;
``monitoring.mode: poll`` turns this off.
"""

from __future__ import annotations

import ctypes
import errno
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from twisted.internet.interfaces import IReadDescriptor
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from ..reactors import IFarmReactor
from .inotify import (
    EVENT,
    IN_CLOEXEC,
    IN_CREATE,
    IN_DELETE,
    IN_DELETE_SELF,
    IN_IGNORED,
    IN_ISDIR,
    IN_MOVE_SELF,
    IN_MOVED_FROM,
    IN_MOVED_TO,
    IN_NONBLOCK,
    IN_Q_OVERFLOW,
    IN_UNMOUNT,
    NOT_ARRIVED,
    READ_SIZE,
    WATCH_MASK,
    InotifyUnavailable,
    Libc,
    load_libc,
)


@dataclass(frozen=True)
class Change:
    """What changed below one watched folder since the last notice.

    ``paths`` are entries (files or folders) relative to the folder, ``trees`` the
    folders among them, to be examined with everything below.  ``full`` asks for a
    scan of the whole folder (queue overflow, the folder itself moved or deleted).
    ``arrived`` are the files among ``paths`` that were renamed into place and not
    written, created or removed after (an upload finished by a rename: complete at once).
    """

    paths: frozenset[str] = frozenset()
    trees: frozenset[str] = frozenset()
    full: bool = False
    arrived: frozenset[str] = frozenset()


@dataclass
class _Dir:
    """One inotify watch: a folder and where it lies in each watched tree."""

    wd: int
    path: str
    rel: dict[str, str] = field(default_factory=dict)  # watched root -> relative path


@dataclass
class _Notice:
    paths: set[str] = field(default_factory=set)
    trees: set[str] = field(default_factory=set)
    full: bool = False
    arrived: set[str] = field(default_factory=set)


class ChangeTrigger:
    """Watches folder trees with one inotify instance read by the reactor.

    Everything runs on the reactor thread: ``watch``/``unwatch`` add and remove inotify
    watches (one system call per folder) and the reactor reads events when the inotify
    file descriptor is readable, calling each folder's ``on_change`` at most once per
    read with the entries that changed.
    """

    log = Logger()

    def __init__(self, reactor: IFarmReactor, ignored: Callable[[str], bool] | None = None) -> None:
        self.reactor = reactor
        self._ignored = ignored or (lambda name: False)
        self._libc: Libc | None = None
        self._fd = -1
        self._reader: _InotifyReader | None = None
        self._roots: dict[str, Callable[[Change], Any]] = {}
        self._root_dirs: dict[str, set[str]] = {}  # root -> paths of its watched folders
        self._by_wd: dict[int, _Dir] = {}
        self._by_path: dict[str, _Dir] = {}
        self._limit_warned = False
        self._warned: set[str] = set()

    @staticmethod
    def available() -> bool:
        """Whether inotify can be used on this host."""
        try:
            load_libc()
        except InotifyUnavailable:
            return False
        return True

    def start(self) -> None:
        """Open the inotify instance and have the reactor read it.

        Raises InotifyUnavailable, or OSError when the kernel refuses an instance
        (``fs.inotify.max_user_instances``).
        """
        libc = load_libc()
        fd = libc.init1(IN_NONBLOCK | IN_CLOEXEC)
        if fd < 0:
            err = ctypes.get_errno()
            raise OSError(err, f"inotify_init1: {os.strerror(err)}")
        self._libc, self._fd = libc, fd
        self._reader = _InotifyReader(self)
        self.reactor.addReader(self._reader)

    def stop(self) -> None:
        """Stop reading and close the inotify instance (which drops every watch)."""
        if self._reader is not None:
            self.reactor.removeReader(self._reader)
            self._reader = None
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        self._roots.clear()
        self._root_dirs.clear()
        self._by_wd.clear()
        self._by_path.clear()

    # -- watches ---------------------------------------------------------------------

    def watch(
        self, folder: str, on_change: Callable[[Change], Any], subdirs: Iterable[str] = ()
    ) -> list[str] | None:
        """Watch ``folder`` and its subfolders ``subdirs`` (relative, ``/``-separated).

        Idempotent and cheap for folders already watched: call it after every scan with
        the subfolders the scan found.  Returns None when ``folder`` itself cannot be
        watched (polling covers it), else the subfolders newly watched below a folder
        that was already watched: they may have received files before their watch
        existed, so the caller should examine them once more.
        """
        if self._fd < 0:
            return None
        self._roots[folder] = on_change
        top = self._by_path.get(folder)
        already = top is not None and folder in top.rel
        if not already and not self._add(folder, folder, ""):
            return None
        new: list[str] = []
        by_path = self._by_path
        for rel in subdirs:
            path = f"{folder}/{rel}"
            known = by_path.get(path)
            if known is not None and folder in known.rel:
                continue
            if self._add(path, folder, rel) and already:
                new.append(rel)
        return new

    def unwatch(self, folder: str) -> None:
        """Stop watching ``folder`` and its subfolders."""
        self._roots.pop(folder, None)
        for path in self._root_dirs.pop(folder, ()):
            d = self._by_path.get(path)
            if d is not None:
                d.rel.pop(folder, None)
                if not d.rel:
                    self._forget(d, remove=True)

    def watched(self, folder: str) -> list[str]:
        """The watched subfolders of a watched folder, relative ("" for itself)."""
        return sorted(self._by_path[p].rel[folder] for p in self._root_dirs.get(folder, ()))

    def watch_count(self) -> int:
        """How many inotify watches are set."""
        return len(self._by_wd)

    def _add(self, path: str, root: str, rel: str) -> bool:
        assert self._libc is not None
        wd = self._libc.add_watch(self._fd, os.fsencode(path), WATCH_MASK)
        if wd < 0:
            self._refused(path, root, ctypes.get_errno())
            return False
        d = self._by_wd.get(wd)
        if d is None:
            d = self._by_wd[wd] = _Dir(wd, path)
        elif d.path != path:  # the same folder seen under a new name (moved)
            self._release_path(d)
            d.path = path
            d.rel.clear()
        d.rel[root] = rel
        self._by_path[path] = d
        self._root_dirs.setdefault(root, set()).add(path)
        return True

    def _refused(self, path: str, root: str, err: int) -> None:
        if err in (errno.ENOENT, errno.ENOTDIR):
            return  # gone already; the next scan tells
        if err == errno.ENOSPC:
            if not self._limit_warned:
                self._limit_warned = True
                self.log.warn(
                    "inotify watch limit reached (fs.inotify.max_user_watches) at {path}:"
                    " folders without a watch are only seen by the periodic scan",
                    path=path,
                )
            return
        if path == root and path not in self._warned:
            self._warned.add(path)
            self.log.warn(
                "cannot watch {folder} with inotify: {error}; relying on the periodic scan",
                folder=path,
                error=os.strerror(err),
            )

    def _forget(self, d: _Dir, remove: bool) -> None:
        """Drop a watch from the books (and from the kernel when ``remove``)."""
        if self._by_wd.get(d.wd) is d:
            del self._by_wd[d.wd]
        self._release_path(d)
        if remove and self._libc is not None and self._fd >= 0:
            self._libc.rm_watch(self._fd, d.wd)  # EINVAL when already gone: fine

    def _release_path(self, d: _Dir) -> None:
        """Unlink ``d`` from its path, unless a newer watch took the path over."""
        if self._by_path.get(d.path) is not d:
            return  # e.g. deleted and made again: the new folder's watch keeps the path
        del self._by_path[d.path]
        for root in d.rel:
            dirs = self._root_dirs.get(root)
            if dirs is not None:
                dirs.discard(d.path)

    def _forget_tree(self, path: str) -> None:
        """A folder left its place: drop its watch and those below (their paths are stale)."""
        prefix = path + "/"
        for p in [p for p in self._by_path if p == path or p.startswith(prefix)]:
            self._forget(self._by_path[p], remove=True)

    # -- events ----------------------------------------------------------------------

    def read_events(self) -> None:
        """Read what inotify has queued and tell the folders concerned (reactor thread)."""
        try:
            data = os.read(self._fd, READ_SIZE)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as e:
            self.log.error("reading inotify events failed: {error}", error=e)
            return
        self.handle_events(data)

    def handle_events(self, data: bytes) -> None:
        """Act on a buffer of ``struct inotify_event`` records, as read from the kernel."""
        notices: dict[str, _Notice] = {}
        overflow = False
        unpack, size, end = EVENT.unpack_from, EVENT.size, len(data)
        by_wd, ignored = self._by_wd, self._ignored
        i = 0
        while i + size <= end:
            wd, mask, _cookie, length = unpack(data, i)
            raw = data[i + size : i + size + length].rstrip(b"\0")
            i += size + length
            if mask & IN_Q_OVERFLOW:
                overflow = True
                continue
            d = by_wd.get(wd)
            if d is None:
                continue
            if mask & IN_IGNORED:  # the watch is gone (folder deleted, unmounted, removed)
                self._forget(d, remove=False)
                continue
            if not raw:  # the folder itself
                if mask & (IN_DELETE_SELF | IN_MOVE_SELF | IN_UNMOUNT):
                    if mask & IN_MOVE_SELF:
                        self._forget_tree(d.path)
                    for root, rel in d.rel.items():
                        n = notices.setdefault(root, _Notice())
                        if rel:
                            n.trees.add(rel)
                        else:
                            n.full = True
                continue
            name = os.fsdecode(raw)
            if ignored(name):
                continue
            isdir = mask & IN_ISDIR
            if isdir and mask & (IN_MOVED_FROM | IN_DELETE):
                self._forget_tree(f"{d.path}/{name}")
            for root, rel in list(d.rel.items()):
                child = f"{rel}/{name}" if rel else name
                n = notices.setdefault(root, _Notice())
                n.paths.add(child)
                if isdir:
                    n.trees.add(child)
                    if mask & (IN_CREATE | IN_MOVED_TO):
                        self._add(f"{d.path}/{name}", root, child)
                elif mask & IN_MOVED_TO:
                    n.arrived.add(child)
                elif mask & NOT_ARRIVED:  # written, replaced or gone since it was renamed
                    n.arrived.discard(child)
        if overflow:
            self.log.warn("inotify queue overflowed: rescanning every watched folder")
            for root in self._roots:
                notices.setdefault(root, _Notice()).full = True
        for root, n in notices.items():
            on_change = self._roots.get(root)
            if on_change is None:
                continue
            change = Change(frozenset(n.paths), frozenset(n.trees), n.full, frozenset(n.arrived))
            try:
                on_change(change)
            except Exception:
                self.log.failure("handling a change below {folder} failed", folder=root)


@implementer(IReadDescriptor)
class _InotifyReader:
    """The inotify file descriptor as the reactor sees it."""

    def __init__(self, trigger: ChangeTrigger) -> None:
        self.trigger = trigger

    def fileno(self) -> int:
        """The inotify file descriptor (-1 once closed)."""
        return self.trigger._fd

    def doRead(self) -> None:  # noqa: N802 (Twisted API)
        """Events are waiting."""
        self.trigger.read_events()

    def connectionLost(self, reason: Failure) -> None:  # noqa: N802 (Twisted API)
        """Removed from the reactor: nothing to release here (``stop`` closes the fd)."""

    def logPrefix(self) -> str:  # noqa: N802 (Twisted API)
        """Name in Twisted's logs."""
        return "inotify"
