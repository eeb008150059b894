"""What a job's report holds, before and after it runs (DESIGN.md 7)."""

from __future__ import annotations

import socket
from typing import Any

from twisted.internet.interfaces import IReactorTime

from ..prognosis import JobFailed, JobFailure
from ..records import JobSpec
from ..times import now_iso
from .process import ProcessResult


def build_report(
    spec: JobSpec, worker: str, clock: IReactorTime, failure: JobFailure | None
) -> dict[str, Any]:
    """The report of a job, with what is known without running it."""
    success = failure is None
    return {
        "job_id": spec.job_id,
        "attempt": spec.attempt,
        "customer": spec.customer,
        "profile": spec.profile,
        "relpath": spec.relpath,
        "source": spec.source,
        "report_path": spec.report_path(success),
        "outcome": "done" if success else "failed",
        "failure": failure.to_dict() if failure else None,
        "backend": spec.backend,
        "worker": worker,
        "machine": socket.gethostname(),
        "file": None,
        "source_info": None,
        "times": {
            "detected": spec.detected,
            "queued": spec.queued,
            "started": None,
            "finished": now_iso(clock),
        },
        "cpu_time": None,
        "real_time": None,
        "targets": [],
        "comment": None,
    }


def target_result(target: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """A target's entry in the report, failed until its outputs are made and verified."""
    return {
        "name": target["name"],
        "type": target["type"],
        "outcome": "failed",
        "reason": None,
        "outputs": [],
        "commands": [],
        "invalid_output": False,
        **extra,
    }


def note_failure(result: dict[str, Any], failed: JobFailed) -> None:
    """A target's report entry says why the job failed on it."""
    result["reason"] = failed.failure.reason
    result["invalid_output"] = failed.failure.invalid_output


def tail(run: ProcessResult, limit: int = 400) -> str:
    """The last lines of a program's error output, for a failure's reason."""
    text = " | ".join(line for line in run.stderr_tail.splitlines()[-5:] if line.strip())
    return text[-limit:] if text else "(no error output)"
