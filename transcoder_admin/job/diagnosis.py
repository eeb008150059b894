"""The diagnostician: a failed job's diagnosis, written beside its report.

A diagnosis says where the job ran, what exactly it ran (each command as its argv and
shell-quoted, ready to paste), what the source was (size, the type its bytes suggest,
a hex dump of its first bytes, the analysis: container, streams, codecs, duration),
why it failed, the tail of the failing program's log, and the command that re-runs
the job's commands in a scratch folder without moving any file
(``transcoder-admin diagnose REPORT``).
"""

from __future__ import annotations

import os
import shlex
import socket
from typing import TYPE_CHECKING, Any

from ..context.paths import fit_name
from ..reports.files import DIAGNOSIS_SUFFIX, REPORT_SUFFIX

if TYPE_CHECKING:
    from .job import Job

#: Lines of a program's error output kept.
LOG_LINES = 40


def hexdump(head_hex: str | None) -> list[str]:
    """The first bytes as ``offset  hex  text`` lines of 16 bytes."""
    if not head_hex:
        return []
    data = bytes.fromhex(head_hex)
    lines = []
    for offset in range(0, len(data), 16):
        chunk = data[offset : offset + 16]
        text = "".join(chr(b) if 32 <= b < 127 else "." for b in chunk)
        lines.append(f"{offset:08x}  {chunk.hex(' '):<47}  {text}")
    return lines


def build(job: Job, report: dict[str, Any], report_file: str) -> dict[str, Any]:
    """The diagnosis of a failed job whose report is ``report_file`` (a local path)."""
    source_file = dict(job.source_file or {})
    commands = [
        {"target": target.get("name"), "argv": list(argv), "shell": shlex.join(argv)}
        for target in report.get("targets") or []
        for argv in target.get("commands") or []
    ]
    tail = (job.log_tail or "").splitlines()[-LOG_LINES:]
    spec = job.spec
    return {
        "job_id": job.job_id,
        "customer": spec.customer,
        "profile": spec.profile,
        "relpath": spec.relpath,
        "host": socket.gethostname(),
        "worker": job.worker,
        "failure": report.get("failure"),
        "verdict": report.get("verdict"),
        "source": {
            "file": job.local(spec.failed),
            "size": source_file.get("size"),
            "mime_guess": source_file.get("mime_guess"),
            "first_bytes": hexdump(source_file.get("head")),
            "analysis": report.get("source_info"),
        },
        "work": job.work_dir,
        "commands": commands,
        "log_tail": tail,
        "reproduce": shlex.join(["transcoder-admin", "diagnose", report_file]),
    }


def diagnosis_path(report_file: str, job_id: str) -> str:
    """The local path of a report file's diagnosis: ``x.J1.yaml`` → ``x.J1.diagnosis.yaml``
    (fitted like the report's name: the job id and the ending stay whole)."""
    folder, name = os.path.split(report_file)
    stem = name[: -len(REPORT_SUFFIX)] if name.endswith(REPORT_SUFFIX) else name
    tail = f".{job_id}{DIAGNOSIS_SUFFIX}"
    return os.path.join(folder, fit_name(stem + DIAGNOSIS_SUFFIX, tail=tail))


__all__ = ["LOG_LINES", "build", "diagnosis_path", "hexdump"]
