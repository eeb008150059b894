"""Committing a job's files: each step checked, and undone if a later one fails.

Runs in a thread.  A commit moves the outputs into outgoing, writes the report and
moves the source to done or failed, last; every step records how to take it back, so
that a failure at any step leaves no output in outgoing, no report file and the source
in incoming, and the reason names the step and the path.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from typing import Any

from ..context.paths import PathEscapeError, Roots
from ..prognosis import SOURCE, JobFailure
from ..records import JobSpec
from ..reports.files import write_report
from .safefs import (
    Folders,
    describe,
    existing,
    fit_in,
    folder_lock,
    keep_earlier,
    link_aside,
    move_file,
    owner_of,
    temporary_name,
)

#: What a commit did, as actions that take it back (run newest first).
Undo = list[Callable[[], None]]


class CommitFailed(Exception):
    """A step of a commit failed; the message names the step and the path."""


def step_error(what: str, path: str, error: OSError | PathEscapeError) -> CommitFailed:
    """``cannot <what> <path>: <why>`` (a link, a file where a folder is needed, ENOSPC…)."""
    why = describe(error) if isinstance(error, OSError) else str(error)
    return CommitFailed(f"cannot {what} {path}: {why}")


class SourceNotFailed(Exception):
    """The source of a dead job could not be failed; the message names the step and path."""


def fail_source(roots: Roots, spec: JobSpec, report: dict[str, Any]) -> dict[str, Any]:
    """Write a failure report and move the source to failed (run off the reactor).

    Raise :class:`SourceNotFailed` naming the step and the path when either cannot be
    done; then nothing is left half done (no report without its source in failed).
    """
    folders = Folders(roots)
    undo: Undo = []
    try:
        write_committed_report(folders, roots.local(spec.report_failed), report, undo)
        source = roots.local(spec.source)
        if os.path.lexists(source):
            move_source(folders, source, roots.local(spec.failed), "failed", undo)
        folders.sync()
    except CommitFailed as e:
        run_undo(undo)
        raise SourceNotFailed(str(e)) from None
    finally:
        folders.close()
    return report


def move_into(src: str, dest: str, tag: str = "") -> None:
    """Move ``src`` to ``dest`` (its folder made), even across file systems, replacing it.

    For callers without roots (the benchmarks' null worker); jobs use :mod:`.commit`.
    """
    folder = os.path.dirname(dest)
    os.makedirs(folder, exist_ok=True)
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        move_file(src, fd, os.path.basename(dest))
    finally:
        os.close(fd)


def run_undo(undo: Undo) -> None:
    """Take back what a failed commit did, newest first (best effort)."""
    for action in reversed(undo):
        with contextlib.suppress(OSError):
            action()
    undo.clear()


def write_committed_report(folders: Folders, path: str, report: dict[str, Any], undo: Undo) -> None:
    """Write the report file (no link followed, name fitted); undo removes it."""
    folder = os.path.dirname(path)
    try:
        fd = folders.open(folder)
        name = fit_in(fd, os.path.basename(path), f".{report.get('job_id')}.yaml")
        if name != os.path.basename(path):
            path = os.path.join(folder, name)
            report["report_path"] = sibling(report["report_path"], name)
        report["committed"] = True
        undo.append(lambda: report.update(committed=False))
        write_report(path, report, folder_fd=fd, sync_folder=False)  # folders.sync() does
    except (OSError, PathEscapeError) as e:
        raise step_error("write the report", path, e) from None
    undo.append(lambda: os.unlink(name, dir_fd=fd))
    folders.changed(folder)


def sibling(virtual: str, name: str) -> str:
    """A virtual path with its last component replaced."""
    return virtual.rsplit("/", 1)[0] + "/" + name


def move_source(folders: Folders, source: str, dest: str, kind: str, undo: Undo) -> None:
    """Move the source to done or failed, last; an earlier file there is kept as name.N.ext."""
    folder = os.path.dirname(dest)
    try:
        fd = folders.open(folder)
        name = fit_in(fd, os.path.basename(dest))
        dest = os.path.join(folder, name)
        aside = keep_earlier(fd, name) if existing(fd, name, dest) is not None else None
    except (OSError, PathEscapeError) as e:
        raise step_error(f"move the source to {kind}", dest, e) from None
    try:
        move_file(source, fd, name)
    except OSError as e:
        if aside is not None:
            with contextlib.suppress(OSError):
                if existing(fd, name, dest) is None:
                    os.rename(aside, name, src_dir_fd=fd, dst_dir_fd=fd)
                else:
                    os.unlink(aside, dir_fd=fd)
        raise step_error(f"move the source to {kind}", dest, e) from None
    folders.changed(folder)


def place_outputs(
    outputs: list[tuple[str, str]],
    owner: str,
    folders: Folders,
    undo: Undo,
    finish: Undo,
    delivered_before: bool = False,
) -> tuple[JobFailure | None, dict[str, str]]:
    """Move every (work, final) output into outgoing, all or nothing.

    Under each output folder's lock: an existing output made from another source than
    ``owner`` (or from none known) is never replaced, and the clash is returned as a
    source failure with nothing moved; one made from this same source (a re-delivery)
    is replaced, and restored if the commit is undone (``finish`` forgets it once the
    commit is through).  Also returned: the outputs whose names were shortened for their
    folder's own limit (old name → new name).

    ``delivered_before``: this source's name is in done already, so an output made
    from no known source is taken for its own (outputs made before owners were
    recorded); without it such an output is a clash.
    """
    planned: list[tuple[str, str, int, str, str]] = []  # work, folder, fd, name, shown
    for work, final in outputs:
        folder = os.path.dirname(final)
        try:
            fd = folders.open(folder)
            name = fit_in(fd, os.path.basename(final))
        except (OSError, PathEscapeError) as e:
            raise step_error("move an output to outgoing", final, e) from None
        planned.append((work, folder, fd, name, os.path.join(folder, name)))
    with contextlib.ExitStack() as locks:
        for folder in sorted({p[1] for p in planned}):
            try:
                locks.enter_context(folder_lock(folders.open(folder), folder))
            except OSError as e:
                raise step_error("lock the output folder", folder, e) from None
        replacing: set[str] = set()
        for _work, _folder, fd, name, shown in planned:
            try:
                if existing(fd, name, shown) is None:
                    continue
                other = owner_of(fd, name)
            except OSError as e:
                raise step_error("move an output to outgoing", shown, e) from None
            if other != owner and not (other is None and delivered_before):
                made = f"made from {other}" if other else "made from no known source"
                clash = JobFailure(
                    SOURCE,
                    f"output {shown} clashes with an existing file there, {made}: "
                    "give the target an output file template that tells them apart",
                )
                return clash, {}
            replacing.add(shown)
        for work, folder, fd, name, shown in planned:
            _place_one(work, fd, name, shown, owner, shown in replacing, undo, finish)
            folders.changed(folder)
    renamed = {
        os.path.basename(final): name
        for (_w, final), (_w2, _f, _fd, name, _s) in zip(outputs, planned, strict=True)
        if os.path.basename(final) != name
    }
    return None, renamed


def _place_one(
    work: str,
    fd: int,
    name: str,
    shown: str,
    owner: str,
    replacing: bool,
    undo: Undo,
    finish: Undo,
) -> None:
    """Move one output into place; undo removes it (and restores the one it replaced)."""
    try:
        if replacing:
            backup = temporary_name("earlier")
            link_aside(fd, name, backup)
            undo.append(lambda: os.replace(backup, name, src_dir_fd=fd, dst_dir_fd=fd))
            finish.append(lambda: os.unlink(backup, dir_fd=fd))
        move_file(work, fd, name, owner=owner)
    except OSError as e:
        raise step_error("move an output to outgoing", shown, e) from None
    if not replacing:
        placed = os.stat(name, dir_fd=fd, follow_symlinks=False)

        def remove() -> None:
            # Only the file this commit placed: never one that took its name since.
            now = os.stat(name, dir_fd=fd, follow_symlinks=False)
            if (now.st_dev, now.st_ino) == (placed.st_dev, placed.st_ino):
                os.unlink(name, dir_fd=fd)

        undo.append(remove)


def rename_outputs(target_results: list[dict[str, Any]], renamed: dict[str, str]) -> None:
    """List outputs shortened for their folder's own name limit under their new names."""
    if not renamed:
        return
    for result in target_results:
        result["outputs"] = [
            sibling(v, renamed.get(v.rsplit("/", 1)[-1], v.rsplit("/", 1)[-1]))
            for v in result["outputs"]
        ]
