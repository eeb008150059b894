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
    parents: dict[str, bool | None] = {"": True}
    for rel in trees:
        prefixes.add(rel + "/")
    for rel in set(paths) | set(trees):
        if not rel or any(ignored(part) for part in rel.split("/")):
            continue
        path = os.path.join(folder, rel)
        inside = _under_folders(folder, rel.rpartition("/")[0], parents)
        if inside is None:  # a parent folder could not be looked at: no verdict
            prefixes.discard(rel + "/")
            continue
        if not inside:  # behind a link, or gone: not in incoming
            examined.add(rel)
            continue
        try:
            st = os.lstat(path)
        except (FileNotFoundError, NotADirectoryError):
            examined.add(rel)
            continue
        except OSError:
            prefixes.discard(rel + "/")
            continue
        if stat.S_ISDIR(st.st_mode):
            try:
                _walk(result, rel + "/", path, ignored, accept_hard_links)
            except FileNotFoundError:
                pass  # removed meanwhile: gone
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


def _under_folders(folder: str, parent: str, known: dict[str, bool | None]) -> bool | None:
    """Whether every component of ``parent`` (relative to ``folder``) is a real folder.

    ``lstat`` only leaves the last component alone: a path named again after its folder
    was replaced by a link (to another customer's folder) would be looked at through the
    link.  False: one is a link or missing; None: one could not be looked at.
    """
    if parent in known:
        return known[parent]
    head = parent.rpartition("/")[0]
    verdict = _under_folders(folder, head, known)
    if verdict:
        try:
            verdict = stat.S_ISDIR(os.lstat(os.path.join(folder, parent)).st_mode)
        except (FileNotFoundError, NotADirectoryError):
            verdict = False
        except OSError:
            verdict = None
    known[parent] = verdict
    return verdict


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
) -> None:
    """Add the entries below folder ``path`` (``prefix`` relative); raise if it cannot be listed."""
    dirs = result.dirs
    stack = [(prefix, path)]
    top = True
    while stack:
        prefix, path = stack.pop()
        try:
            entries = list(os.scandir(path))
        except OSError:
            if top:
                raise
            continue  # vanished or unreadable subfolder: skipped
        if not top:
            dirs.append(prefix[:-1])
        top = False
        for entry in entries:
            name = entry.name
            if ignored(name):
                continue
            rel = f"{prefix}{name}"
            try:
                if entry.is_dir(follow_symlinks=False):
                    stack.append((rel + "/", entry.path))
                    continue
                st = entry.stat(follow_symlinks=False)
            except OSError:
                continue  # vanished while we looked: the next scan tells
            _judge(result, rel, st, accept_hard_links)
