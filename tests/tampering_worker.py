"""A real worker process whose messages to the admin are tampered with (integration tests).

``python -m tests.tampering_worker MODE[,MODE...] <arguments of transcoder-admin worker>``
patches what the normal worker daemon sends, then runs the normal worker main:

- ``max-jobs``: its hello says ``max_jobs: "x"``;
- ``forged-spec``: the jobs it reports at hello (for adoption) carry a forged spec: work
  ``default:/``, ``max_attempts: 0``, the failed folder and the report elsewhere in the
  roots (the report over :data:`SENTINEL`);
- ``other-row``: its acknowledgement replies carry the report (and so the database row)
  of another job.

The jobs themselves run as usual, with the spec the admin sent.
"""

from __future__ import annotations

import sys
from typing import Any

from transcoder_admin.worker import daemon, local

#: A file in the media root that a forged spec aims its failure report at.
SENTINEL = "keep-me.txt"
FORGED_SPEC = {
    "work": "default:/",
    "max_attempts": 0,
    "failed": "default:/stolen",
    "report_failed": f"default:/{SENTINEL}",
}
#: The report fields of a job that is not the one acknowledged.
OTHER_ROW = {"job_id": "20200101T000000Z-0000000000", "customer": "Other", "relpath": "x.m4a"}


def tamper(modes: set[str]) -> None:
    """Patch the worker daemon's outgoing messages for each mode."""
    if "max-jobs" in modes:
        info = daemon.WorkerDaemon.info

        def bad_info(self: daemon.WorkerDaemon) -> dict[str, Any]:
            return {**info(self), "max_jobs": "x"}

        daemon.WorkerDaemon.info = bad_info  # type: ignore[method-assign]
    if "forged-spec" in modes:
        describe = local.JobHost.describe_jobs

        def forged(self: local.JobHost, with_specs: bool = False) -> list[dict[str, Any]]:
            rows = describe(self, with_specs)
            for row in rows:
                if "spec" in row:
                    row["spec"] = {**row["spec"], **FORGED_SPEC}  # a copy: the job keeps its own
            return rows

        local.JobHost.describe_jobs = forged  # type: ignore[method-assign]
    if "other-row" in modes:
        changes = daemon.committed_changes

        def lying(report: Any) -> dict[str, Any]:
            return {**changes(report), **OTHER_ROW}

        daemon.committed_changes = lying


def main(argv: list[str]) -> int:
    """Tamper, then run ``transcoder-admin worker`` with the remaining arguments."""
    tamper(set(argv[0].split(",")))
    from transcoder_admin.cli import main as cli_main

    return cli_main(["worker", *argv[1:]])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
