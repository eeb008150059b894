"""Ending a job without its worker: cleaning what a dead attempt left, failing a source.

A job that died (its worker lost, refused, cancelled) has no worker to commit it: any
worker that is there cleans its work folder (best effort) and moves its source to
failed with a report.  When not even that works, the file is stuck.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from twisted.internet import defer
from twisted.logger import Logger

from ..prognosis import JobFailure
from ..records import JobSpec, Report
from ..scheduler import JobAbandoned, SourceStuck
from ..worker.interfaces import WorkerGone
from .slots import WorkerSlots

if TYPE_CHECKING:
    from .tasks import Task


class Rescue:
    """Has any worker clean up after a dead attempt, or fail its source."""

    log = Logger()

    def __init__(self, slots: WorkerSlots) -> None:
        self.slots = slots

    def clean(self, spec: JobSpec, prefer: str) -> None:
        """Best effort: have a worker remove what a dead attempt left behind."""
        slots = self.slots

        async def clean() -> None:
            worker = slots.workers.get(prefer)
            while worker is None:
                if slots.closed:
                    return
                await slots.wait()  # the worker comes back, or another has room
                worker = slots.workers.get(prefer) or slots.pick()
            await worker.clean_job(spec)

        d = defer.Deferred.fromCoroutine(clean())
        d.addErrback(
            lambda f: self.log.warn(
                "could not clean up after job {job_id}: {error}",
                job_id=spec.job_id,
                error=f.getErrorMessage(),
            )
        )

    async def fail_source(self, task: Task, failure: JobFailure) -> Report:
        """The job died without a committed outcome: have any worker fail the source.

        When that fails too (the failed folder cannot be written…), the file is stuck.
        """
        slots = self.slots
        while True:
            if slots.closed:
                raise JobAbandoned(task.item.relpath)
            worker = slots.pick() or next(iter(slots.workers.values()), None)
            if worker is None:
                await slots.wait()
                continue
            try:
                return await worker.fail_source(task.spec, failure)
            except WorkerGone:
                if slots.workers.get(worker.name) is worker:
                    # Still listed: asking it again at once would spin; wait for news.
                    await slots.wait()
                continue
            except Exception as e:
                raise SourceStuck(
                    f"cannot move the source to failed ({e}) after: {failure.reason}"
                ) from e


__all__ = ["Rescue"]
