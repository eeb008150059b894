"""A benchmark-only worker whose jobs do no media work (B6 dispatch).

``python -m benchmarks.null_worker`` takes the flags of ``transcoder-admin worker``
(``--manager``, ``--name``, ``--root``, ``--credentials-file``, ``--max-jobs``, …) and
runs the real :class:`~transcoder_admin.worker.daemon.WorkerDaemon` — PB login,
hello, heartbeats, the acknowledgement protocol — with a :class:`NullJob` instead of
the real job: ``run`` stats the source in one trip to the thread pool (as a real job's
first step does) and fires with a *done* outcome shaped like a real report
(:func:`~transcoder_admin.job.job.build_report`: times, file facts, one result per
target, no commands); ``commit``, on the admin's acknowledgement, moves the source to
*done* in the thread pool, as a real commit does, and writes nothing else (no outputs,
no report file: the row's ``report_path`` names a file that does not exist).
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from twisted.internet import task

from transcoder_admin.job.job import Job, move_into, source_facts
from transcoder_admin.times import now_iso
from transcoder_admin.worker.command import add_arguments, run
from transcoder_admin.worker.daemon import WorkerDaemon
from transcoder_admin.worker.local import JobHost


class NullJob(Job):
    """A job that produces nothing and succeeds (after ``seconds``, 0 by default)."""

    seconds = 0.0

    async def _run(self) -> dict[str, Any]:
        self._started = now_iso(self.reactor)
        self._started_at = self.reactor.seconds()
        if self.seconds > 0:
            await task.deferLater(self.reactor, self.seconds)
        # No checksum: that would be media work.
        source = self.local(self.spec.source)
        self.source_file = await self.thread(source_facts, source, False)
        self.results = [
            {
                "name": t["name"],
                "type": t["type"],
                "outcome": "done",
                "reason": None,
                "outputs": [],
                "commands": [],
                "invalid_output": False,
            }
            for t in self.spec.targets
        ]
        self.progress = {"percent": 100.0, "speed": None, "eta": None}
        self.outcome = self._report(None)
        return self.outcome

    def commit_files(self, report: dict[str, Any]) -> dict[str, Any]:
        spec = self.spec
        source = self.local(spec.source)
        destination = self.local(spec.done if report["outcome"] == "done" else spec.failed)
        if os.path.lexists(source):
            move_into(source, destination, f"{self.job_id}-source")
        return report


class NullWorkerDaemon(WorkerDaemon):
    """The real worker daemon whose job host runs :class:`NullJob` s."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        host = self.host
        self.host = JobHost(host.name, host.roots, host.max_jobs, host.reactor, job_factory=NullJob)


def main(argv: list[str] | None = None) -> int:
    """Run a null worker until SIGTERM/SIGINT."""
    p = argparse.ArgumentParser(prog="python -m benchmarks.null_worker", description=__doc__)
    add_arguments(p)
    p.add_argument(
        "--job-seconds", type=float, default=0.0, help="how long each job pretends to work (0)"
    )
    args = p.parse_args(argv)
    NullJob.seconds = max(0.0, args.job_seconds)
    return run(args, NullWorkerDaemon, "null worker")


if __name__ == "__main__":
    sys.exit(main())
