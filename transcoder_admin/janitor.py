"""The janitor: removes what a crash left behind.

After an admin (or worker) is killed outright, its jobs' processes may still run (they
live in their own process groups) and their work folders remain.  Each job records the
process groups it starts in ``<work>/.processes`` (pid and kernel start time, so a
reused pid is never killed); at start-up the janitor kills those that still run and
removes the stale work folders.  Sources are never touched: they are still in incoming
and are taken again.
"""

from __future__ import annotations

import os
import shutil
import signal
from collections.abc import Iterable

from twisted.logger import Logger

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
