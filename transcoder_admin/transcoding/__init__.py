"""Transcoding: runs each file's job on a worker until an outcome is acknowledged.

A transcoding task picks the worker with the most free slots, starts the job, and on
a system failure (crash, timeout, lost worker) tries again with the next attempt
number, up to the profile's ``max-attempts``.  Source failures are final at once.  The
outcome is acknowledged only when it is final, so the worker moves files exactly once.

Committing is a step like any other: a commit that failed (``committed: False``, or an
error from a worker of an earlier version) is a system failure of that attempt.  A source
that changed during the job discards the attempt without counting it (``SourceChanged``):
the file is offered again as a new arrival.  When not even the source can be failed, or
something unexpected breaks, the task ends with ``SourceStuck``: the file is held in
incoming with the reason, never offered again in a loop.  Bookkeeping (the journal)
never costs a slot: a slot taken is freed whatever happens.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

from twisted.internet import defer
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger

from ..errors import InvalidStateError, NotRunning
from ..prognosis import CANCELLED, CHANGED, SYSTEM, JobFailure
from ..records import JobSpec, Outcome, Report
from ..scheduler import JobAbandoned, QueueItem, SourceChanged, SourceStuck
from ..worker.interfaces import IWorkerConnection, WorkerGone
from .cancel import Cancel, too_late
from .journal import Journal
from .rescue import Rescue
from .slots import WorkerSlots, backend_of
from .tasks import Task, new_job_id

SpecFactory = Callable[[QueueItem, str, int], JobSpec]

#: Seconds a stopping admin waits for its workers to kill their jobs.
STOP_GRACE = 10.0


class Transcoding:
    """Workers, their load, and the transcoding tasks."""

    log = Logger()

    def __init__(
        self, make_spec: SpecFactory, clock: IReactorTime, journal: Journal | None = None
    ) -> None:
        self.make_spec = make_spec
        self.clock = clock
        self.slots = WorkerSlots()
        self.workers = self.slots.workers  # by name
        self.load = self.slots.load  # slots taken, by worker name
        self.capacity_changed = self.slots.capacity_changed
        self.tasks: dict[tuple[str, str, str], Task] = {}
        self.journal = journal  # running jobs, for adoption after a restart
        #: Ends a job without its worker: cleans its leftovers, fails its source.
        self.rescue = Rescue(self.slots)

    # -- workers -------------------------------------------------------------------

    def add_worker(self, conn: IWorkerConnection) -> None:
        """A worker joined: its slots become available."""
        self.slots.add(conn)

    def remove_worker(self, name: str) -> None:
        """A worker left (for now): it gets no more jobs; its running ones go on."""
        self.slots.remove(name)

    def capacity(self) -> int:
        """Sum of every worker's slots."""
        return self.slots.capacity()

    def free_slots(self, backend: str | None = None) -> int:
        """Slots not taken by a running job (of workers of one backend, when given)."""
        return self.slots.free(backend)

    def pick_worker(self, backend: str = "ffmpeg") -> IWorkerConnection | None:
        """The worker of ``backend`` with the most free slots (ties: least loaded, name)."""
        return self.slots.pick(backend)

    @property
    def _stopping(self) -> bool:
        return self.slots.closed

    # -- tasks ---------------------------------------------------------------------

    def run(self, item: QueueItem) -> defer.Deferred[Report]:
        """Run the file's job through every attempt it needs; fire with the final report."""
        task = Task(item, attempt=item.attempts)
        return self._track(task, self._run(task))

    def adopt(
        self, item: QueueItem, spec: JobSpec, worker: IWorkerConnection
    ) -> defer.Deferred[Report]:
        """Take over a job a worker runs already (it outlived the previous admin).

        ``spec`` is the admin's own, built again from its configuration and journal:
        a worker's copy of it is never used (its paths and settings are only claims).
        """
        task = Task(item, job_id=str(spec.job_id), attempt=int(spec.attempt))
        task.worker, task.current, task.started_at = worker.name, spec, self.clock.seconds()
        self.log.info(
            "adopted job {job_id} (attempt {attempt}) for {relpath} on {worker}",
            job_id=task.job_id,
            attempt=task.attempt,
            relpath=item.relpath,
            worker=worker.name,
        )
        return self._track(task, self._run(task, adopted=worker))

    def _track(self, task: Task, work: Any) -> defer.Deferred[Report]:
        self.tasks[task.item.key] = task

        def forget(result: Any) -> Any:
            if self.tasks.get(task.item.key) is task:
                del self.tasks[task.item.key]
            if task.cancel is not None:
                task.cancel.end(result)
            return result

        return defer.Deferred.fromCoroutine(work).addBoth(forget)

    async def _run(self, task: Task, adopted: IWorkerConnection | None = None) -> Report:
        while True:
            worker = adopted
            if worker is None:
                task.attempt += 1
                # Until a worker has room, the new attempt runs nowhere (not on the last one).
                task.worker, task.job_id, task.committing = None, "", False
                worker = await self._next_worker(task)
                if worker is None:  # cancelled while it waited
                    return await self._cancelled(task)
                task.job_id = new_job_id(self.clock)
                task.worker = worker.name
                task.started_at = self.clock.seconds()
                try:
                    task.current = self.make_spec(task.item, task.job_id, task.attempt)
                    max_attempts = int(task.spec.max_attempts)
                except Exception as e:
                    self.log.failure(
                        "cannot build the job for {relpath}", relpath=task.item.relpath
                    )
                    raise SourceStuck(f"cannot build the job: {e}") from e
                if task.attempt > max_attempts:
                    failure = JobFailure(SYSTEM, f"gave up after {task.attempt - 1} attempts")
                    return await self.rescue.fail_source(task, failure)
            # The slot exists as soon as it is counted: nothing between the two can leak it.
            release = self.slots.take(worker.name)
            try:
                self._journal_started(task, worker)
                report = await self._attempt(task, worker, adopted is not None, release)
            finally:
                adopted = None
                if self.journal is not None:
                    self.journal.ended(task.job_id)
                release()
            if report is not None:
                return report

    def _journal_started(self, task: Task, worker: IWorkerConnection) -> None:
        """Note the attempt in the journal (which logs, never raises, when it cannot)."""
        if self.journal is None:
            return
        extra: dict[str, Any] = {
            "priority": task.item.priority,
            "detected_at": task.item.detected_at,
        }
        identity = task.spec.source_identity
        if identity is not None:
            extra["identity"] = identity  # adoption after a crash rebuilds the spec with it
        self.journal.started(task.job_id, list(task.item.key), task.attempt, worker.name, **extra)

    async def _next_worker(self, task: Task) -> IWorkerConnection | None:
        """The worker for the task's next attempt; None when the task was cancelled."""
        worker = self.pick_worker(task.item.backend)
        while worker is None:
            if self._stopping:
                raise JobAbandoned(task.item.relpath)
            if task.cancel is not None:
                return None
            await self.slots.wait()
            worker = self.pick_worker(task.item.backend)
        return worker

    async def _attempt(
        self,
        task: Task,
        worker: IWorkerConnection,
        adopted: bool = False,
        release: Callable[[], None] = lambda: None,
    ) -> Report | None:
        """One attempt; None means "try again".

        ``release`` frees the worker's slot once the transcoding is over: committing the
        outcome (moving files) does not hold up the next job.
        """
        spec = task.spec
        if not adopted:
            self.log.info(
                "job {job_id} (attempt {attempt}) for {customer}/{profile}/{relpath} on {w}",
                job_id=task.job_id,
                attempt=task.attempt,
                customer=task.item.customer,
                profile=task.item.profile,
                relpath=task.item.relpath,
                w=worker.name,
            )
        failure: JobFailure | None
        outcome: Outcome | None
        try:
            if adopted:
                outcome = await worker.job_outcome(task.job_id, task.attempt)
            else:
                outcome = await worker.start_job(spec)
        except WorkerGone as e:
            outcome = None
            failure = JobFailure(SYSTEM, f"worker {worker.name!r} was lost")
            if not self._stopping and not task.stopping:
                self.log.warn("job {job_id}: {error}", job_id=task.job_id, error=e)
                self.rescue.clean(task.spec, worker.name)
        except Exception as e:
            if adopted:
                raise
            # Refused before it ran (by the worker, or too big for the wire): a failure
            # with a report like any other, never a file silently left behind.
            outcome = None
            failure = JobFailure(SYSTEM, f"the job could not start on {worker.name!r}: {e}")
            self.log.failure(
                "job {job_id} could not start on {w}", job_id=task.job_id, w=worker.name
            )
        else:
            failure = outcome.failure
        release()
        if task.cancel is not None and not self._stopping:
            return await self._cancelled(task)
        if self._stopping or task.stopping or (failure is not None and failure.kind == CANCELLED):
            if outcome is not None:
                await _quietly(worker.cancel_job(task.job_id))
            raise JobAbandoned(task.item.relpath)
        if failure is not None and failure.kind == CHANGED:
            return await self._changed(task, worker, failure)
        if failure is not None and failure.retryable and task.attempt < spec.max_attempts:
            self._retrying(task, failure)
            if outcome is not None:
                await _quietly(worker.cancel_job(task.job_id))
            return None
        if outcome is None:
            assert failure is not None
            return await self.rescue.fail_source(task, failure)
        return await self._commit(task, worker)

    async def _commit(self, task: Task, worker: IWorkerConnection) -> Report | None:
        """Have the worker commit the outcome; a commit that failed is a failed attempt."""
        task.committing = True
        try:
            report = await worker.acknowledge(task.job_id)
        except WorkerGone:
            return await self.rescue.fail_source(
                task, JobFailure(SYSTEM, f"worker {worker.name!r} was lost before committing")
            )
        except Exception as e:
            # A worker of an earlier version raises when its commit fails (and forgets the
            # job): the same as a commit undone, a system failure of this attempt.
            self.log.error(
                "job {job_id}: committing on {w} failed: {error}",
                job_id=task.job_id,
                w=worker.name,
                error=e,
            )
            self.rescue.clean(task.spec, worker.name)
            failure = JobFailure(SYSTEM, f"committing the outcome on {worker.name!r} failed: {e}")
            return await self._after_commit_failed(task, failure)
        if report.committed is not False:
            return report
        failure = report.failure or JobFailure(
            SYSTEM, f"committing the outcome on {worker.name!r} failed"
        )
        if failure.kind == CHANGED:
            return await self._changed(task, worker, failure)
        self.log.error(
            "job {job_id}: committing on {w} failed and was undone: {reason}",
            job_id=task.job_id,
            w=worker.name,
            reason=failure.reason,
        )
        await _quietly(worker.cancel_job(task.job_id))
        return await self._after_commit_failed(task, failure)

    async def _after_commit_failed(self, task: Task, failure: JobFailure) -> Report | None:
        """Another attempt when one is left (None), else the source fails with the reason."""
        if failure.retryable and task.attempt < int(task.spec.max_attempts):
            self._retrying(task, failure)
            return None
        return await self.rescue.fail_source(task, failure)

    def _retrying(self, task: Task, failure: JobFailure) -> None:
        self.log.warn(
            "job {job_id} attempt {attempt} failed ({reason}); trying again",
            job_id=task.job_id,
            attempt=task.attempt,
            reason=failure.reason,
        )

    async def _changed(self, task: Task, worker: IWorkerConnection, failure: JobFailure) -> Any:
        """The source changed during the job: discard the attempt, without counting it."""
        await _quietly(worker.cancel_job(task.job_id))
        self.log.warn(
            "job {job_id} for {customer}/{profile}/{relpath}: source changed during the job: "
            "offered again ({reason})",
            job_id=task.job_id,
            customer=task.item.customer,
            profile=task.item.profile,
            relpath=task.item.relpath,
            reason=failure.reason,
        )
        # The attempt does not count: the file's next job is this attempt again.
        task.item.attempts = task.attempt - 1
        raise SourceChanged(task.item.relpath)

    def cancel(self, key: tuple[str, str, str], by: str, then: str) -> defer.Deferred[Any]:
        """An operator cancels a file's running job: its processes are killed and its
        work files removed, then the source is failed ("cancelled by BY") or offered again.

        Fires with the task's end (its report, or the failure that ended it). Raises
        NotRunning when the file has no task, InvalidStateError when it is too late.
        """
        task = self.tasks.get(key)
        if task is None:
            raise NotRunning(f"{'/'.join(key)} has no running job")
        late = too_late(task)
        if late:
            raise InvalidStateError(f"{'/'.join(key)}: cannot cancel: {late}")
        cancel = task.cancel = Cancel(by, then)
        task.stopping = True
        self.log.info(
            "job {job_id} for {customer}/{profile}/{relpath} cancelled by {by} (source: {then})",
            job_id=task.job_id or "(waiting for a worker)",
            customer=task.item.customer,
            profile=task.item.profile,
            relpath=task.item.relpath,
            by=by,
            then=then,
        )
        worker = self.workers.get(task.worker or "")
        if worker is not None and task.job_id:
            # Known before the call: the job may end (and wait for the kill) within it.
            cancel.killed = defer.Deferred()
            worker.cancel_job(task.job_id).chainDeferred(cancel.killed)
        else:
            self.slots.changed()  # wakes the task waiting for a worker, to see it
        return cancel.ended

    async def _cancelled(self, task: Task) -> Report:
        """The task was cancelled and its job killed: fail the source, or give it back."""
        cancel = task.cancel
        assert cancel is not None
        if cancel.killed is not None:
            await _quietly(cancel.killed)
        if cancel.requeue:
            task.item.attempts = task.attempt - 1  # the cancelled attempt does not count
            raise JobAbandoned(task.item.relpath)
        return await self.rescue.fail_source(task, cancel.failure())

    def cancel_all(self) -> defer.Deferred[Any]:
        """Shutdown: stop every running job; their files stay in incoming.

        Waits at most STOP_GRACE seconds: a worker whose link is down hears of it when
        it is back, from the next admin (which adopts or cancels what it still runs).
        """
        calls = []
        tasks = list(self.tasks.values())
        for task in tasks:
            task.stopping = True
            worker = self.workers.get(task.worker or "")
            if worker is not None and task.job_id:
                calls.append(worker.cancel_job(task.job_id))
        self.slots.close()
        for task in tasks:
            if task.cancel is not None:
                task.cancel.abandon()
        stopped = defer.gatherResults(calls, consumeErrors=True)
        stopped.addTimeout(STOP_GRACE, self.clock)
        return stopped.addBoth(lambda _: None)

    def describe(self) -> list[dict[str, Any]]:
        """Running tasks with worker, attempt and progress (for the API)."""
        return [task.describe(self.workers.get(task.worker or "")) for task in self.tasks.values()]


async def _quietly(d: defer.Deferred[Any]) -> None:
    """Wait for a best-effort call (cancelling a job): its error changes nothing here."""
    with contextlib.suppress(Exception):
        await d


__all__ = ["Task", "Transcoding", "WorkerSlots", "backend_of", "new_job_id"]
