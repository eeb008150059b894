"""The Compressor / Batch Monitor emulator and a helper to set it up in a test folder.

``Emulator(folder)`` makes a home for the emulator's state and two executables named
``Compressor`` and ``Batch Monitor`` in a folder with a space in its name. They are
small ``sh`` wrappers that run ``emulator.py`` with this interpreter (sys.executable),
so they work on a fresh clone whatever ``python3`` is on PATH; the shipped
``Compressor`` and ``Batch Monitor`` scripts beside this file run it directly with
``#!/usr/bin/env python3``.
"""

from __future__ import annotations

import json
import os
import shlex
import sys
from typing import Any

from transcoder_admin.media import find_ffmpeg
from transcoder_admin.qmaster import QmasterSettings
from transcoder_admin.qmaster.groups import alive, group_members

from .emulator import FFMPEG_ENV, HOME_ENV, KNOBS

HERE = os.path.dirname(os.path.abspath(__file__))
EMULATOR = os.path.join(HERE, "emulator.py")
COMPRESSOR_SCRIPT = os.path.join(HERE, "Compressor")
BATCH_MONITOR_SCRIPT = os.path.join(HERE, "Batch Monitor")

# Short enough for fast tests, long enough for a loaded CI machine.
FAST = {
    "submission_timeout": 10.0,
    "status_timeout": 10.0,
    "poll_interval": 0.05,
    "status_grace": 5.0,
}


class Emulator:
    """One emulated Qmaster in ``folder``: knobs, executables, records."""

    def __init__(self, folder: str, **knobs: Any) -> None:
        self.home = os.path.join(folder, "emulator home")
        self.bin = os.path.join(folder, "Qmaster Tools")
        os.makedirs(self.home, exist_ok=True)
        os.makedirs(self.bin, exist_ok=True)
        self.compressor = self._wrapper("Compressor", "compressor")
        self.batch_monitor = self._wrapper("Batch Monitor", "batch-monitor")
        self.env = {
            **os.environ,
            HOME_ENV: self.home,
            FFMPEG_ENV: find_ffmpeg(),
            "SVT_LOG": "1",
        }
        self.configure(**knobs)

    def _wrapper(self, name: str, tool: str) -> str:
        path = os.path.join(self.bin, name)
        with open(path, "w", encoding="utf-8") as f:
            f.write(
                "#!/bin/sh\n"
                f'exec {shlex.quote(sys.executable)} {shlex.quote(EMULATOR)} {tool} "$@"\n'
            )
        os.chmod(path, 0o755)
        return path

    def configure(self, **knobs: Any) -> None:
        """Set knobs (see emulator.KNOBS); others keep their current values."""
        unknown = set(knobs) - set(KNOBS)
        if unknown:
            raise ValueError(f"unknown emulator knobs: {sorted(unknown)}")
        current = self.knobs()
        current.update(knobs)
        with open(os.path.join(self.home, "config.json"), "w", encoding="utf-8") as f:
            json.dump(current, f)

    def knobs(self) -> dict[str, Any]:
        """The knobs set so far (defaults not included)."""
        try:
            with open(os.path.join(self.home, "config.json"), encoding="utf-8") as f:
                return dict(json.load(f))
        except FileNotFoundError:
            return {}

    def settings(self, **changes: Any) -> QmasterSettings:
        """Client settings that use this emulator, with fast timeouts."""
        values: dict[str, Any] = {
            "compressor": self.compressor,
            "batch_monitor": self.batch_monitor,
            **FAST,
        }
        values.update(changes)
        return QmasterSettings(**values)

    def _records(self, name: str) -> list[dict[str, Any]]:
        try:
            with open(os.path.join(self.home, name), encoding="utf-8") as f:
                return [json.loads(line) for line in f if line.strip()]
        except FileNotFoundError:
            return []

    def calls(self, tool: str | None = None) -> list[list[str]]:
        """The argv (after the program) of every call, oldest first."""
        return [r["argv"] for r in self._records("calls.jsonl") if tool in (None, r["tool"])]

    def call_records(self) -> list[dict[str, Any]]:
        """Every call: tool, argv, pid, process group and session."""
        return self._records("calls.jsonl")

    def hung(self) -> list[dict[str, Any]]:
        """Every process that hung on purpose: pid, its child, its process group."""
        return self._records("pids.jsonl")

    def leftovers(self) -> list[int]:
        """Live processes of any call's process group, or of a hung command (expect none)."""
        pids: set[int] = set()
        for record in self.hung():
            pids.update(p for p in (record["pid"], record["child"]) if alive(p))
        for pgid in {r["pgid"] for r in [*self.hung(), *self.call_records()]}:
            if pgid != os.getpgid(0):  # never count the test runner's own group
                pids.update(group_members(pgid))
        return sorted(pids)

    def batch(self, batch_id: str) -> dict[str, Any]:
        """The emulator's record of one batch."""
        with open(os.path.join(self.home, "batches", batch_id + ".json"), encoding="utf-8") as f:
            return dict(json.load(f))

    def batches(self) -> list[str]:
        """Ids of every batch submitted."""
        folder = os.path.join(self.home, "batches")
        return sorted(n[:-5] for n in os.listdir(folder) if n.endswith(".json"))


def write_setting(path: str, ffmpeg_args: list[str] | None = None) -> str:
    """A Compressor setting file the emulator understands (its ffmpeg arguments)."""
    with open(path, "w", encoding="utf-8") as f:
        json.dump({"ffmpeg": ffmpeg_args} if ffmpeg_args else {"name": "H.264 small"}, f)
    return path


def wait_until_gone(pids_of: Any, timeout: float = 10.0) -> list[int]:
    """Poll ``pids_of()`` until it is empty or ``timeout`` passes; what is left."""
    import time

    deadline = time.monotonic() + timeout
    left = pids_of()
    while left and time.monotonic() < deadline:
        time.sleep(0.05)
        left = pids_of()
    return list(left)


__all__ = [
    "BATCH_MONITOR_SCRIPT",
    "COMPRESSOR_SCRIPT",
    "EMULATOR",
    "Emulator",
    "wait_until_gone",
    "write_setting",
]
