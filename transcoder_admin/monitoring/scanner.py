"""The scan of incoming folders: the source of truth about which files are there.

Runs off the reactor thread.  Returns each regular file's signature (inode, size,
mtime in ns); hidden files, partial uploads and files reached through a link that
leaves the roots are skipped.  A scan covers a whole folder (:func:`scan_folder`) or,
after inotify named what changed, only some entries of it (:func:`scan_paths`): its
``scope`` then says what was examined, so that only there an absent file counts as gone.
"""

from __future__ import annotations

import fnmatch
import os
import re
import stat
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

Signature = tuple[int, int, int]


def ignore_matcher(patterns: Iterable[str]) -> Callable[[str], bool]:
    """A function telling whether a file name matches one of the ignore patterns."""
    regex = re.compile("|".join(fnmatch.translate(p) for p in patterns) or r"(?!)")
    return lambda name: regex.match(name) is not None


@dataclass(frozen=True)
class Scope:
    """What a partial scan examined: these entries, and everything below these prefixes."""

    paths: frozenset[str] = frozenset()
    prefixes: tuple[str, ...] = ()


@dataclass
class ScanResult:
    """Files found below one folder, keyed by path relative to it (``/``-separated)."""

    files: dict[str, Signature] = field(default_factory=dict)
    refused: list[str] = field(default_factory=list)
    error: str | None = None
    dirs: list[str] = field(default_factory=list)  # subfolders walked, for inotify watches
    scope: Scope | None = None  # None: the whole folder


def scan_folder(
    folder: str,
    ignored: Callable[[str], bool],
    inside_roots: Callable[[str], bool] | None = None,
    create: bool = True,
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
        _walk(result, "", folder, ignored, inside_roots)
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
    inside_roots: Callable[[str], bool] | None = None,
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
        path = os.path.join(folder, rel)
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
                _walk(result, rel + "/", path, ignored, inside_roots)
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
        if stat.S_ISLNK(st.st_mode):
            if inside_roots is None or not inside_roots(path):
                result.refused.append(rel)
                continue
            try:
                st = os.stat(path)
            except OSError:
                continue  # dangling: not a file
        if stat.S_ISREG(st.st_mode):
            result.files[rel] = (st.st_ino, st.st_size, st.st_mtime_ns)
    result.scope = Scope(frozenset(examined), tuple(sorted(prefixes)))
    return result


def _walk(
    result: ScanResult,
    prefix: str,
    path: str,
    ignored: Callable[[str], bool],
    inside_roots: Callable[[str], bool] | None,
) -> None:
    """Add the files below folder ``path`` (``prefix`` relative); raise if it cannot be listed."""
    files, dirs = result.files, result.dirs
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
                if entry.is_symlink():
                    if inside_roots is None or not inside_roots(entry.path):
                        result.refused.append(rel)
                        continue
                    if not entry.is_file():
                        continue  # links to folders are not followed
                    st = entry.stat()
                elif entry.is_dir(follow_symlinks=False):
                    stack.append((rel + "/", entry.path))
                    continue
                elif entry.is_file(follow_symlinks=False):
                    st = entry.stat(follow_symlinks=False)
                else:
                    continue
            except OSError:
                continue  # vanished while we looked: the next scan tells
            files[rel] = (st.st_ino, st.st_size, st.st_mtime_ns)
