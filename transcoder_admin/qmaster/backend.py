"""The admin's Qmaster backend: profiles with ``backend: qmaster`` run as Compressor batches.

A job with a :class:`QmasterBackend` is a transcoder job (``job/job.py``: analyse the
source, verify the outputs, all-or-nothing commit, report) whose targets are made by one
Compressor batch instead of ffmpeg.  It runs on the admin's host, in the admin's process, through
:class:`QmasterClient`; :func:`qmaster_worker` wraps it as a worker connection with
``qmaster.max-batches`` slots that only takes jobs of qmaster profiles.  The batch id and
the cluster (after any fallback to "This Computer") go into the report, the database
row and the API.
"""

from __future__ import annotations

import os
from typing import Any

from twisted.internet import defer
from twisted.logger import Logger
from zope.interface import implementer

from ..context.paths import Roots
from ..job.backend import IJobBackend
from ..job.job import Job
from ..job.report import target_result
from ..job.verify import verify_outputs
from ..prognosis import CANCELLED, JobFailed, JobFailure, source_failure, system_failure
from ..reactors import IFarmReactor
from ..records import JobSpec
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


@implementer(IJobBackend)
class QmasterBackend:
    """A job's targets made by one Compressor batch (one backend object per job)."""

    name = "qmaster"
    log = Logger()

    def __init__(self, client: QmasterClient) -> None:
        self.client = client
        self.submission: Submission | None = None
        self._batch: defer.Deferred[Any] | None = None

    def describes_source(self, job: Job) -> bool:
        """Compressor does not say what it read: the job has ffmpeg describe the source."""
        return False

    async def make_targets(self, job: Job) -> None:
        """Submit one batch for every target, wait for it, then verify each output."""
        source = job.local(job.spec.source)
        targets = job.spec.targets
        produced: list[tuple[str, str]] = []
        batch_jobs = []
        for index, target in enumerate(targets):
            work = os.path.join(job.work_dir, f"{index:02d}-qmaster.{target['extension']}")
            final = os.path.join(job.local(target["output_folder"]), target["output_name"])
            batch_jobs.append(
                BatchJob(source=source, setting=str(target["setting"]), destination=work)
            )
            produced.append((work, final))
            job.results.append(target_result(target, type="qmaster", setting=target["setting"]))
        job.progress = {"percent": 0.0, "speed": None, "eta": None, "target": "qmaster"}
        spec = job.spec
        self._batch = self.client.submit_and_wait(
            batch_jobs,
            batch_name=f"{spec.customer}/{spec.profile}/{spec.relpath}",
            timeout=job.remaining(),
            on_submitted=lambda submission: self._submitted(job, submission),
            on_progress=lambda status: self._on_status(job, status),
        )
        try:
            await self._batch
        except defer.CancelledError:
            raise JobFailed(JobFailure(CANCELLED, "cancelled")) from None
        except Exception as e:
            raise self._failure(job, e) from None
        finally:
            self._batch = None
        await verify_outputs(
            job, [(work, t) for (work, _f), t in zip(produced, targets, strict=True)]
        )
        for result in job.results:
            result["outcome"] = "done"
        for made, target, result in zip(produced, targets, job.results, strict=True):
            job.add_outputs(target, [made], result)

    def _submitted(self, job: Job, submission: Submission) -> None:
        self.submission = submission
        for result in job.results:
            result["commands"] = [list(submission.argv)] if submission.argv else []
        if submission.cluster != submission.requested_cluster:
            self.log.warn(
                "job {job_id}: cluster {requested!r} not found; batch {batch} runs on {cluster!r}",
                job_id=job.job_id,
                requested=submission.requested_cluster,
                batch=submission.batch_id,
                cluster=submission.cluster,
            )

    def _on_status(self, job: Job, status: Any) -> None:
        percent = getattr(status, "percent", None)
        job.progress = {
            "percent": float(percent) if percent is not None else job.progress.get("percent"),
            "speed": None,
            "eta": None,
            "target": "qmaster",
            "state": getattr(status, "text", None),
        }

    def _failure(self, job: Job, e: Exception) -> JobFailed:
        """A failure a person understands, of the right kind (source or system)."""
        if isinstance(e, SourceFileError):
            return source_failure(f"Compressor cannot read the source: {e}")
        if isinstance(e, QmasterBatchTimeoutError):
            total = float(job.spec.transcoding_timeout)
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

    def add_to_report(self, job: Job, report: dict[str, Any]) -> None:
        """The batch id and the cluster it ran on (after any fallback)."""
        if self.submission is not None:
            report["qmaster"] = {
                "batch_id": self.submission.batch_id,
                "cluster": self.submission.cluster,
                "requested_cluster": self.submission.requested_cluster,
                "job_ids": list(self.submission.job_ids),
            }

    def abort(self, job: Job) -> None:
        """Cancel the batch where Compressor allows it (the job cleans its work folder)."""
        batch, submission = self._batch, self.submission
        if batch is not None and not batch.called:
            batch.cancel()  # kills the command running now
        if submission is not None:
            d = self.client.cancel(submission.ref)
            d.addErrback(lambda f: self.log.warn("cancel of batch failed: {e}", e=f.value))


def qmaster_worker(
    settings: QmasterSettings, max_batches: int, roots: Roots, reactor: IFarmReactor
) -> Any:
    """The backend as a worker connection: ``max_batches`` slots, qmaster jobs only."""
    client = QmasterClient(settings, reactor)

    def factory(spec: JobSpec, roots: Roots, worker: str, reactor: IFarmReactor) -> Job:
        return Job(spec, roots, worker, reactor, backend=QmasterBackend(client))

    host = JobHost(WORKER_NAME, roots, max_batches, reactor, job_factory=factory)
    return InProcessWorkerConnection(host, backend="qmaster")
