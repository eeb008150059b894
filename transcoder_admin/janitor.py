"""The janitor: removes what restarts and failures leave behind.

- **Orphan components.**  When a worker attaches, the components it reports that no
  task claims (a monitor an earlier admin placed there, or moved away while the worker
  was detached) are stopped.  Each kind of component has one claimer: the monitoring
  part for monitors.  (A job attempt that is no longer current is fenced off at once by
  the worker set, which cancels it before it can move anything.)
- **Failed jobs kept for inspection.**  A worker keeps the work folders of its last
  ``workers.keep-failed`` failed jobs under ``<root>:/.failed/<worker>/<job id>/``
  (with the report as ``report.yaml``) and removes older ones, ordered by when they
  were kept (a stamp, not mtimes or names); the job's report names the folder
  (``kept_for_inspection``) only once the folder is there.  A ``.failed`` that is a
  link is refused: nothing is moved or removed outside the root.
- **Stale work files.**  After an admin (or worker) is killed outright, its jobs'
  processes may still run (they live in their own process groups) and their work
  folders remain.  Each job records the process groups it starts in
  ``<work>/.processes`` (pid and kernel start time, so a reused pid is never killed);
  at start-up the janitor kills those that still run and removes the stale work
  folders.  Sources are never touched: they are still in incoming and are taken again.
"""

from __future__ import annotations

import os
import shutil
import signal
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from twisted.internet import defer, threads
from twisted.logger import Logger

from .reactors import IFarmReactor

PROCESSES_FILE = ".processes"

log = Logger()


def process_start_time(pid: int) -> str | None:
    """The kernel start time of a process (field 22 of /proc/PID/stat), or None."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            stat = f.read()
    except OSError:
        return None
    # The command name (field 2) may contain spaces and parentheses: split after it.
    fields = stat.rsplit(")", 1)[-1].split()
    return fields[19] if len(fields) > 19 else None


def record_process(work_dir: str, pid: int) -> None:
    """Remember a process group a job started, for the janitor after a crash."""
    start = process_start_time(pid)
    if start is None:
        return
    with open(os.path.join(work_dir, PROCESSES_FILE), "a", encoding="ascii") as f:
        f.write(f"{pid} {start}\n")


def kill_recorded(work_dir: str) -> int:
    """Kill the recorded process groups that still run; returns how many were killed."""
    try:
        with open(os.path.join(work_dir, PROCESSES_FILE), encoding="ascii") as f:
            lines = f.read().split("\n")
    except OSError:
        return 0
    killed = 0
    for line in lines:
        parts = line.split()
        if len(parts) != 2 or not parts[0].isdigit():
            continue
        pid = int(parts[0])
        if process_start_time(pid) == parts[1]:
            try:
                os.killpg(pid, signal.SIGKILL)
                killed += 1
            except OSError:
                pass
    return killed


def clean_work_folder(path: str) -> int:
    """Kill a job folder's leftover process groups and remove it; how many were killed."""
    if not os.path.isdir(path):
        return 0
    killed = kill_recorded(path)
    shutil.rmtree(path, ignore_errors=True)
    log.info(
        "janitor: removed stale work folder {path} (killed {killed} process groups)",
        path=path,
        killed=killed,
    )
    return killed


def clean_work_folders(folders: Iterable[str], keep: Iterable[str] = ()) -> list[str]:
    """Kill leftover processes and remove stale job folders (run off the reactor)."""
    keep_set = set(keep)
    removed = []
    for folder in folders:
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        for entry in entries:
            if entry.name in keep_set or not entry.is_dir(follow_symlinks=False):
                continue
            clean_work_folder(entry.path)
            removed.append(entry.path)
    return removed


# -- failed jobs kept for inspection (the worker's side) --------------------------------

#: Where a worker keeps failed jobs' work folders, in the root of their work folder.
KEPT_FOLDER = ".failed"
#: In each kept folder: when it was kept (ns), which orders them; and the job's report.
KEPT_STAMP = ".kept"
KEPT_REPORT = "report.yaml"

