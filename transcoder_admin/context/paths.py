"""Virtual paths (``root:/relative/path``), path-safe names and folder templates.

A virtual path names a root and a path inside it; each host maps root names to local
folders.  Nothing computed here may leave its root: templates and file names that would
are refused.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Mapping

DEFAULT_FOLDERS = {
    "incoming": "default:/%(customer)s/files/incoming/%(profile)s/",
    "outgoing": "default:/%(customer)s/files/outgoing/%(profile)s/",
    "done": "default:/%(customer)s/files/done/%(profile)s/",
    "failed": "default:/%(customer)s/files/failed/%(profile)s/",
    "links": "default:/%(customer)s/files/links/%(profile)s/",
    "work": "temp:/%(customer)s/work/%(profile)s/",
    "config": "default:/%(customer)s/configs/%(profile)s/",
    "done-reports": "default:/%(customer)s/reports/done/%(profile)s/",
    "failed-reports": "default:/%(customer)s/reports/failed/%(profile)s/",
}
DEFAULT_OUTPUT_FILE = "%(stem)s.%(extension)s"
DEFAULT_THUMBNAIL_FILE = "%(stem)s.%(index)d.%(extension)s"
DEFAULT_REPORT_FILE = "%(name)s.%(job)s.yaml"

_VIRTUAL = re.compile(r"^([A-Za-z0-9_-]+):(/.*)$", re.DOTALL)


#: A file name's limit in bytes where the file system does not say (Linux, most file systems).
NAME_MAX = 255
#: Hex digits of the hash that keeps shortened names distinct.
NAME_HASH = 8
#: The longest "extension" a shortened name keeps (longer ones are part of the stem).
_KEPT_EXTENSION = 32


class PathEscapeError(ValueError):
    """A path would resolve outside its configured root."""


def name_bytes(name: str) -> int:
    """The length of a file name in bytes, as the file system counts it."""
    return len(os.fsencode(name))


def fit_name(name: str, limit: int = NAME_MAX, tail: str | None = None) -> str:
    """``name`` itself if it fits in ``limit`` bytes, else a shortened, distinct form.

    The stem is cut on a character boundary and ``~`` plus a short hash of the whole
    name is added, so that two long names that share a beginning stay distinct; the
    ``tail`` (default: the extension, as ``.mp4``) is kept as it is.
    """
    if name_bytes(name) <= limit:
        return name
    if tail is None or not name.endswith(tail) or tail == name:
        stem, dot, ext = name.rpartition(".")
        tail = f".{ext}" if dot and stem and name_bytes(ext) < _KEPT_EXTENSION else ""
    stem = name[: len(name) - len(tail)] if tail else name
    digest = hashlib.sha256(os.fsencode(name)).hexdigest()[:NAME_HASH]
    budget = limit - name_bytes(tail) - NAME_HASH - 1
    if budget < 1:
        raise PathEscapeError(f"a name ending {tail!r} cannot fit in {limit} bytes")
    kept, used = [], 0
    for char in stem:
        size = name_bytes(char)
        if used + size > budget:
            break
        kept.append(char)
        used += size
    return "".join(kept) + "~" + digest + tail


def split_virtual(virtual: str) -> tuple[str, str]:
    """``root:/a/b`` → ``("root", "a/b")``, refusing ``..`` that climbs out of the root."""
    match = _VIRTUAL.match(virtual)
    if not match:
        raise ValueError(f"{virtual!r} is not a virtual path (expected root:/path)")
    root, rel = match.group(1), match.group(2)
    if "\x00" in rel:
        raise PathEscapeError(f"{virtual!r} contains a NUL byte")
    normalized = os.path.normpath("/" + rel.lstrip("/"))
    parts = [p for p in rel.split("/") if p not in ("", ".")]
    depth = 0
    for part in parts:
        depth += -1 if part == ".." else 1
        if depth < 0:
            raise PathEscapeError(f"{virtual!r} leaves its root {root!r}")
    return root, normalized.lstrip("/")


def join_virtual(folder: str, *names: str) -> str:
    """A virtual path below ``folder``; each name must stay inside it."""
    root, rel = split_virtual(folder)
    for name in names:
        if not name:
            continue
        for part in name.split("/"):
            if part in ("..",) or "\x00" in part:
                raise PathEscapeError(f"{name!r} would leave {folder!r}")
    joined = "/".join([rel] + [n.strip("/") for n in names if n and n.strip("/")]).strip("/")
    return f"{root}:/{joined}"


class Roots:
    """Root name → local folder on this host; turns virtual paths into local ones."""

    def __init__(self, mapping: Mapping[str, str]) -> None:
        self.mapping = {name: os.path.abspath(path) for name, path in mapping.items()}

    def local(self, virtual: str) -> str:
        """The local path of a virtual path; raises PathEscapeError if it would escape."""
        root, rel = split_virtual(virtual)
        try:
            base = self.mapping[root]
        except KeyError:
            raise PathEscapeError(f"{virtual!r} names an unknown root {root!r}") from None
        path = os.path.normpath(os.path.join(base, rel)) if rel else base
        if path != base and not path.startswith(base.rstrip("/") + "/"):
            raise PathEscapeError(f"{virtual!r} leaves its root {root!r}")
        return path


def expand(template: str, variables: Mapping[str, object]) -> str:
    """Expand a ``%(name)s`` template; raise ValueError naming an unknown variable."""
    try:
        return template % variables
    except KeyError as e:
        allowed = ", ".join(sorted(variables))
        raise ValueError(f"unknown template variable {e.args[0]!r}; allowed: {allowed}") from None
    except (TypeError, ValueError) as e:
        raise ValueError(f"bad template {template!r}: {e}") from None
