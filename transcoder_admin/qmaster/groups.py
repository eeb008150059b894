"""Process groups: every command runs as the leader of a group of its own.

A timeout kills the whole group with SIGKILL, so nothing a hung Compressor started
lives on. (A program that starts a new session of its own leaves the group; the
emulator and Apple's tools do not.)
"""

from __future__ import annotations

import os
import signal


def kill_group(pgid: int | None) -> None:
    """SIGKILL every process of group ``pgid``; a group already gone is fine."""
    if not pgid or pgid <= 1:
        return
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def group_members(pgid: int) -> list[int]:
    """The live processes of group ``pgid`` (zombies excluded; Linux /proc only)."""
    members = []
    try:
        names = os.listdir("/proc")
    except OSError:
        return []
    for name in names:
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                stat = f.read().decode("utf-8", "replace")
        except OSError:
            continue
        # pid (comm) state ppid pgrp ...; comm may hold spaces and parentheses.
        fields = stat[stat.rfind(")") + 2 :].split()
        if len(fields) >= 3 and fields[0] != "Z" and int(fields[2]) == pgid:
            members.append(int(name))
    return members


def alive(pid: int) -> bool:
    """True when ``pid`` runs and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read().decode("utf-8", "replace")
    except OSError:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    return stat[stat.rfind(")") + 2 :].split()[:1] != ["Z"]


__all__ = ["alive", "group_members", "kill_group"]
