"""The spool of report rows waiting for the database: what a killed admin must not lose.

Why a spool and not a scan of report files at start-up: a farm keeps 100,000 report
files and more, and deciding which of them lack a row means walking and reading them
all (or trusting file times, which a copied or restored tree breaks) at every start.
The spool costs one short line when a row is handed to the database and one when it
is written, and a start-up reads only the rows that were still waiting: its cost
follows the length of the outage, not the size of the archive.

``<roots.temp>/.transcoder-admin/reports.spool`` holds JSON lines:
``{"op": "row", "id": N, "row": {...}}`` when a row is queued (the row itself, so it can
be written again without its report file) and ``{"op": "done", "id": N}`` when it was
written (or refused: the database's error is logged, the report file keeps the row).
Like the job journal's, lines are appended on the reactor thread (one short write to the
page cache each) and unbuffered, without fsync: a killed process
loses nothing; a power cut may lose the last lines, and then ``replay-reports`` rebuilds
rows from report files. The file is compacted (rewritten with the waiting rows only)
when it is opened and whenever it has grown past twice the waiting rows plus 1 MiB, so
with a healthy database it stays small whatever the throughput.
"""

from __future__ import annotations

import contextlib
import json
import os
from datetime import datetime
from typing import Any, TextIO

from twisted.logger import Logger

FILE_NAME = "reports.spool"
#: Growth allowed beyond twice the waiting rows before the file is compacted.
COMPACT_SLACK = 1 << 20


class RowSpool:
    """An append-only file of rows handed to the database and not yet written."""

    log = Logger()

    def __init__(self, folder: str) -> None:
        """Remember where the spool lives; nothing is opened until ``open()``."""
        self.path = os.path.join(folder, FILE_NAME)
        self._file: TextIO | None = None
        self._next_id = 1
        self._waiting: dict[int, str] = {}  # id → its "row" line
        self._waiting_size = 0
        self._size = 0  # of the file since it was last compacted
        self._broken = False

    @property
    def waiting(self) -> int:
        """How many rows the spool holds that were not written yet."""
        return len(self._waiting)

    def open(self) -> list[tuple[int, dict[str, Any]]]:
        """Read the rows the previous admin left waiting, compact, start appending.

        Runs in a thread (file I/O). Returns (id, row) of each waiting row, oldest first.
        """
        os.makedirs(os.path.dirname(self.path), mode=0o700, exist_ok=True)
        rows: dict[int, dict[str, Any]] = {}
        try:
            with open(self.path, encoding="utf-8") as f:
                for line in f:
                    self._read_line(line, rows)
        except FileNotFoundError:
            pass
        self._next_id = max(rows, default=0) + 1
        self._compact()
        return list(rows.items())

    def _read_line(self, line: str, rows: dict[int, dict[str, Any]]) -> None:
        try:
            entry = json.loads(line)
            ident = int(entry["id"])
            op = entry["op"]
        except (ValueError, TypeError, KeyError):
            return  # a line cut by the crash
        if op == "row" and isinstance(entry.get("row"), dict):
            rows[ident] = entry["row"]
            self._waiting[ident] = line if line.endswith("\n") else line + "\n"
        elif op == "done":
            rows.pop(ident, None)
            self._waiting.pop(ident, None)

    def add(self, row: dict[str, Any]) -> int | None:
        """Record a row handed to the database; its id for ``done()`` (None: not recorded)."""
        if self._file is None:
            return None
        ident = self._next_id
        try:
            line = json.dumps({"op": "row", "id": ident, "row": row}, default=_plain) + "\n"
        except (TypeError, ValueError) as e:
            # Not for the spool; the database may still take it (save() decides).
            self.log.error(
                "cannot spool the report row of job {job_id}: {error}",
                job_id=row.get("job_id"),
                error=e,
            )
            return None
        self._next_id += 1
        if not self._write(line):
            return None
        self._waiting[ident] = line
        self._waiting_size += len(line)
        return ident

    def done(self, ident: int | None) -> None:
        """Record that the row ``ident`` was written (or refused for good)."""
        if ident is None or self._file is None:
            return
        line = self._waiting.pop(ident, None)
        if line is None:
            return
        self._waiting_size -= len(line)
        if not self._write(json.dumps({"op": "done", "id": ident}) + "\n"):
            return
        if self._size > 2 * self._waiting_size + COMPACT_SLACK:
            try:
                self._compact()
            except OSError as e:
                self._fail(e)

    def close(self) -> None:
        """Stop appending (what is still waiting stays for the next start)."""
        if self._file is not None:
            self._file.close()
            self._file = None

    def _write(self, line: str) -> bool:
        assert self._file is not None
        try:
            self._file.write(line)
        except OSError as e:
            self._fail(e)
            return False
        self._size += len(line)
        return True

    def _fail(self, error: OSError) -> None:
        """A spool that cannot be written: rows still go to the database, unspooled.

        It stops appending (a line half written must not swallow the next one); rows it
        holds are written again at the next start, which is harmless (idempotent).
        """
        if self._file is not None:
            with contextlib.suppress(OSError):
                self._file.close()
            self._file = None
        if not self._broken:
            self._broken = True
            self.log.error(
                "cannot write the spool of waiting report rows {path} ({error}); rows "
                "still waiting when the admin is killed need replay-reports",
                path=self.path,
                error=error,
            )

    def _compact(self) -> None:
        """Rewrite the file with the waiting rows only, then append to it."""
        self.close()
        tmp = self.path + ".tmp"
        lines = list(self._waiting.values())
        with open(tmp, "w", encoding="utf-8") as f:
            f.writelines(lines)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)
        self._waiting_size = self._size = sum(map(len, lines))
        self._file = open(self.path, "a", encoding="utf-8", buffering=1)


def _plain(value: object) -> str:
    """Times as ISO 8601 (a row from an in-process job carries datetimes)."""
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"cannot spool {type(value).__name__}")
