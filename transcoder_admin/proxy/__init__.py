"""The admin's view of the cluster: its manager and the workers logged in to it.

:class:`ManagerSet` attaches the admin to its manager (the embedded one in this process,
or a standalone one over PB) and fires ``attached``/``detached``.  :class:`WorkerSet`
keeps one :class:`WorkerProxy` per worker, an :class:`IWorkerConnection` whose calls
go through the manager, and fires ``worker-added``/``worker-removed`` (a worker is
removed when it has been silent for ``workers.lost-timeout`` seconds, not when one TCP
connection drops) and ``worker-attached``/``worker-detached`` as its link comes and
goes (events ``link_up``/``link_down``).  Liveness is measured on the injected clock.

A worker's messages are claims (:mod:`.checks`): a worker whose hello facts are wrong
is refused, a wrong heartbeat is ignored, and an outcome that is not the started job's
own becomes a system failure of that attempt.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.application.service import Service
from twisted.internet import defer, task
from twisted.logger import Logger
from twisted.spread import pb
from zope.interface import implementer

from ..events import Event
from ..manager import ADMIN_USER, Manager
from ..pblink import PBLink
from ..prognosis import SYSTEM, JobFailure
from ..records import report_spec
from ..times import iso
from ..wire import TooBig, decode, encode
from ..worker.interfaces import IWorkerConnection, UnknownJob, WorkerGone
from . import checks

#: Errors of a call that may not have reached the worker (the link went down).
LINK_ERRORS = (pb.PBConnectionLost, pb.DeadReferenceError)
_NOT_ATTACHED = "transcoder_admin.manager.WorkerNotAttached"
_UNKNOWN_JOB = "transcoder_admin.worker.daemon.RemoteUnknownJob"
#: Seconds between two log lines about one worker's bad messages of one kind.
COMPLAIN_EVERY = 60.0


def _is_link_error(failure: Any) -> bool:
    return bool(failure.check(*LINK_ERRORS, _NOT_ATTACHED))


@implementer(IWorkerConnection)
class WorkerProxy:
    """The admin's handle on one worker, through the manager."""

    log = Logger()

    def __init__(self, workers: WorkerSet, name: str) -> None:
        self.workers = workers
        self.name = name
        self.facts: dict[str, Any] = {}
        self.jobs: dict[str, dict[str, Any]] = {}  # job id → last reported state
        self.attached = False
        self.lost = False
        self.last_heard = 0.0
        self.pending: list[dict[str, Any]] = []  # its monitors' pending files (heartbeat)
        #: Every job it last reported (no specs), and its other components (monitors,
        #: failed jobs kept): what the ComponentSet mirrors.
        self.reported_jobs: list[dict[str, Any]] = []
        self.components: dict[str, Any] | None = None  # None: it does not report them
        self._reported_states: dict[str, str] = {}  # job id → state, as of the last hello
        self._outcomes: dict[str, defer.Deferred[dict[str, Any]]] = {}
        self._finished: dict[str, dict[str, Any]] = {}  # outcomes not yet acknowledged
        self._attempts: dict[str, int] = {}
        #: The spec of each job it runs for this admin, as the admin started or rebuilt it:
        #: what its outcomes and rows are checked against.
        self._specs: dict[str, dict[str, Any]] = {}
        self._rejected: set[str] = set()  # jobs whose outcome was not their own
        self._state_change: list[defer.Deferred[None]] = []
        self._disconnected: list[defer.Deferred[None]] = []

    # -- facts

    @property
    def reported(self) -> set[str]:
        """Ids of the jobs the worker had when it last said hello."""
        return set(self._reported_states)

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
            if not _is_link_error(value):
                raise _local_error(value)
            await self._wait_state_change()

    def _wait_state_change(self) -> defer.Deferred[None]:
        d: defer.Deferred[None] = defer.Deferred()
        self._state_change.append(d)
        return d

    def _state_changed(self) -> None:
        waiting, self._state_change = self._state_change, []
        for d in waiting:
            d.callback(None)

    def start_job(self, spec: dict[str, Any]) -> defer.Deferred[dict[str, Any]]:
        """Start a job; fires with its outcome when the worker reports it."""
        job_id = str(spec["job_id"])
        try:
            text = encode(spec)
        except TooBig as e:
            return defer.fail(TooBig(f"the job's configuration is too big to send: {e}"))
        outcome: defer.Deferred[dict[str, Any]] = defer.Deferred()
        self._outcomes[job_id] = outcome
        self._attempts[job_id] = int(spec.get("attempt", 0))
        self._specs[job_id] = spec
        self.jobs[job_id] = {"job_id": job_id, "state": "starting", "progress": {}}

        def started(_: Any) -> None:
            if self.jobs.get(job_id, {}).get("state") == "starting":
                self.jobs[job_id]["state"] = "running"

        def refused(failure: Any) -> None:
            if _is_link_error(failure):
                return  # the next hello says whether it started
            self.jobs.pop(job_id, None)  # it never ran
            self._attempts.pop(job_id, None)
            self._settle(job_id, _local_error(failure))

        self._call("start_job", text).addCallbacks(started, refused)
        return outcome

    def expect(self, spec: dict[str, Any]) -> None:
        """The admin's own spec of a job it adopts: its outcome is checked against it."""
        self._specs[str(spec["job_id"])] = spec

    def job_outcome(self, job_id: str, attempt: int) -> defer.Deferred[dict[str, Any]]:
        """Wait for the outcome of a job the worker already runs (adopted)."""
        outcome: defer.Deferred[dict[str, Any]] = defer.Deferred()
        self._outcomes[job_id] = outcome
        self._attempts[job_id] = attempt
        state = self._reported_states.get(job_id, "running")
        self.jobs[job_id] = {"job_id": job_id, "attempt": attempt, "state": state, "progress": {}}
        if state == "finished":
            self._fetch_outcome(job_id)
        return outcome

    def acknowledge(self, job_id: str) -> defer.Deferred[dict[str, Any]]:
        """Let the worker commit the outcome of the current attempt.

        Fires with the outcome updated by what committing changed (``committed`` False
        when the worker undid a commit that failed); a reply that is not the job's own
        becomes a system failure of the job. A refusal or an error of the commit
        errbacks with it (RemoteError, UnknownJob). Either way the job is over here.
        """
        if job_id in self._rejected and job_id in self._specs:
            return defer.Deferred.fromCoroutine(self._fail_rejected(job_id))
        attempt = self._attempts.get(job_id, 0)
        outcome = self._finished.get(job_id, {})
        spec = self._spec_of(job_id)

        def over(result: Any) -> Any:
            self.jobs.pop(job_id, None)
            self._attempts.pop(job_id, None)
            self._finished.pop(job_id, None)
            self._specs.pop(job_id, None)
            return result

        d = defer.Deferred.fromCoroutine(self._call_until_done("acknowledge", job_id, attempt))
        d.addCallback(lambda changes: self._own_report(spec, {**outcome, **changes}))
        return d.addBoth(over)

    def cancel_job(self, job_id: str) -> defer.Deferred[None]:
        """Kill the job on the worker and remove its work files."""
        self._settle(job_id, WorkerGone(f"job {job_id} was cancelled on {self.name}"))
        self._finished.pop(job_id, None)
        self._attempts.pop(job_id, None)
        self._specs.pop(job_id, None)
        self._rejected.discard(job_id)
        self.jobs.pop(job_id, None)
        if not self.attached:
            return defer.succeed(None)
        return self._call("cancel_job", job_id).addBoth(lambda _: None)

    def fail_source(self, spec: dict[str, Any], failure: dict[str, Any]) -> defer.Deferred[Any]:
        """Have the worker move a dead job's source to failed."""
        return defer.Deferred.fromCoroutine(
            self._call_until_done("fail_source", encode(report_spec(spec)), failure)
        ).addCallback(lambda report: self._own_report(spec, report))

    def clean_job(self, spec: dict[str, Any]) -> defer.Deferred[int]:
        """Have the worker kill a dead attempt's leftovers and remove its work folder."""
        return self._call("clean_job", encode(spec))

    def when_disconnected(self) -> defer.Deferred[None]:
        """Fires when the worker is lost."""
        d: defer.Deferred[None] = defer.Deferred()
        if self.lost:
            d.callback(None)
        else:
            self._disconnected.append(d)
        return d

    # -- what the worker claims about its jobs

    def _spec_of(self, job_id: str) -> dict[str, Any]:
        """The job as the admin started it (without its spec: its id and attempt)."""
        return self._specs.get(job_id) or {"job_id": job_id, "attempt": self._attempts.get(job_id)}

    def _mismatch(self, spec: dict[str, Any], report: Any) -> str | None:
        """Why a report is not the job's own (logged as an error naming the worker), or None."""
        field = checks.outcome_mismatch(spec, report)
        if field is None:
            return None
        reason = f"worker sent an outcome that does not match job {spec.get('job_id')}: {field}"
        self.log.error("worker {worker}: {reason}", worker=self.name, reason=reason)
        return reason

    def _own_report(self, spec: dict[str, Any], report: Any) -> dict[str, Any]:
        """A committed report if it is the job's own, else a system failure of the job.

        Files may have moved already: what the admin can still do is never write the
        row of another job.
        """
        reason = self._mismatch(spec, report)
        return report if reason is None else self._failure_report(spec, reason)

    def _failure_report(self, spec: dict[str, Any], reason: str) -> dict[str, Any]:
        """A report of the job's own fields with a system failure (no report file)."""
        report = {k: spec.get(k) for k in ("job_id", "attempt", "customer", "profile", "relpath")}
        times = {k: spec.get(k) for k in ("detected", "queued", "started")}
        return {
            **report,
            "source": spec.get("source"),
            "outcome": "failed",
            "failure": JobFailure(SYSTEM, reason).to_dict(),
            "report_path": None,
            "backend": spec.get("backend", "ffmpeg"),
            "worker": self.name,
            "times": {**times, "finished": iso(self.workers.clock.seconds())},
            "comment": reason,
        }

    async def _fail_rejected(self, job_id: str) -> dict[str, Any]:
        """The last attempt's outcome was not its own: nothing of it is committed; the
        source goes to failed with the admin's spec and the reason."""
        spec = self._spec_of(job_id)
        failure = self._finished[job_id]["failure"]
        await self.cancel_job(job_id)  # the worker moves nothing of that attempt
        report: dict[str, Any] = await self.fail_source(spec, failure)
        return report

    # -- news from the manager

    def _settle(self, job_id: str, result: Any) -> None:
        d = self._outcomes.pop(job_id, None)
        if d is None or d.called:
            return
        if isinstance(result, BaseException):
            self._specs.pop(job_id, None)
            d.errback(result)
            return
        spec = self._spec_of(job_id)
        reason = self._mismatch(spec, result)
        if reason is not None:
            self._rejected.add(job_id)
            result = self._failure_report(spec, reason)
        self._finished[job_id] = result
        d.callback(result)

    def _fetch_outcome(self, job_id: str) -> None:
        def got(outcome: Any) -> None:
            if outcome is not None:  # None: it still runs
                self._settle(job_id, outcome)

        def failed(failure: Any) -> None:
            if failure.check(_UNKNOWN_JOB):
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
        unknown = [
            j
            for job_id, j in reported.items()
            if job_id not in self._outcomes and job_id not in self._finished
        ]
        # Jobs we wait for that the worker no longer has: lost with its previous life.
        # (A start request in flight died with the old connection, before this hello.)
        for job_id in [j for j in self._outcomes if j not in reported]:
            self._settle(job_id, WorkerGone(f"{self.name} restarted without job {job_id}"))
        self.jobs = {
            job_id: {k: v for k, v in j.items() if k != "spec"}
            for job_id, j in reported.items()
            if job_id in self._outcomes
        }
        for job_id, j in reported.items():
            if job_id in self._outcomes and j.get("state") == "finished":
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
            job_id = str(j.get("job_id"))
            if job_id in self._outcomes:
                before = self.jobs.get(job_id, {}).get("state")
                self.jobs[job_id] = j
                if j.get("state") == "finished" and before != "finished":
                    self._fetch_outcome(job_id)

    def _note_components(self, jobs: Any, components: Any) -> None:
        if isinstance(jobs, list):
            self.reported_jobs = [
                {k: v for k, v in j.items() if k != "spec"} for j in jobs if isinstance(j, dict)
            ]
        # A worker of an earlier version reports no components: unknown, not "none".
        self.components = dict(components) if isinstance(components, dict) else None

    def finished(self, job_id: str, outcome: dict[str, Any]) -> None:
        """A job's outcome arrived."""
        self.last_heard = self.workers.clock.seconds()
        if job_id in self.jobs:
            self.jobs[job_id]["state"] = "finished"
        self._settle(job_id, outcome)

    def detached(self) -> None:
        """The link dropped; the worker may come back before it counts as lost."""
        self.attached = False
        self._state_changed()

    def declare_lost(self) -> None:
        """Silent too long: every job it had fails over; it may come back as new."""
        self.lost = True
        self.attached = False
        for job_id in list(self._outcomes):
            self._settle(job_id, WorkerGone(f"worker {self.name!r} was lost"))
        self._finished.clear()
        self._specs.clear()
        self._rejected.clear()
        self._state_changed()
        waiting, self._disconnected = self._disconnected, []
        for d in waiting:
            d.callback(None)


