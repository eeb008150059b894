"""Every worker the admin knows, by name: hellos, heartbeats, outcomes, and liveness.

A worker is lost when it has been silent for ``workers.lost-timeout`` seconds, not when
one connection drops (``link_up``/``link_down`` say that).  Its messages are claims
(:mod:`.checks`): wrong hello facts refuse it, a wrong heartbeat is ignored (logged once
a minute per worker and kind).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.internet import defer, task
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger

from ..events import Event
from ..pberrors import LinkDown
from . import checks
from .worker import WorkerProxy

#: Seconds between two log lines about one worker's bad messages of one kind.
COMPLAIN_EVERY = 60.0


class WorkerSet:
    """Every worker the admin knows, by name; decides when one is lost."""

    log = Logger()

    def __init__(self, clock: IReactorTime, lost_timeout: float) -> None:
        self.clock = clock
        self.lost_timeout = lost_timeout
        self.proxies: dict[str, WorkerProxy] = {}
        self.worker_added: Event[WorkerProxy] = Event("worker-added")
        self.worker_removed: Event[str] = Event("worker-removed")
        #: A warning or error a worker logged: (name, {level, text, time}).
        self.worker_message: Event[tuple[str, dict[str, Any]]] = Event("worker-message")
        #: A worker silent for longer than lost-timeout: (name, why).
        self.worker_lost: Event[tuple[str, str]] = Event("worker-lost")
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
            return defer.fail(LinkDown("no manager"))
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
                silent = now - proxy.last_heard
                self.worker_lost.fire((name, f"silent for {silent:.0f} s"))

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
        for message in checked.get("messages") or []:
            self.worker_message.fire((name, message))

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
