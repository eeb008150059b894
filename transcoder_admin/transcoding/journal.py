"""The journal of running jobs: what the admin must not forget when it is killed.

One JSON line when a job starts (job id, file, attempt, worker) and one when it ends.
After a crash the jobs started but not ended may still run on workers that outlived
the admin: their files are held (not queued again) until their worker reports them,
which adopts them, or until ``workers.lost-timeout`` passes without them, which makes
them a system failure of that attempt.  Lines are written unbuffered, without fsync:
a killed process loses nothing, and a power cut stops the workers too.

A line that cannot be written (disk full, the file gone bad) is logged and skipped: the
job runs on and its slot is freed as usual; only adoption after a crash loses that job.
"""

from __future__ import annotations

import json
import os
from typing import Any, TextIO

from twisted.logger import Logger

FILE_NAME = "jobs.journal"


class Journal:
    """Append-only record of job starts and ends, compacted when opened."""

    log = Logger()

    def __init__(self, folder: str) -> None:
        self.path = os.path.join(folder, FILE_NAME)
        self._file: TextIO | None = None
        #: Whether the last write failed (the error is logged once, not per job).
        self.failing = False

    def open(self) -> dict[str, dict[str, Any]]:
        """Read the jobs left running by the previous admin, compact, start appending.

        Runs in a thread (file I/O).  Returns job id → its start entry.

        A journal that cannot be read or written (a folder in its place, a full disk) is
        logged and the admin runs without it: jobs run as usual, but those running at a
        crash are not adopted (their workers cancel them, their files are offered again).
        """
        running: dict[str, dict[str, Any]] = {}
        try:
            os.makedirs(os.path.dirname(self.path), mode=0o700, exist_ok=True)
            running = self._read()
            tmp = self.path + ".tmp"
            with open(tmp, "w", encoding="utf-8") as f:
                for entry in running.values():
                    f.write(json.dumps(entry) + "\n")
            os.replace(tmp, self.path)
            self._file = open(self.path, "a", encoding="utf-8", buffering=1)
        except OSError as e:
            self.failing = True
            self.log.error(
                "cannot use the journal of running jobs {path}: {error}; jobs run, but those "
                "running at a crash cannot be adopted",
                path=self.path,
                error=e,
            )
        return running

    def _read(self) -> dict[str, dict[str, Any]]:
        """The start entries of the jobs not ended, by job id."""
        running: dict[str, dict[str, Any]] = {}
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
        return running

    def started(self, job_id: str, key: list[str], attempt: int, worker: str, **extra: Any) -> None:
        """A job started (or was adopted) on a worker; ``extra`` holds e.g. its ``identity``.

        Never raises: see :meth:`_write`.
        """
        self._write(
            {
                "op": "start",
                "job_id": job_id,
                "key": key,
                "attempt": attempt,
                "worker": worker,
                **extra,
            }
        )

    def ended(self, job_id: str) -> None:
        """A job's outcome is committed (or it was given up). Never raises."""
        self._write({"op": "end", "job_id": job_id})

    def _write(self, entry: dict[str, Any]) -> None:
        """Append one line; a failure is logged (once until writes work again), not raised.

        The journal is bookkeeping for a crash: losing a line must never cost a worker
        slot, a held file or a report row of the job it describes.
        """
        if self._file is None:
            return
        try:
            self._file.write(json.dumps(entry) + "\n")
        except (OSError, ValueError, TypeError) as e:  # ValueError: the file was closed
            if not self.failing:
                self.failing = True
                self.log.error(
                    "cannot write the journal of running jobs {path}: {error}; jobs go on, "
                    "but those running now cannot be adopted after a crash",
                    path=self.path,
                    error=e,
                )
            return
        if self.failing:
            self.failing = False
            self.log.info("the journal of running jobs {path} is written again", path=self.path)

    def close(self) -> None:
        """Stop appending."""
        if self._file is not None:
            self._file.close()
            self._file = None
