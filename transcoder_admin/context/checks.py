"""Checks of a whole configuration that no schema can see: templates, roots, clashes.

They need the computed folders of every profile, so they live above ``config``:
:func:`load_configuration` is the config loader plus these checks.
"""

from __future__ import annotations

import bisect

from ..config.errors import ConfigProblem
from ..config.loader import Configuration, read_configuration
from .customers import StoreContext
from .paths import DEFAULT_FOLDERS, PathEscapeError, split_virtual


def load_configuration(path: str) -> Configuration:
    """Load the admin config and all customers and check them; one ConfigError for all."""
    return read_configuration(path, check_configuration)


def check_configuration(config: Configuration) -> list[ConfigProblem]:
    """Problems no schema can see: templates, roots that escape, name clashes."""
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