class RemoteError(Exception):
    """A worker refused a call; the message is the worker's."""


def _local_error(failure: Any) -> Exception:
    """A local exception for a failed remote call (PB sends copies of failures)."""
    if failure.check(_UNKNOWN_JOB):
        return UnknownJob(failure.getErrorMessage())
    if isinstance(failure.value, Exception) and not isinstance(failure.value, pb.RemoteError):
        return failure.value
    return RemoteError(failure.getErrorMessage())


class WorkerSet:
    """Every worker the admin knows, by name; decides when one is lost."""

    log = Logger()

    def __init__(self, clock: Any, lost_timeout: float) -> None:
        self.clock = clock
        self.lost_timeout = lost_timeout
        self.proxies: dict[str, WorkerProxy] = {}
        self.worker_added: Event[WorkerProxy] = Event("worker-added")
        self.worker_removed: Event[str] = Event("worker-removed")
        self.link_up: Event[WorkerProxy] = Event("worker-attached")
        self.link_down: Event[WorkerProxy] = Event("worker-detached")
        #: A worker's heartbeat arrived (its jobs and components as it reports them).
        self.worker_reported: Event[WorkerProxy] = Event("worker-reported")
        #: (worker name, event) from a worker's monitor components (monitoring.on-workers).
        self.monitor_events: Event[tuple[str, dict[str, Any]]] = Event("monitor-event")
        #: Called with (proxy, job) for each job a worker reports that the admin did not
        #: start in this life; True if it adopted the job, else the job is cancelled.
        self.on_unknown_job: Callable[[WorkerProxy, dict[str, Any]], bool] = lambda p, j: False
        self.manager: Any = None  # set by ManagerSet: call(name, method, *args), drop(name)
        self._check: task.LoopingCall | None = None
        self._complained: dict[tuple[str, str], float] = {}  # (worker, what) → when logged

    def start(self) -> None:
        """Check liveness a few times per lost-timeout."""
        self._check = task.LoopingCall(self.check)
        self._check.clock = self.clock
        self._check.start(max(0.1, self.lost_timeout / 10), now=False)

    def stop(self) -> None:
        """Stop checking."""
        if self._check is not None and self._check.running:
            self._check.stop()

    def call(self, name: str, method: str, *args: Any) -> defer.Deferred[Any]:
        """Call a worker through the manager."""
        if self.manager is None:
            return defer.fail(pb.PBConnectionLost("no manager"))
        return self.manager.call_worker(name, method, *args)

    def check(self) -> None:
        """Declare lost every worker silent for longer than lost-timeout."""
        now = self.clock.seconds()
        for name, proxy in list(self.proxies.items()):
            if now - proxy.last_heard > self.lost_timeout:
                self.log.warn(
                    "worker {name} silent for {silent:.1f} s (lost-timeout {timeout:g} s): "
                    "lost; its jobs start again elsewhere",
                    name=name,
                    silent=now - proxy.last_heard,
                    timeout=self.lost_timeout,
                )
                self.lose(name)

    def lose(self, name: str) -> None:
        """Forget a worker; its running jobs fail over."""
        proxy = self.proxies.pop(name, None)
        if proxy is None:
            return
        was_attached = proxy.attached
        # Out of the pool before its jobs fail over, so that none starts again on it.
        proxy.attached = False
        if was_attached:
            self.link_down.fire(proxy)
        self.worker_removed.fire(name)
        proxy.declare_lost()
        if self.manager is not None:
            self.manager.drop_worker(name)

    # -- the ManagerListener side

    def _complain(self, name: str, what: str) -> bool:
        """Whether to log a worker's bad message now: once per worker and kind a minute."""
        now = self.clock.seconds()
        last = self._complained.get((name, what))
        if last is not None and now - last < COMPLAIN_EVERY:
            return False
        self._complained[(name, what)] = now
        return True

    def _checked(
        self,
        name: str,
        what: str,
        check: Callable[[dict[str, Any]], dict[str, Any]],
        value: dict[str, Any],
    ) -> dict[str, Any] | None:
        """A worker's message passed through its check, or None (logged once a minute)."""
        try:
            return check(value)
        except checks.BadFacts as problem:
            if self._complain(name, what):
                self.log.warn(
                    "{what} of worker {name} ignored: bad {field} ({why})",
                    what=what,
                    name=name,
                    field=problem.field,
                    why=problem.why,
                )
            return None

    def refuse(self, name: str, problem: checks.BadFacts) -> None:
        """A worker sent facts the admin cannot use: it is not in the pool; drop its login."""
        if self._complain(name, "hello"):
            self.log.error(
                "worker {name} refused: bad {field} in its hello ({why}); its login is dropped",
                name=name,
                field=problem.field,
                why=problem.why,
            )
        if name in self.proxies:
            self.lose(name)
        elif self.manager is not None:
            self.manager.drop_worker(name)

    def worker_attached(self, name: str, info: dict[str, Any], jobs: list[Any]) -> None:
        """A worker logged in (again) with its jobs; refused if its facts are wrong."""
        try:
            info, jobs = checks.facts(name, info), checks.jobs(jobs)
        except checks.BadFacts as problem:
            self.refuse(name, problem)
            return
        proxy = self.proxies.get(name)
        new = proxy is None
        if proxy is None:
            proxy = self.proxies[name] = WorkerProxy(self, name)
        unknown = proxy.hello(info, list(jobs))
        for job in unknown:
            if not self.on_unknown_job(proxy, job):
                self.log.warn(
                    "worker {worker} runs job {job_id} (attempt {attempt}) that is no longer "
                    "current: cancelled, it moves nothing",
                    worker=name,
                    job_id=job.get("job_id"),
                    attempt=job.get("attempt"),
                )
                self.call(name, "cancel_job", job["job_id"]).addErrback(lambda _: None)
        if new:
            self.worker_added.fire(proxy)
        self.link_up.fire(proxy)

    def worker_detached(self, name: str) -> None:
        """A worker's link dropped."""
        proxy = self.proxies.get(name)
        if proxy is not None and proxy.attached:
            proxy.detached()
            self.link_down.fire(proxy)

    def worker_heartbeat(self, name: str, state: dict[str, Any]) -> None:
        """A worker's heartbeat; one with wrong values is ignored (with a warning)."""
        proxy = self.proxies.get(name)
        if proxy is None:
            return
        checked = self._checked(name, "heartbeat", checks.heartbeat, state)
        if checked is None:
            return
        proxy.heartbeat(checked)
        self.worker_reported.fire(proxy)

    def job_finished(self, name: str, job_id: str, outcome: dict[str, Any]) -> None:
        """A job's outcome (checked by the proxy against the job it started)."""
        proxy = self.proxies.get(name)
        if proxy is not None:
            proxy.finished(str(job_id), outcome)
        else:
            self.log.warn(
                "outcome of job {job_id} from unknown worker {name} ignored",
                job_id=repr(job_id),
                name=name,
            )

    def monitor_event(self, name: str, event: dict[str, Any]) -> None:
        """News from a worker's monitor component (one with wrong values is ignored)."""
        proxy = self.proxies.get(name)
        if proxy is None:
            return
        proxy.last_heard = self.clock.seconds()
        checked = self._checked(name, "monitor event", checks.monitor_event, event)
        if checked is None:
            return
        self.monitor_events.fire((name, checked))

    def all_detached(self) -> None:
        """The manager went away: every worker's link is down (none is lost yet)."""
        for name in list(self.proxies):
            self.worker_detached(name)


