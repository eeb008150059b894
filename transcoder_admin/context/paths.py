"""Virtual paths (``root:/relative/path``), path-safe names and folder templates.

A virtual path names a root and a path inside it; each host maps root names to local
folders.  Nothing computed here may leave its root: templates and file names that would
are refused.
"""

from __future__ import annotations

import bisect
import hashlib
import os
import re
import unicodedata
from collections.abc import Mapping
from typing import TYPE_CHECKING

from ..config.errors import ConfigProblem

if TYPE_CHECKING:
    from ..config.loader import Configuration

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

_UNSAFE = re.compile(r"[^a-z0-9._-]+")
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


def safe_name(name: str) -> str:
    """A lowercased, path-safe folder name: letters, digits, ``.``, ``_`` and ``-``."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    cleaned = _UNSAFE.sub("-", ascii_name.lower()).strip("-.")
    return cleaned or "_"


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


def check_configuration(config: Configuration) -> list[ConfigProblem]:
    """Problems no schema can see: templates, roots that escape, name clashes."""
    from . import StoreContext

    problems: list[ConfigProblem] = []
    roots = config.admin.roots
    if config.admin.manager.connect and config.admin.workers.local:
        problems.append(
            ConfigProblem(
                config.path,
                "workers.local",
                "local workers need the embedded manager: with manager.connect, set it to 0 "
                "and start workers with transcoder-admin worker",
                config.admin.workers.local,
                True,
            )
        )
    for customer_name, customer in config.customers.items():
        path = config.customer_files.get(customer_name, config.path)
        store = StoreContext(config)
        cust = store.customer(customer_name)
        seen_incoming: dict[str, str] = {}
        for profile_name, profile in customer.profiles.items():
            prof = cust.profile(profile_name)
            if profile.backend == "qmaster" and config.admin.qmaster is None:
                problems.append(
                    ConfigProblem(
                        path,
                        f"profiles.{profile_name}.backend",
                        "backend 'qmaster' needs a qmaster section in the admin config "
                        f"({config.path})",
                        "qmaster",
                        True,
                    )
                )
            for key in DEFAULT_FOLDERS:
                where = f"profiles.{profile_name}.{key}"
                try:
                    virtual = prof.folder(key)
                    root, _ = split_virtual(virtual)
                    if root not in roots:
                        problems.append(
                            ConfigProblem(
                                path,
                                where,
                                f"unknown root {root!r}; roots: {', '.join(roots)}",
                                virtual,
                                True,
                            )
                        )
                except (ValueError, PathEscapeError) as e:
                    problems.append(ConfigProblem(path, where, str(e)))
            try:
                incoming = prof.folder("incoming")
                if incoming in seen_incoming:
                    problems.append(
                        ConfigProblem(
                            path,
                            f"profiles.{profile_name}",
                            f"same incoming folder as profile {seen_incoming[incoming]!r}",
                            incoming,
                            True,
                        )
                    )
                seen_incoming[incoming] = profile_name
            except (ValueError, PathEscapeError):
                pass
            subdirs: dict[str, str] = {}
            for target_name in profile.targets:
                targ = prof.target(target_name)
                where = f"profiles.{profile_name}.targets.{target_name}"
                try:
                    targ.check_templates()
                except (ValueError, PathEscapeError) as e:
                    problems.append(ConfigProblem(path, where, str(e)))
                key = f"{targ.subdir}/{targ.extension}"
                if targ.type != "thumbnails" and key in subdirs:
                    problems.append(
                        ConfigProblem(
                            path,
                            where,
                            f"writes the same files as target {subdirs[key]!r} "
                            "(same subdir and extension)",
                        )
                    )
                subdirs[key] = target_name
    problems += _overlapping_folders(config)
    return problems


def _overlapping_folders(config: Configuration) -> list[ConfigProblem]:
    """Incoming folders that hold, or lie in, another folder of the farm.

    Files under an incoming folder are taken: a second incoming folder (another
    customer's with the same subdir, a nested template) would take them twice, and an
    outgoing, done or work folder inside one would feed outputs back in as sources.
    Sorted virtual paths make this O(n log n) for farms of thousands of profiles.
    """
    from . import StoreContext

    store = StoreContext(config)
    owners: dict[str, list[tuple[str, str, str]]] = {}  # folder → (customer, profile, kind)
    for customer_name, customer in config.customers.items():
        cust = store.customer(customer_name)
        for profile_name in customer.profiles:
            prof = cust.profile(profile_name)
            for kind in DEFAULT_FOLDERS:
                try:
                    folder = prof.folder(kind)
                    split_virtual(folder)
                except (ValueError, PathEscapeError):
                    continue  # reported with the customer's file
                owners.setdefault(_as_folder(folder), []).append(
                    (customer_name, profile_name, kind)
                )
    ordered = sorted(owners)
    problems: list[ConfigProblem] = []
    seen: set[frozenset[tuple[str, str, str]]] = set()
    for folder in ordered:
        for owner in owners[folder]:
            if owner[2] != "incoming":
                continue
            around = [a for a in _ancestors(folder) if a in owners]
            for other_folder in [*_inside(ordered, folder), *around]:
                for other in owners[other_folder]:
                    same_customer_twin = other[0] == owner[0] and other_folder == folder
                    pair = frozenset((owner, other))
                    if other == owner or pair in seen or same_customer_twin:
                        continue
                    seen.add(pair)
                    problems.append(
                        ConfigProblem(
                            config.customer_files.get(owner[0], config.path),
                            f"profiles.{owner[1]}.incoming",
                            f"overlaps the {other[2]} folder {other_folder} of "
                            f"{other[0]}/{other[1]}: files there would be taken twice or "
                            "fed back in (give the customer or profile another subdir)",
                            folder,
                            True,
                        )
                    )
    return problems


def _inside(ordered: list[str], folder: str) -> list[str]:
    """The folders of a sorted list at or below ``folder`` (which ends with ``/``)."""
    found = []
    for index in range(bisect.bisect_left(ordered, folder), len(ordered)):
        if not ordered[index].startswith(folder):
            break
        found.append(ordered[index])
    return found


def _as_folder(virtual: str) -> str:
    """A virtual folder in one spelling: ``root:/a/b/``."""
    root, rel = split_virtual(virtual)  # normalized already
    rel = rel.strip("/")
    return f"{root}:/{rel}/" if rel else f"{root}:/"


def _ancestors(folder: str) -> list[str]:
    """The folders that contain ``root:/a/b/``: ``root:/`` and ``root:/a/``."""
    root, rel = folder.split(":/", 1)
    parts = [p for p in rel.split("/") if p]
    return [f"{root}:/" + "".join(f"{p}/" for p in parts[:i]) for i in range(len(parts))]
