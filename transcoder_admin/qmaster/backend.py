"""The admin's Qmaster backend: profiles with ``backend: qmaster`` run as Compressor batches.

A :class:`QmasterJob` is a transcoder job (``job/runner.py``: analyse the source, verify
the outputs, all-or-nothing commit, report) whose targets are made by one Compressor
batch instead of ffmpeg.  It runs on the admin's host, in the admin's process, through
:class:`QmasterClient`; :func:`qmaster_worker` wraps it as a worker connection with
``qmaster.max-batches`` slots that only takes jobs of qmaster profiles.  The batch id and
the cluster (after any fallback to "This Computer") go into the report, the database
row and the API.
"""

from __future__ import annotations

import os
from typing import Any

from twisted.internet import defer

from ..context.paths import Roots
from ..job.runner import Job
from ..prognosis import CANCELLED, JobFailed, JobFailure, source_failure, system_failure
from ..worker.local import InProcessWorkerConnection, JobHost
from .client import QmasterClient
from .errors import (
    DestinationError,
    QmasterBatchTimeoutError,
    QmasterClusterNotFound,
    QmasterError,
    QmasterJobCancelled,
    QmasterJobFailed,
    SourceFileError,
)
from .model import BatchJob, Submission
from .settings import QmasterSettings

#: The name of the backend's worker in /api/v1/workers and in reports.
WORKER_NAME = "qmaster"


class QmasterJob(Job):
    """A job whose targets are one Compressor batch."""

    client: QmasterClient  # set by the factory

    def __init__(self, spec: dict[str, Any], roots: Roots, worker: str, reactor: Any) -> None:
        super().__init__(spec, roots, worker, reactor)
        self.submission: Submission | None = None
        self._batch: defer.Deferred[Any] | None = None

    def _needs_picture(self) -> bool:
        return False  # Compressor reads the source itself

    async def _run_targets(self) -> None:
        source = self.local(self.spec["source"])
        targets = self.spec["targets"]
        produced: list[tuple[str, str]] = []
        jobs = []
        for index, target in enumerate(targets):
            work = os.path.join(self.work_dir, f"{index:02d}-qmaster.{target['extension']}")
            final = os.path.join(self.local(target["output_folder"]), target["output_name"])
            jobs.append(BatchJob(source=source, setting=str(target["setting"]), destination=work))
            produced.append((work, final))
            self._target_results.append(
                {
                    "name": target["name"],
                    "type": "qmaster",
                    "outcome": "failed",
                    "reason": None,
                    "outputs": [],
                    "commands": [],
                    "invalid_output": False,
                    "setting": target["setting"],
                }
            )
        self.progress = {"percent": 0.0, "speed": None, "eta": None, "target": "qmaster"}
        self._batch = self.client.submit_and_wait(
            jobs,
            batch_name=f"{self.spec['customer']}/{self.spec['profile']}/{self.spec['relpath']}",
            timeout=self._remaining(),
            on_submitted=self._submitted,
            on_progress=self._on_status,
        )
        try:
            await self._batch
        except defer.CancelledError:
            raise JobFailed(JobFailure(CANCELLED, "cancelled")) from None
        except Exception as e:
            raise self._failure(e) from None
        finally:
            self._batch = None
        for (work, _final), target, result in zip(
            produced, targets, self._target_results, strict=True
        ):
            try:
                await self._verify(work, target)
            except JobFailed as e:
                result["reason"] = e.failure.reason
                result["invalid_output"] = e.failure.invalid_output
                raise
            result["outcome"] = "done"
        for (_work, final), target, result in zip(
            produced, targets, self._target_results, strict=True
        ):
            result["outputs"] = [self._virtual_output(target, final)]
        self._outputs.extend(produced)

    def _submitted(self, submission: Submission) -> None:
        self.submission = submission
        for result in self._target_results:
            result["commands"] = [list(submission.argv)] if submission.argv else []
        if submission.cluster != submission.requested_cluster:
            self.log.warn(
                "job {job_id}: cluster {requested!r} not found; batch {batch} runs on {cluster!r}",
                job_id=self.job_id,
                requested=submission.requested_cluster,
                batch=submission.batch_id,
                cluster=submission.cluster,
            )

    def _on_status(self, status: Any) -> None:
        percent = getattr(status, "percent", None)
        self.progress = {
            "percent": float(percent) if percent is not None else self.progress.get("percent"),
            "speed": None,
            "eta": None,
            "target": "qmaster",
            "state": getattr(status, "text", None),
        }

    def _failure(self, e: Exception) -> JobFailed:
        """A failure a person understands, of the right kind (source or system)."""
        if isinstance(e, SourceFileError):
            return source_failure(f"Compressor cannot read the source: {e}")
        if isinstance(e, QmasterBatchTimeoutError):
            total = float(self.spec["transcoding_timeout"])
            return system_failure(f"timed out after {total:g} s (Compressor batch)")
        if isinstance(e, QmasterJobCancelled):
            return system_failure(f"the Compressor batch was cancelled: {e}")
        if isinstance(e, QmasterJobFailed):
            return system_failure(f"the Compressor batch failed: {e}")
        if isinstance(e, QmasterClusterNotFound):
            return system_failure(f"Compressor cluster not found: {e}")
        if isinstance(e, (DestinationError, QmasterError)):
            return system_failure(f"Compressor: {e}")
        return system_failure(f"Compressor: {type(e).__name__}: {e}")

    def _report(self, failure: JobFailure | None) -> dict[str, Any]:
        report = super()._report(failure)
        report["backend"] = "qmaster"
        if self.submission is not None:
            report["qmaster"] = {
                "batch_id": self.submission.batch_id,
                "cluster": self.submission.cluster,
                "requested_cluster": self.submission.requested_cluster,
                "job_ids": list(self.submission.job_ids),
            }
        return report

    def abort(self) -> defer.Deferred[None]:
        """Cancel the batch where Compressor allows it, then clean the work folder."""
        batch, submission = self._batch, self.submission
        if batch is not None and not batch.called:
            batch.cancel()  # kills the command running now
        if submission is not None:
            d = self.client.cancel(submission.ref)
            d.addErrback(lambda f: self.log.warn("cancel of batch failed: {e}", e=f.value))
        return super().abort()


def qmaster_worker(settings: QmasterSettings, max_batches: int, roots: Roots, reactor: Any) -> Any:
    """The backend as a worker connection: ``max_batches`` slots, qmaster jobs only."""
    client = QmasterClient(settings, reactor)

    def factory(spec: dict[str, Any], roots: Roots, worker: str, reactor: Any) -> Job:
        job = QmasterJob(spec, roots, worker, reactor)
        job.client = client
        return job

    host = JobHost(WORKER_NAME, roots, max_batches, reactor, job_factory=factory)
    return InProcessWorkerConnection(host, backend="qmaster")