class _AdminMind(pb.Referenceable):
    """What a standalone manager calls on this admin."""

    def __init__(self, workers: WorkerSet) -> None:
        self.workers = workers

    def remote_worker_attached(self, name: str, info: Any, jobs: Any) -> None:  # noqa: D102
        self.workers.worker_attached(name, decode(info), decode(jobs))

    def remote_worker_detached(self, name: str) -> None:  # noqa: D102
        self.workers.worker_detached(name)

    def remote_worker_heartbeat(self, name: str, state: Any) -> None:  # noqa: D102
        self.workers.worker_heartbeat(name, decode(state))

    def remote_job_finished(self, name: str, job_id: str, outcome: Any) -> None:  # noqa: D102
        self.workers.job_finished(name, job_id, decode(outcome))

    def remote_monitor_event(self, name: str, event: Any) -> None:  # noqa: D102
        self.workers.monitor_event(name, decode(event))


class _EmbeddedLink:
    """The admin attached to a manager in its own process."""

    def __init__(self, manager: Manager, workers: WorkerSet) -> None:
        self.manager = manager
        self.workers = workers

    def attach(self) -> dict[str, dict[str, Any]]:
        return self.manager.attach(self.workers)

    def call_worker(self, name: str, method: str, *args: Any) -> defer.Deferred[Any]:
        return self.manager.call_worker(name, method, *args)

    def drop_worker(self, name: str) -> None:
        self.manager.drop_worker(name)


