"""The journal of running jobs: what the admin must not forget when it is killed.

One JSON line when a job starts (job id, file, attempt, worker) and one when it ends.
After a crash the jobs started but not ended may still run on workers that outlived
the admin: their files are held (not queued again) until their worker reports them,
which adopts them, or until ``workers.lost-timeout`` passes without them, which makes
them a system failure of that attempt.  Lines are written unbuffered, without fsync:
a killed process loses nothing, and a power cut stops the workers too.
"""

from __future__ import annotations

import json
import os
from typing import Any, TextIO

FILE_NAME = "jobs.journal"


class Journal:
    """Append-only record of job starts and ends, compacted when opened."""

    def __init__(self, folder: str) -> None:
        self.path = os.path.join(folder, FILE_NAME)
        self._file: TextIO | None = None

    def open(self) -> dict[str, dict[str, Any]]:
        """Read the jobs left running by the previous admin, compact, start appending.

        Runs in a thread (file I/O).  Returns job id → its start entry.
        """
        running: dict[str, dict[str, Any]] = {}
        os.makedirs(os.path.dirname(self.path), mode=0o700, exist_ok=True)
        try:
            with open(self.path, encoding="utf-8") as f:
                for line in f:
                    try:
                        entry = json.loads(line)
                    except ValueError:
                        continue  # a line cut by the crash
                    if not isinstance(entry, dict) or "job_id" not in entry:
                        continue
                    if entry.get("op") == "start":
                        running[str(entry["job_id"])] = entry
                    else:
                        running.pop(str(entry["job_id"]), None)
        except FileNotFoundError:
            pass
        tmp = self.path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            for entry in running.values():
                f.write(json.dumps(entry) + "\n")
        os.replace(tmp, self.path)
        self._file = open(self.path, "a", encoding="utf-8", buffering=1)
        return running

    def started(self, job_id: str, key: list[str], attempt: int, worker: str, **extra: Any) -> None:
        """A job started (or was adopted) on a worker."""
        self._write({"op": "start", "job_id": job_id, "key": key, "attempt": attempt,
                     "worker": worker, **extra})

    def ended(self, job_id: str) -> None:
        """A job's outcome is committed (or it was given up)."""
        self._write({"op": "end", "job_id": job_id})

    def _write(self, entry: dict[str, Any]) -> None:
        if self._file is not None:
            self._file.write(json.dumps(entry) + "\n")

    def close(self) -> None:
        """Stop appending."""
        if self._file is not None:
            self._file.close()
            self._file = None