#: One keep or prune at a time in this process: jobs commit in several threads.
_keep_lock = threading.Lock()
_last_stamp = 0
_keep_seq = 0


def kept_path(work: str, worker: str, job_id: str) -> str:
    """The virtual folder that keeps a failed job's work files: ``root:/.failed/W/JOB``."""
    root = work.split(":", 1)[0]
    return f"{root}:/{KEPT_FOLDER}/{worker}/{job_id}"


@dataclass(frozen=True)
class KeptSnapshot:
    """The failed jobs kept in one folder, as of one keep (``seq`` orders snapshots)."""

    seq: int
    parent: str  # virtual: root:/.failed/worker
    entries: tuple[dict[str, Any], ...]  # oldest first


def _parent_is_safe(root_dir: str, parent: str) -> bool:
    """``root/.failed/worker`` holds no link that could lead out of the root."""
    node = os.path.join(root_dir, KEPT_FOLDER)
    for path in (node, parent):
        if os.path.islink(path):
            return False
    real_root = os.path.realpath(root_dir).rstrip("/") + "/"
    return not os.path.exists(parent) or os.path.realpath(parent).startswith(real_root)


def keep_failed_folder(work_dir: str, root_dir: str, worker: str, job_id: str) -> bool:
    """Move a failed job's work folder to ``root/.failed/worker/job_id``; whether it moved.

    Runs off the reactor.  Anything in the way (a link, another file system, no
    permission) is logged and the work folder stays where it is (the caller removes it).
    """
    global _last_stamp
    parent = os.path.join(root_dir, KEPT_FOLDER, worker)
    kept = os.path.join(parent, job_id)
    with _keep_lock:
        try:
            if not _parent_is_safe(root_dir, parent):
                raise OSError(f"{parent} or {KEPT_FOLDER} is a link: refused")
            os.makedirs(parent, 0o755, exist_ok=True)
            if os.path.lexists(kept):
                shutil.rmtree(kept, ignore_errors=True)
            os.rename(work_dir, kept)
        except OSError as e:
            log.warn(
                "janitor: cannot keep {work} for inspection: {error}",
                work=work_dir,
                error=e.strerror or e,
            )
            return False
        # Newer than every folder kept before, even after a restart and a clock step.
        newest = max((stamp for stamp, _name in _stamped(parent)), default=0)
        _last_stamp = max(_last_stamp + 1, newest + 1, time.time_ns())
        try:
            with open(os.path.join(kept, KEPT_STAMP), "w", encoding="ascii") as f:
                f.write(f"{_last_stamp}\n")
        except OSError as e:  # kept all the same; without a stamp it counts as oldest
            log.warn("janitor: cannot stamp {kept}: {error}", kept=kept, error=e.strerror or e)
        return True


def prune_kept(root: str, root_dir: str, worker: str, keep: int) -> KeptSnapshot:
    """Remove all but the newest ``keep`` kept folders of a worker in one root.

    Returns what remains, with each job's reason from its kept report.  Off the reactor.
    """
    global _keep_seq
    parent = os.path.join(root_dir, KEPT_FOLDER, worker)
    virtual = f"{root}:/{KEPT_FOLDER}/{worker}"
    with _keep_lock:
        _keep_seq += 1
        names = _kept_in(root_dir, parent)
        cut = max(0, len(names) - keep)
        for name in names[:cut]:
            shutil.rmtree(os.path.join(parent, name), ignore_errors=True)
            log.info(
                "janitor: removed failed job {job_id} kept in {parent} (keeping {keep})",
                job_id=name,
                parent=parent,
                keep=keep,
            )
        entries = tuple(_kept_entry(parent, virtual, name) for name in names[cut:])
        return KeptSnapshot(_keep_seq, virtual, entries)