class _RemoteLink:
    """The admin attached to a standalone manager over PB."""

    def __init__(self, perspective: Any) -> None:
        self.perspective = perspective

    def call_worker(self, name: str, method: str, *args: Any) -> defer.Deferred[Any]:
        return self.perspective.callRemote("call_worker", name, method, *args)

    def drop_worker(self, name: str) -> None:
        self.perspective.callRemote("drop_worker", name).addErrback(lambda _: None)


class ManagerSet(Service):
    """The admin's link to its manager: ``attached`` and ``detached`` events."""

    log = Logger()

    def __init__(self, workers: WorkerSet, reactor: Any) -> None:
        self.workers = workers
        self.reactor = reactor
        self.attached: Event[str] = Event("attached")
        self.detached: Event[str] = Event("detached")
        self.is_attached = False
        self._embedded: Manager | None = None
        self._link: PBLink | None = None
        self._first: defer.Deferred[None] = defer.Deferred()

    def use_embedded(self, manager: Manager) -> None:
        """Attach to the manager running in this process."""
        self._embedded = manager

    def use_remote(self, endpoint: str, password: bytes) -> None:
        """Attach to a standalone manager at ``endpoint`` as the ``admin`` user."""
        self._link = PBLink(
            self.reactor,
            endpoint,
            ADMIN_USER,
            password,
            _AdminMind(self.workers),
            on_login=self._logged_in,
            on_lost=self._lost,
            what="admin",
        )

    def start(self) -> defer.Deferred[None]:
        """Attach; fires when attached the first time."""
        if self._embedded is not None:
            link = _EmbeddedLink(self._embedded, self.workers)
            self.workers.manager = link
            self._attached("embedded", link.attach())
            return defer.succeed(None)
        assert self._link is not None, "use_embedded() or use_remote() first"
        self._link.start()
        return self._first

    async def _logged_in(self, perspective: Any) -> None:
        self.workers.manager = _RemoteLink(perspective)
        snapshot = await perspective.callRemote("attach")
        assert self._link is not None
        self._attached(self._link.endpoint, snapshot)

    def _attached(self, where: str, snapshot: dict[str, dict[str, Any]]) -> None:
        self.is_attached = True
        self.log.info(
            "attached to the manager ({where}): {count} workers", where=where, count=len(snapshot)
        )
        for name, entry in snapshot.items():
            info = decode(entry.get("info"))  # JSON text from a standalone manager
            if info:
                self._attach_known(name, info, decode(entry.get("jobs")) or [])
        self.attached.fire(where)
        if not self._first.called:
            self._first.callback(None)

    def _attach_known(self, name: str, info: dict[str, Any], jobs: list[Any]) -> None:
        """A worker already logged in: ask it for its jobs with their specs (to adopt)."""

        def got(full: Any) -> None:
            self.workers.worker_attached(name, info, full if isinstance(full, list) else jobs)

        def failed(failure: Any) -> None:
            self.log.warn(
                "cannot get the jobs of worker {name}: {error}", name=name, error=failure.value
            )
            self.workers.worker_attached(name, info, jobs)

        self.workers.call(name, "jobs").addCallback(decode).addCallbacks(got, failed)

    def _lost(self) -> None:
        self.is_attached = False
        self.workers.manager = None
        self.workers.all_detached()
        assert self._link is not None
        self.detached.fire(self._link.endpoint)

    def stop(self) -> None:
        """Detach (the workers keep running their jobs)."""
        if self._link is not None:
            self._link.stop()
        if self._embedded is not None:
            self._embedded.detach(self.workers)


__all__ = ["ManagerSet", "WorkerProxy", "WorkerSet"]
