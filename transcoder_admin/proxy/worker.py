"""The admin's handle on one worker (an ``IWorkerConnection``), through the manager.

It keeps what the admin knows of each job the worker runs for it: the spec the admin
started it with (outcomes are checked against it), the Deferred waiting for its outcome,
the outcome until it is acknowledged.  Calls that must happen (acknowledge, cancel, fail a
source) wait for the worker's link to come back; a worker lost for good fails them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from twisted.internet import defer
from twisted.logger import Logger
from zope.interface import implementer

from ..observer import OneShotObserver, Waiters
from ..pberrors import is_link_error, is_unknown_job, local_error
from ..prognosis import SYSTEM, JobFailure
from ..records import BadRecord, JobSpec, Outcome, Report
from ..times import iso
from ..wire import TooBig, decode, encode
from ..worker.interfaces import IWorkerConnection, WorkerGone
from . import checks
from .checks import O
from .jobs import EXPECTED, REJECTED, STARTING, JobRecord, failure_report

if TYPE_CHECKING:
    from .workers import WorkerSet


@implementer(IWorkerConnection)
class WorkerProxy:
    """The admin's handle on one worker, through the manager."""

    log = Logger()

    def __init__(self, workers: WorkerSet, name: str) -> None:
        self.workers = workers
        self.name = name
        self.facts: dict[str, Any] = {}
        #: One record per job it runs for this admin (``jobs``: their life and outcome).
        self.records: dict[str, JobRecord] = {}
        self.attached = False
        self.lost = False
        self.last_heard = 0.0
        self.pending: list[dict[str, Any]] = []  # its monitors' pending files (heartbeat)
        #: Every job it last reported (no specs), and its other components (monitors,
        #: failed jobs kept): what the ComponentSet mirrors.
        self.reported_jobs: list[dict[str, Any]] = []
        self.components: dict[str, Any] | None = None  # None: it does not report them
        self._reported_states: dict[str, str] = {}  # job id → state, as of the last hello
        self._state_change: Waiters[None] = Waiters(workers.clock)
        self._lost: OneShotObserver[None] = OneShotObserver(workers.clock)

    # -- facts

    @property
    def reported(self) -> set[str]:
        """Ids of the jobs the worker had when it last said hello."""
        return set(self._reported_states)

    @property
    def jobs(self) -> dict[str, dict[str, Any]]:
        """The jobs it runs for this admin as it last reported them (state, progress)."""
        return {job_id: r.reported for job_id, r in self.records.items() if r.reported is not None}

    @property
    def max_jobs(self) -> int:
        """The worker's slots."""
        return int(self.facts.get("max_jobs", 0))

    def info(self) -> dict[str, Any]:
        """Name, host, roots, capacity, load, state and last heartbeat."""
        clock = self.workers.clock
        return {
            "name": self.name,
            "host": self.facts.get("host"),
            "roots": dict(self.facts.get("roots", {})),
            "max_jobs": self.max_jobs,
            "running": len(self.jobs),
            "state": "lost" if self.lost else "attached" if self.attached else "detached",
            "last_heartbeat": iso(self.last_heard) if self.last_heard else None,
            "silent_for": round(clock.seconds() - self.last_heard, 3) if self.last_heard else None,
            "pid": self.facts.get("pid"),
            "kind": "process",
        }

    def running_jobs(self) -> list[str]:
        """Ids of the jobs the worker last reported."""
        return list(self.jobs)

    def job_progress(self, job_id: str) -> dict[str, Any]:
        """The job's progress from the last heartbeat."""
        return dict(self.jobs.get(job_id, {}).get("progress", {}))

    # -- calls

    def _call(self, method: str, *args: Any) -> defer.Deferred[Any]:
        """Call the worker; big values go and come back as JSON text (``wire``)."""
        if self.lost:
            return defer.fail(WorkerGone(self.name))
        return self.workers.call(self.name, method, *args).addCallback(decode)

    async def _call_until_done(self, method: str, *args: Any) -> Any:
        """Call; if the link drops, wait for the worker to come back and call again.

        Only for idempotent calls (acknowledge, cancel, fail_source).
        """
        while True:
            if self.lost:
                raise WorkerGone(self.name)
            if not self.attached:
                await self._wait_state_change()
                continue
            ok, value = await self._call(method, *args).addCallbacks(
                lambda v: (True, v), lambda f: (False, f)
            )
            if ok:
                return value
            if not is_link_error(value):
                raise local_error(value)
            await self._wait_state_change()

    def _wait_state_change(self) -> defer.Deferred[None]:
        return self._state_change.wait()

    def _state_changed(self) -> None:
        self._state_change.notify(None)

    def start_job(self, spec: JobSpec) -> defer.Deferred[Outcome]:
        """Start a job; fires with its outcome when the worker reports it."""
        job_id = str(spec.job_id)
        try:
            text = encode(spec.to_wire())
        except TooBig as e:
            return defer.fail(TooBig(f"the job's configuration is too big to send: {e}"))
        outcome: defer.Deferred[Outcome] = defer.Deferred()
        record = JobRecord(job_id, int(spec.attempt), STARTING, spec, outcome)
        record.reported = {"job_id": job_id, "state": "starting", "progress": {}}
        self.records[job_id] = record

        def started(_: Any) -> None:
            if self.records.get(job_id) is record and record.reported is not None:
                if record.reported.get("state") == "starting":
                    record.reported["state"] = "running"
                record.advance("started")

        def refused(failure: Any) -> None:
            if is_link_error(failure):
                return  # the next hello says whether it started
            if self.records.get(job_id) is record:
                record.reported = None  # it never ran
            self._settle(job_id, local_error(failure))

        self._call("start_job", text).addCallbacks(started, refused)
        return outcome

    def expect(self, spec: JobSpec) -> None:
        """The admin's own spec of a job it adopts: its outcome is checked against it."""
        job_id = str(spec.job_id)
        record = self.records.get(job_id)
        if record is None:
            attempt = int(spec.attempt)
            record = self.records[job_id] = JobRecord(job_id, attempt, EXPECTED)
        record.spec = spec

    def job_outcome(self, job_id: str, attempt: int) -> defer.Deferred[Outcome]:
        """Wait for the outcome of a job the worker already runs (adopted)."""
        outcome: defer.Deferred[Outcome] = defer.Deferred()
        record = self.records.get(job_id) or JobRecord(job_id, attempt, EXPECTED)
        self.records[job_id] = record
        record.attempt, record.waiter = attempt, outcome
        state = self._reported_states.get(job_id, "running")
        record.reported = {"job_id": job_id, "attempt": attempt, "state": state, "progress": {}}
        record.advance("adopt finished" if state == "finished" else "adopt")
        if state == "finished":
            self._fetch_outcome(job_id)
        return outcome

    def acknowledge(self, job_id: str) -> defer.Deferred[Report]:
        """Let the worker commit the outcome of the current attempt.

        Fires with the committed report (``committed`` False when the worker undid a
        commit that failed); a reply that is not the job's own becomes a system failure
        of the job. A refusal or an error of the commit
        errbacks with it (RemoteError, UnknownJob). Either way the job is over here.
        """
        record = self.records.get(job_id)
        if record is not None and record.state == REJECTED and record.spec is not None:
            return defer.Deferred.fromCoroutine(self._fail_rejected(record))
        attempt = record.attempt if record is not None else 0
        spec = record.spec if record is not None else None
        if record is not None:
            record.advance("acknowledge")

        def over(result: Any) -> Any:
            self.records.pop(job_id, None)
            return result

        d = defer.Deferred.fromCoroutine(self._call_until_done("acknowledge", job_id, attempt))
        d.addCallback(lambda reply: self._own_report(job_id, attempt, spec, reply))
        return d.addBoth(over)

    def cancel_job(self, job_id: str) -> defer.Deferred[None]:
        """Kill the job on the worker and remove its work files; fires when it is quiet.

        A worker whose link is down may still be running the job: it is told once it is
        back, and the Deferred fires then, or when it is declared lost (its jobs end
        with it, as every lost worker's do).
        """
        record = self.records.pop(job_id, None)
        if record is not None:
            record.fail(WorkerGone(f"job {job_id} was cancelled on {self.name}"))
        if self.lost:
            return defer.succeed(None)
        told = defer.Deferred.fromCoroutine(self._call_until_done("cancel_job", job_id))
        return told.addBoth(lambda _: None)

    def fail_source(self, spec: JobSpec, failure: JobFailure) -> defer.Deferred[Report]:
        """Have the worker move a dead job's source to failed."""
        return defer.Deferred.fromCoroutine(
            self._call_until_done(
                "fail_source", encode(spec.without_targets().to_wire()), failure.to_dict()
            )
        ).addCallback(lambda reply: self._own_report(spec.job_id, spec.attempt, spec, reply))

    def clean_job(self, spec: JobSpec) -> defer.Deferred[int]:
        """Have the worker kill a dead attempt's leftovers and remove its work folder."""
        return self._call("clean_job", encode(spec.without_targets().to_wire()))

    def when_disconnected(self) -> defer.Deferred[None]:
        """Fires when the worker is lost."""
        return self._lost.when_fired()

    # -- what the worker claims about its jobs

    def _read(
        self, job_id: str, attempt: int | None, spec: JobSpec | None, value: Any, kind: type[O]
    ) -> O | str:
        """The worker's record if it is the job's own; else why not (logged as an error
        naming the worker)."""
        try:
            return checks.read_outcome(job_id, attempt, spec, value, kind)
        except BadRecord as e:
            field = e.field
        reason = f"worker sent an outcome that does not match job {job_id}: {field}"
        self.log.error("worker {worker}: {reason}", worker=self.name, reason=reason)
        return reason

    def _own_report(
        self, job_id: str, attempt: int | None, spec: JobSpec | None, reply: Any
    ) -> Report:
        """A committed report if it is the job's own, else a system failure of the job.

        Files may have moved already: what the admin can still do is never write the
        row of another job.
        """
        report = self._read(job_id, attempt, spec, reply, Report)
        if isinstance(report, str):
            return self._failure_report(job_id, attempt, spec, report)
        return report

    def _failure_report(
        self, job_id: str, attempt: int | None, spec: JobSpec | None, reason: str
    ) -> Report:
        return failure_report(
            job_id, attempt, spec, JobFailure(SYSTEM, reason), self.name, self.workers.clock
        )

    async def _fail_rejected(self, record: JobRecord) -> Report:
        """The last attempt's outcome was not its own: nothing of it is committed; the
        source goes to failed with the admin's spec and the reason."""
        spec = record.spec
        assert spec is not None and record.outcome is not None
        assert record.outcome.failure is not None
        failure = record.outcome.failure
        record.advance("acknowledge")
        await self.cancel_job(record.job_id)  # the worker moves nothing of that attempt
        return await self.fail_source(spec, failure)

    # -- news from the manager

    def _settle(self, job_id: str, result: Any) -> None:
        """A job's outcome, or the error that ends it: the one path either takes."""
        record = self.records.get(job_id)
        if record is None or not record.waiting:
            return
        if isinstance(result, BaseException):
            del self.records[job_id]
            record.fail(result)
            return
        outcome = self._read(job_id, record.attempt, record.spec, result, Outcome)
        if isinstance(outcome, str):
            failed = self._failure_report(job_id, record.attempt, record.spec, outcome)
            record.settle(failed, own=False)
        else:
            record.settle(outcome, own=True)

    def _fetch_outcome(self, job_id: str) -> None:
        def got(outcome: Any) -> None:
            if outcome is not None:  # None: it still runs
                self._settle(job_id, outcome)

        def failed(failure: Any) -> None:
            if is_unknown_job(failure):
                self._settle(job_id, WorkerGone(f"{self.name} no longer has job {job_id}"))

        self._call("outcome", job_id).addCallbacks(got, failed)

    def hello(self, facts: dict[str, Any], jobs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The worker (re)attached with its jobs; returns the jobs the admin did not know.

        ``facts`` and ``jobs`` are checked already (:func:`checks.facts`, :func:`checks.jobs`).
        """
        self.facts = dict(facts)
        self.attached = True
        self.last_heard = self.workers.clock.seconds()
        reported = {str(j["job_id"]): j for j in jobs}
        self._note_components(list(reported.values()), facts.get("components"))
        self._reported_states = {job_id: str(j.get("state")) for job_id, j in reported.items()}
        # Unknown: neither waited for nor finished and waiting for its acknowledgement.
        records = self.records
        unknown = [
            j
            for job_id, j in reported.items()
            if job_id not in records
            or not (records[job_id].waiting or records[job_id].outcome is not None)
        ]
        # Jobs we wait for that the worker no longer has: lost with its previous life.
        # (A start request in flight died with the old connection, before this hello.)
        for job_id in [i for i, r in records.items() if r.waiting and i not in reported]:
            self._settle(job_id, WorkerGone(f"{self.name} restarted without job {job_id}"))
        for job_id, record in self.records.items():
            listed = reported.get(job_id)
            record.reported = None
            if listed is not None and record.waiting:
                record.reported = {k: v for k, v in listed.items() if k != "spec"}
        for job_id, listed in reported.items():
            waiting = self.records.get(job_id)
            if waiting is not None and waiting.waiting and listed.get("state") == "finished":
                waiting.advance("finished")
                self._fetch_outcome(job_id)
        self._state_changed()
        return unknown

    def heartbeat(self, state: dict[str, Any]) -> None:
        """The worker is alive; note its jobs' states and progress (checked already)."""
        self.last_heard = self.workers.clock.seconds()
        pending = state.get("pending")
        self.pending = list(pending) if isinstance(pending, list) else []
        self._note_components(state.get("jobs", []), state.get("components"))
        for j in state.get("jobs", []):
            record = self.records.get(str(j.get("job_id")))
            if record is not None and record.waiting:
                before = (record.reported or {}).get("state")
                record.reported = j
                if j.get("state") == "finished" and before != "finished":
                    record.advance("finished")
                    self._fetch_outcome(record.job_id)
                elif j.get("state") == "running":
                    record.advance("running")

    def _note_components(self, jobs: Any, components: Any) -> None:
        if isinstance(jobs, list):
            self.reported_jobs = [
                {k: v for k, v in j.items() if k != "spec"} for j in jobs if isinstance(j, dict)
            ]
        # A worker of an earlier version reports no components: unknown, not "none".
        self.components = dict(components) if isinstance(components, dict) else None

    def finished(self, job_id: str, outcome: Any) -> None:
        """A job's outcome arrived (a wire value, checked here)."""
        self.last_heard = self.workers.clock.seconds()
        record = self.records.get(job_id)
        if record is not None and record.reported is not None:
            record.reported["state"] = "finished"
            record.advance("finished")
        self._settle(job_id, outcome)

    def detached(self) -> None:
        """The link dropped; the worker may come back before it counts as lost."""
        self.attached = False
        self._state_changed()

    def declare_lost(self) -> None:
        """Silent too long: every job it had fails over; it may come back as new."""
        self.lost = True
        self.attached = False
        for job_id in [i for i, r in self.records.items() if r.waiting]:
            self._settle(job_id, WorkerGone(f"worker {self.name!r} was lost"))
        self.records.clear()
        self._state_changed()
        self._lost.fire_if_not_fired(None)
