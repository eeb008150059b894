"""The scan of incoming folders: the source of truth about which files are there.

Runs off the reactor thread.  Returns each regular file's signature (device, inode,
size, mtime in ns); hidden files and partial uploads are skipped.  Entries that must not
be taken are *refused* with a reason: every symbolic link (whatever it points at, inside
the roots or not, dangling or not: a link would let an uploader hand in a file that is
somewhere else, such as another customer's output) and, unless
``monitoring.accept-hard-links``, a regular file with more than one hard link (the same
danger).  A scan covers a whole folder (:func:`scan_folder`) or, after inotify named
what changed, only some entries of it (:func:`scan_paths`): its ``scope`` then says
what was examined, so that only there an absent file counts as gone.
"""

from __future__ import annotations

import errno
import fnmatch
import os
import re
import stat
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

#: (st_dev, st_ino, st_size, st_mtime_ns): a change of any of them is a change of the file.
Signature = tuple[int, int, int, int]

SYMLINK = "a symbolic link"


def hard_links(count: int) -> str:
    """The reason given for a regular file with ``count`` hard links."""
    return f"a file with {count} hard links"


def ignore_matcher(patterns: Iterable[str]) -> Callable[[str], bool]:
    """A function telling whether a file name matches one of the ignore patterns."""
    regex = re.compile("|".join(fnmatch.translate(p) for p in patterns) or r"(?!)")
    return lambda name: regex.match(name) is not None


def signature(st: os.stat_result) -> Signature:
    """A file's signature from its stat."""
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


@dataclass(frozen=True)
class Refusal:
    """Why an entry of incoming is not taken; ``sig`` is set for a regular file."""

    reason: str
    sig: Signature | None = None


@dataclass(frozen=True)
class Scope:
    """What a partial scan examined: these entries, and everything below these prefixes."""

    paths: frozenset[str] = frozenset()
    prefixes: tuple[str, ...] = ()

    def covers(self, relpath: str) -> bool:
        """Whether this scope examined ``relpath``."""
        return relpath in self.paths or relpath.startswith(self.prefixes)


@dataclass
class ScanResult:
    """Files found below one folder, keyed by path relative to it (``/``-separated)."""

    files: dict[str, Signature] = field(default_factory=dict)
    refused: dict[str, Refusal] = field(default_factory=dict)
    error: str | None = None
    dirs: list[str] = field(default_factory=list)  # subfolders walked, for inotify watches
    scope: Scope | None = None  # None: the whole folder
    # Of the files the scan was asked to check for writers (see writers.py): those that
    # no process on this host has open for writing, and those that one has.
    quiet: set[str] = field(default_factory=set)
    busy: set[str] = field(default_factory=set)


def scan_folder(
    folder: str,
    ignored: Callable[[str], bool],
    create: bool = True,
    *,
    accept_hard_links: bool = False,
) -> ScanResult:
    """Walk ``folder`` recursively; create it when missing (so users see where to drop)."""
    result = ScanResult()
    if create:
        try:
            os.makedirs(folder, exist_ok=True)
        except OSError as e:
            result.error = f"cannot create {folder}: {e.strerror}"
            return result
    try:
        _walk(result, "", folder, ignored, accept_hard_links)
    except FileNotFoundError:
        pass  # removed meanwhile: nothing there
    except OSError as e:
        result.error = f"cannot list {folder}: {e.strerror}"
    return result


def scan_paths(
    folder: str,
    paths: Iterable[str],
    trees: Iterable[str],
    ignored: Callable[[str], bool],
    *,
    accept_hard_links: bool = False,
) -> ScanResult:
    """Examine only ``paths`` below ``folder`` (and everything below ``trees``).

    The same rules as :func:`scan_folder`; a path that is a folder is walked.  The
    result's scope lists what was examined; entries that could not be looked at
    (permissions, I/O errors) are left out of it, so nothing is judged gone on a guess.
    """
    result = ScanResult()
    examined: set[str] = set()
    prefixes: set[str] = set()
    for rel in trees:
        prefixes.add(rel + "/")
    for rel in set(paths) | set(trees):
        if not rel or any(ignored(part) for part in rel.split("/")):
            continue
        try:
            st = _lstat_below(folder, rel)
        except (FileNotFoundError, NotADirectoryError):
            examined.add(rel)  # gone, or behind a link: not in incoming
            continue
        except OSError:
            prefixes.discard(rel + "/")
            continue
        if stat.S_ISDIR(st.st_mode):
            path = os.path.join(folder, rel)
            try:
                _walk(result, rel + "/", path, ignored, accept_hard_links, (st.st_dev, st.st_ino))
            except FileNotFoundError:
                pass  # removed (or replaced) meanwhile: gone
            except OSError:
                prefixes.discard(rel + "/")
                continue
            else:
                result.dirs.append(rel)
            examined.add(rel)
            prefixes.add(rel + "/")
            continue
        examined.add(rel)
        _judge(result, rel, st, accept_hard_links)
    result.scope = Scope(frozenset(examined), tuple(sorted(prefixes)))
    return result