def list_kept(roots: dict[str, str], worker: str) -> list[KeptSnapshot]:
    """The kept failed jobs of a worker in every root (as of sequence 0: the oldest news)."""
    found = []
    for root, local in sorted(roots.items()):
        parent = os.path.join(local, KEPT_FOLDER, worker)
        virtual = f"{root}:/{KEPT_FOLDER}/{worker}"
        names = _kept_in(local, parent)
        entries = tuple(_kept_entry(parent, virtual, name) for name in names)
        found.append(KeptSnapshot(0, virtual, entries))
    return found


def _kept_in(root_dir: str, parent: str) -> list[str]:
    """The kept folders in ``parent``, oldest first (by their keeping stamp)."""
    if not os.path.isdir(parent) or not _parent_is_safe(root_dir, parent):
        return []
    return [name for _stamp, name in sorted(_stamped(parent))]


def _stamped(parent: str) -> list[tuple[int, str]]:
    """(keeping stamp, name) of each kept folder in ``parent``."""
    try:
        entries = list(os.scandir(parent))
    except OSError:
        return []
    stamped = []
    for entry in entries:
        try:
            if not entry.is_dir(follow_symlinks=False):
                continue
            with open(os.path.join(entry.path, KEPT_STAMP), encoding="ascii") as f:
                stamp = int(f.read().strip() or 0)
        except (OSError, ValueError):
            stamp = 0  # vanished meanwhile, or kept by an earlier version: oldest
        stamped.append((stamp, entry.name))
    return stamped


def _kept_entry(parent: str, virtual: str, job_id: str) -> dict[str, Any]:
    """What a worker reports of a failed job it keeps: where, why, which file."""
    from .reports.files import read_report

    try:
        report = read_report(os.path.join(parent, job_id, KEPT_REPORT))
    except (OSError, ValueError):
        report = {}
    failure = report.get("failure")
    return {
        "job_id": job_id,
        "path": f"{virtual}/{job_id}",
        "reason": failure.get("reason") if isinstance(failure, dict) else None,
        "attempt": report.get("attempt"),
        "key": [report.get(k) for k in ("customer", "profile", "relpath")],
    }


# -- the admin's janitor ------------------------------------------------------------------


class Janitor:
    """The admin's janitor: stops orphan components, removes stale work folders."""

    log = Logger()

    def __init__(self, components: Any, reactor: IFarmReactor) -> None:
        self.components = components  # proxy.components.ComponentSet
        self.reactor = reactor
        self._claims: dict[str, Callable[[Any], bool]] = {}
        self._subscription = components.worker_attached.subscribe(self._worker_attached)

    def claim(self, kind: str, claims: Callable[[Any], bool]) -> None:
        """``claims(component)`` says whether some task wants a component of ``kind``.

        Kinds without a claimer are left alone.
        """
        self._claims[kind] = claims

    def _worker_attached(self, item: tuple[str, list[Any]]) -> None:
        # Judge once every part has heard of the worker (and placed what it wants there).
        self.reactor.callLater(0, self.sweep, item[0])

    def sweep(self, worker: str | None = None) -> list[Any]:
        """Stop the components (of one worker) that no task claims; returns them."""
        components = self.components if worker is None else self.components.on_worker(worker)
        orphans = []
        for component in list(components):
            claims = self._claims.get(component.kind)
            if claims is None or component.state == "failed" or claims(component):
                continue
            orphans.append(component)
            self.log.info(
                "janitor: {kind} {name} on {worker} is claimed by no task: stopped",
                kind=component.kind,
                name=component.name,
                worker=component.worker,
            )
            self.components.stop(component).addErrback(
                lambda f, c=component: self.log.warn(
                    "janitor: cannot stop {id}: {error}", id=c.id, error=f.getErrorMessage()
                )
            )
        return orphans

    def remove_stale_work(
        self, folders: Iterable[str], keep: Iterable[str]
    ) -> defer.Deferred[list[str]]:
        """Remove job folders in ``folders`` but ``keep`` (and kill their leftovers)."""
        return threads.deferToThreadPool(
            self.reactor,
            self.reactor.getThreadPool(),
            clean_work_folders,
            sorted(folders),
            sorted(keep),
        )

    def stop(self) -> None:
        """Stop following the workers."""
        self._subscription.unsubscribe()
