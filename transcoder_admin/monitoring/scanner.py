"""The scan of incoming folders: the source of truth about which files are there.

Runs off the reactor thread.  Returns each regular file's signature (inode, size,
mtime in ns); hidden files, partial uploads and files reached through a link that
leaves the roots are skipped.
"""

from __future__ import annotations

import fnmatch
import os
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

Signature = tuple[int, int, int]


def ignore_matcher(patterns: Iterable[str]) -> Callable[[str], bool]:
    """A function telling whether a file name matches one of the ignore patterns."""
    regex = re.compile("|".join(fnmatch.translate(p) for p in patterns) or r"(?!)")
    return lambda name: regex.match(name) is not None


@dataclass
class ScanResult:
    """Files found below one folder, keyed by path relative to it (``/``-separated)."""

    files: dict[str, Signature] = field(default_factory=dict)
    refused: list[str] = field(default_factory=list)
    error: str | None = None


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
    stack = [("", folder)]
    while stack:
        prefix, path = stack.pop()
        try:
            entries = list(os.scandir(path))
        except FileNotFoundError:
            continue
        except OSError as e:
            if not prefix:
                result.error = f"cannot list {folder}: {e.strerror}"
            continue
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
                if entry.is_dir(follow_symlinks=not entry.is_symlink()):
                    stack.append((rel + "/", entry.path))
                    continue
                if not entry.is_file():
                    continue
                st = entry.stat()
            except OSError:
                continue  # vanished while we looked: the next scan tells
            result.files[rel] = (st.st_ino, st.st_size, st.st_mtime_ns)
    return result