# Folders below the incoming folder are opened without following links, and each is
# checked to be the very folder its parent listed: a folder replaced by a link (to
# another customer's folder) between two steps is never looked into.  The incoming
# folder itself is configuration and may be a link.
_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC
_NOFOLLOW = os.O_NOFOLLOW
_NOT_THERE = (errno.ENOENT, errno.ENOTDIR, errno.ELOOP)


def _lstat_below(folder: str, rel: str) -> os.stat_result:
    """``lstat`` of ``folder/rel`` following no link below ``folder``.

    Raises FileNotFoundError when a component is missing or is not a real folder.
    """
    *parents, name = rel.split("/")
    fd = os.open(folder, _DIR)
    try:
        for part in parents:
            try:
                child = os.open(part, _DIR | _NOFOLLOW, dir_fd=fd)
            except OSError as e:
                if e.errno in _NOT_THERE:
                    raise FileNotFoundError(e.errno, e.strerror, rel) from None
                raise
            os.close(fd)
            fd = child
        return os.stat(name, dir_fd=fd, follow_symlinks=False)
    finally:
        os.close(fd)


def _entries(
    path: str, ident: tuple[int, int] | None, ignored: Callable[[str], bool]
) -> list[tuple[str, os.stat_result]]:
    """(name, lstat) of the entries of folder ``path``, which must be ``ident`` (dev, ino).

    Raises FileNotFoundError when ``path`` is gone or is no longer that folder.
    """
    try:
        fd = os.open(path, _DIR if ident is None else _DIR | _NOFOLLOW)
    except OSError as e:
        if e.errno in _NOT_THERE:
            raise FileNotFoundError(e.errno, e.strerror, path) from None
        raise
    try:
        if ident is not None:
            st = os.fstat(fd)
            if (st.st_dev, st.st_ino) != ident:
                raise FileNotFoundError(errno.ENOENT, "replaced meanwhile", path)
        found = []
        with os.scandir(fd) as it:
            for entry in it:
                if ignored(entry.name):
                    continue
                try:
                    found.append((entry.name, entry.stat(follow_symlinks=False)))
                except OSError:
                    continue  # vanished while we looked: the next scan tells
        return found
    finally:
        os.close(fd)


def _judge(result: ScanResult, rel: str, st: os.stat_result, accept_hard_links: bool) -> None:
    """File an entry that is not a folder by its ``lstat``: taken, refused or left alone."""
    mode = st.st_mode
    if stat.S_ISLNK(mode):
        result.refused[rel] = Refusal(SYMLINK)
    elif stat.S_ISREG(mode):
        if st.st_nlink > 1 and not accept_hard_links:
            result.refused[rel] = Refusal(hard_links(st.st_nlink), signature(st))
        else:
            result.files[rel] = signature(st)
    # sockets, pipes and devices are no uploads: left alone


def _walk(
    result: ScanResult,
    prefix: str,
    path: str,
    ignored: Callable[[str], bool],
    accept_hard_links: bool,
    ident: tuple[int, int] | None = None,
) -> None:
    """Add the entries below folder ``path`` (``prefix`` relative); raise if it cannot be
    listed (FileNotFoundError also when it is no longer the folder ``ident``)."""
    dirs = result.dirs
    stack = [(prefix, path, ident)]
    top = True
    while stack:
        prefix, path, ident = stack.pop()
        try:
            entries = _entries(path, ident, ignored)
        except OSError:
            if top:
                raise
            continue  # vanished, replaced or unreadable subfolder: skipped
        if not top:
            dirs.append(prefix[:-1])
        top = False
        for name, st in entries:
            rel = f"{prefix}{name}"
            if stat.S_ISDIR(st.st_mode):
                stack.append((rel + "/", os.path.join(path, name), (st.st_dev, st.st_ino)))
            else:
                _judge(result, rel, st, accept_hard_links)
