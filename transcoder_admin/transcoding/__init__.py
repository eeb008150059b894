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

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from twisted.internet import defer
from twisted.logger import Logger

from ..events import Event
from ..prognosis import CANCELLED, CHANGED, SYSTEM, JobFailure
from ..scheduler import JobAbandoned, QueueItem, SourceChanged, SourceStuck
from ..times import iso
from ..worker.interfaces import WorkerConnection, WorkerGone
from .journal import Journal

SpecFactory = Callable[[QueueItem, str, int], dict[str, Any]]


class _Slot:
    """One job's slot on a worker, freed once (when its transcoding is over)."""

    def __init__(self, transcoding: Transcoding, worker: str) -> None:
        self.transcoding = transcoding
        self.worker = worker
        self.held = True

    def release(self) -> None:
        if not self.held:
            return
        self.held = False
        load = self.transcoding.load
        if self.worker in load:
            load[self.worker] -= 1
            self.transcoding._capacity_changed()


def backend_of(worker: Any) -> str:
    """Which jobs a worker runs: "ffmpeg" (every worker process) or "qmaster"."""
    return str(getattr(worker, "backend", "ffmpeg"))


def new_job_id(clock: Any) -> str:
    """A sortable, unique job id: UTC time plus random hex."""
    stamp = datetime.fromtimestamp(clock.seconds(), UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"{stamp}-{uuid.uuid4().hex[:10]}"


@dataclass
class Task:
    """One file's transcoding: its current attempt and worker."""

    item: QueueItem
    job_id: str = ""
    attempt: int = 0
    worker: str | None = None
    started_at: float = 0.0
    spec: dict[str, Any] = field(default_factory=dict)
    stopping: bool = False


class Transcoding:
    """Workers, their load, and the transcoding tasks."""

    log = Logger()

    def __init__(self, make_spec: SpecFactory, clock: Any) -> None:
        self.make_spec = make_spec
        self.clock = clock
        self.workers: dict[str, WorkerConnection] = {}
        self.load: dict[str, int] = {}
        self.tasks: dict[tuple[str, str, str], Task] = {}
        self.capacity_changed: Event[int] = Event("capacity-changed")
        self._waiting: list[defer.Deferred[None]] = []
        self._stopping = False
        self.journal: Journal | None = None

    # -- workers -------------------------------------------------------------------

    def add_worker(self, conn: WorkerConnection) -> None:
        """A worker joined: its slots become available."""
        self.workers[conn.name] = conn
        self.load.setdefault(conn.name, 0)
        self._capacity_changed()

    def remove_worker(self, name: str) -> None:
        """A worker left (for now): it gets no more jobs; its running ones go on."""
        if self.workers.pop(name, None) is not None:
            self._capacity_changed()

    def capacity(self) -> int:
        """Sum of every worker's slots."""
        return sum(w.max_jobs for w in self.workers.values())

    def free_slots(self, backend: str | None = None) -> int:
        """Slots not taken by a running job (of workers of one backend, when given)."""
        if self._stopping:
            return 0
        return sum(
            max(0, w.max_jobs - self.load.get(n, 0))
            for n, w in self.workers.items()
            if backend is None or backend_of(w) == backend
        )

    def _capacity_changed(self) -> None:
        waiting, self._waiting = self._waiting, []
        for d in waiting:
            d.callback(None)
        self.capacity_changed.fire(self.free_slots())

    def pick_worker(self, backend: str = "ffmpeg") -> WorkerConnection | None:
        """The worker of ``backend`` with the most free slots (ties: least loaded, name)."""
        best: WorkerConnection | None = None
        best_key: tuple[int, int, str] | None = None
        for name, worker in self.workers.items():
            if backend_of(worker) != backend:
                continue
            free = worker.max_jobs - self.load.get(name, 0)
            if free <= 0:
                continue
            key = (-free, self.load.get(name, 0), name)
            if best_key is None or key < best_key:
                best, best_key = worker, key
        return best

    def _wait_for_slot(self) -> defer.Deferred[None]:
        d: defer.Deferred[None] = defer.Deferred()
        self._waiting.append(d)
        return d

    # -- tasks ---------------------------------------------------------------------

    def run(self, item: QueueItem) -> defer.Deferred[dict[str, Any]]:
        """Run the file's job through every attempt it needs; fire with the final report."""
        task = Task(item, attempt=item.attempts)
        return self._track(task, self._run(task))

    def adopt(
        self, item: QueueItem, spec: dict[str, Any], worker: WorkerConnection
    ) -> defer.Deferred[dict[str, Any]]:
        """Take over a job a worker runs already (it outlived the previous admin).

        ``spec`` is the admin's own, built again from its configuration and journal:
        a worker's copy of it is never used (its paths and settings are only claims).
        """
        task = Task(item, job_id=str(spec["job_id"]), attempt=int(spec["attempt"]))
        task.worker, task.spec, task.started_at = worker.name, spec, self.clock.seconds()
        self.log.info(
            "adopted job {job_id} (attempt {attempt}) for {relpath} on {worker}",
            job_id=task.job_id,
            attempt=task.attempt,
            relpath=item.relpath,
            worker=worker.name,
        )
        return self._track(task, self._run(task, adopted=worker))

    def _track(self, task: Task, work: Any) -> defer.Deferred[dict[str, Any]]:
        self.tasks[task.item.key] = task

        def forget(result: Any) -> Any:
            if self.tasks.get(task.item.key) is task:
                del self.tasks[task.item.key]
            return result

        return defer.Deferred.fromCoroutine(work).addBoth(forget)

    async def _run(self, task: Task, adopted: WorkerConnection | None = None) -> dict[str, Any]:
        while True:
            worker = adopted
            if worker is None:
                task.attempt += 1
                # Until a worker has room, the new attempt runs nowhere (not on the last one).
                task.worker, task.job_id = None, ""
                worker = await self._next_worker(task)
                task.job_id = new_job_id(self.clock)
                task.worker = worker.name
                task.started_at = self.clock.seconds()
                try:
                    task.spec = self.make_spec(task.item, task.job_id, task.attempt)
                    max_attempts = int(task.spec["max_attempts"])
                except Exception as e:
                    self.log.failure(
                        "cannot build the job for {relpath}", relpath=task.item.relpath
                    )
                    raise SourceStuck(f"cannot build the job: {e}") from e
                if task.attempt > max_attempts:
                    failure = JobFailure(SYSTEM, f"gave up after {task.attempt - 1} attempts")
                    return await self._fail_without_worker(task, failure)
            # The slot exists as soon as it is counted: nothing between the two can leak it.
            self.load[worker.name] = self.load.get(worker.name, 0) + 1
            slot = _Slot(self, worker.name)
            try:
                self._journal_started(task, worker)
                report = await self._attempt(task, worker, adopted is not None, slot.release)
            finally:
                adopted = None
                if self.journal is not None:
                    self.journal.ended(task.job_id)
                slot.release()
            if report is not None:
                return report

    def _journal_started(self, task: Task, worker: WorkerConnection) -> None:
        """Note the attempt in the journal (which logs, never raises, when it cannot)."""
        if self.journal is None:
            return
        extra: dict[str, Any] = {
            "priority": task.item.priority,
            "detected_at": task.item.detected_at,
        }
        identity = task.spec.get("source_identity")
        if identity is not None:
            extra["identity"] = identity  # adoption after a crash rebuilds the spec with it
        self.journal.started(task.job_id, list(task.item.key), task.attempt, worker.name, **extra)

    async def _next_worker(self, task: Task) -> WorkerConnection:
        worker = self.pick_worker(task.item.backend)
        while worker is None:
            if self._stopping:
                raise JobAbandoned(task.item.relpath)
            await self._wait_for_slot()
            worker = self.pick_worker(task.item.backend)
        return worker

    async def _attempt(
        self,
        task: Task,
        worker: WorkerConnection,
        adopted: bool = False,
        release: Callable[[], None] = lambda: None,
    ) -> dict[str, Any] | None:
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
        outcome: dict[str, Any] | None
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
                self._clean(task.spec, worker.name)
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
            failure = JobFailure.from_dict(outcome["failure"]) if outcome.get("failure") else None
        release()
        if self._stopping or task.stopping or (failure is not None and failure.kind == CANCELLED):
            if outcome is not None:
                await _quietly(worker.cancel_job(task.job_id))
            raise JobAbandoned(task.item.relpath)
        if failure is not None and failure.kind == CHANGED:
            return await self._changed(task, worker, failure)
        if failure is not None and failure.retryable and task.attempt < spec["max_attempts"]:
            self._retrying(task, failure)
            if outcome is not None:
                await _quietly(worker.cancel_job(task.job_id))
            return None
        if outcome is None:
            assert failure is not None
            return await self._fail_without_worker(task, failure)
        return await self._commit(task, worker)

    async def _commit(self, task: Task, worker: WorkerConnection) -> dict[str, Any] | None:
        """Have the worker commit the outcome; a commit that failed is a failed attempt."""
        try:
            report = await worker.acknowledge(task.job_id)
        except WorkerGone:
            return await self._fail_without_worker(
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
            self._clean(task.spec, worker.name)
            failure = JobFailure(SYSTEM, f"committing the outcome on {worker.name!r} failed: {e}")
            return await self._after_commit_failed(task, failure)
        if report.get("committed", True) is not False:
            return report
        raw = report.get("failure")
        failure = (
            JobFailure.from_dict(raw)
            if isinstance(raw, dict)
            else JobFailure(SYSTEM, f"committing the outcome on {worker.name!r} failed")
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

    async def _after_commit_failed(self, task: Task, failure: JobFailure) -> dict[str, Any] | None:
        """Another attempt when one is left (None), else the source fails with the reason."""
        if failure.retryable and task.attempt < int(task.spec["max_attempts"]):
            self._retrying(task, failure)
            return None
        return await self._fail_without_worker(task, failure)

    def _retrying(self, task: Task, failure: JobFailure) -> None:
        self.log.warn(
            "job {job_id} attempt {attempt} failed ({reason}); trying again",
            job_id=task.job_id,
            attempt=task.attempt,
            reason=failure.reason,
        )

    async def _changed(self, task: Task, worker: WorkerConnection, failure: JobFailure) -> Any:
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

    def _clean(self, spec: dict[str, Any], prefer: str) -> None:
        """Best effort: have a worker remove what a dead attempt left behind."""

        async def clean() -> None:
            worker = self.workers.get(prefer)
            while worker is None:
                if self._stopping:
                    return
                await self._wait_for_slot()  # the worker comes back, or another has room
                worker = self.workers.get(prefer) or self.pick_worker()
            await worker.clean_job(spec)

        d = defer.Deferred.fromCoroutine(clean())
        d.addErrback(
            lambda f: self.log.warn(
                "could not clean up after job {job_id}: {error}",
                job_id=spec.get("job_id"),
                error=f.getErrorMessage(),
            )
        )

    async def _fail_without_worker(self, task: Task, failure: JobFailure) -> dict[str, Any]:
        """The job died without a committed outcome: have any worker fail the source.

        When that fails too (the failed folder cannot be written…), the file is stuck.
        """
        while True:
            if self._stopping:
                raise JobAbandoned(task.item.relpath)
            worker = self.pick_worker() or next(iter(self.workers.values()), None)
            if worker is None:
                await self._wait_for_slot()
                continue
            try:
                report: dict[str, Any] = await worker.fail_source(task.spec, failure.to_dict())
                return report
            except WorkerGone:
                if self.workers.get(worker.name) is worker:
                    # Still listed: asking it again at once would spin; wait for news.
                    await self._wait_for_slot()
                continue
            except Exception as e:
                raise SourceStuck(
                    f"cannot move the source to failed ({e}) after: {failure.reason}"
                ) from e

    def cancel_all(self) -> defer.Deferred[Any]:
        """Shutdown: stop every running job; their files stay in incoming."""
        self._stopping = True
        calls = []
        for task in list(self.tasks.values()):
            task.stopping = True
            worker = self.workers.get(task.worker or "")
            if worker is not None and task.job_id:
                calls.append(worker.cancel_job(task.job_id))
        self._capacity_changed()
        return defer.gatherResults(calls, consumeErrors=True).addBoth(lambda _: None)

    def describe(self) -> list[dict[str, Any]]:
        """Running tasks with worker, attempt and progress (for the API)."""
        rows = []
        for task in self.tasks.values():
            worker = self.workers.get(task.worker or "")
            progress = worker.job_progress(task.job_id) if worker and task.job_id else {}
            rows.append(
                {
                    "job_id": task.job_id,
                    "customer": task.item.customer,
                    "profile": task.item.profile,
                    "relpath": task.item.relpath,
                    "worker": task.worker,
                    "attempt": task.attempt,
                    "started": iso(task.started_at),
                    "progress": progress,
                }
            )
        return rows


async def _quietly(d: defer.Deferred[Any]) -> None:
    """Wait for a best-effort call (cancelling a job): its error changes nothing here."""
    try:
        await d
    except Exception:
        pass


__all__ = ["Transcoding", "Task", "new_job_id"]
