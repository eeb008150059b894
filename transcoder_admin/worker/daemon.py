"""The worker daemon: ``transcoder-admin worker``.

Connects to the manager (an endpoint string: TCP or TLS), logs in with its name and
password on every connection, says what it runs, sends heartbeats, and runs the
admin's jobs with its own roots through a :class:`JobHost`.  Jobs outlive the link:
when the manager or the admin goes away the worker keeps running them, reconnects with
back-off, and reports them again, finished ones with their outcome, so the admin can
adopt them.  Files move only on the admin's acknowledgement of the current attempt.

A worker with an ``orphan_timeout`` (the admin's local workers get ten times
``workers.lost-timeout``) stops by itself once it has been alone that long: not logged
in to its manager, no job running and no file operation of the admin's under way.  A
job that runs keeps it waiting (a new admin may adopt it); the clock starts when the
last one ends.  Standalone workers default to 0: they keep reconnecting for ever.
"""

from __future__ import annotations

import os
import socket
from typing import Any

from twisted.application.service import Service
from twisted.internet import defer, task
from twisted.logger import Logger
from twisted.spread import pb

from ..context.paths import Roots
from ..monitoring.remote import MonitorHost
from ..pblink import PBLink
from ..prognosis import JobFailure
from ..reactors import IFarmReactor
from ..records import JobSpec, outcome_wire, report_wire
from ..wire import TooBig, decode, encode
from .interfaces import UnknownJob
from .local import JobHost
from .messages import WorkerMessages

#: Seconds between heartbeats unless told otherwise.
HEARTBEAT_INTERVAL = 5.0
#: Longest wait between two connection attempts (s).
MAX_RECONNECT_DELAY = 5.0


class RemoteUnknownJob(pb.Error):
    """The worker has no such job (or not for that attempt)."""


class WorkerMind(pb.Referenceable):
    """What the manager (for the admin) may call on this worker."""

    def __init__(self, daemon: WorkerDaemon) -> None:
        self.daemon = daemon

    def remote_start_job(self, spec: Any) -> bool:  # noqa: D102
        return self.daemon.start_job(JobSpec.from_wire(decode(spec)))

    def remote_acknowledge(self, job_id: str, attempt: int) -> defer.Deferred[Any]:
        """Commit; answers only what committing changed (the admin has the outcome)."""
        d = self.daemon.busy_with(self.daemon.host.acknowledge(job_id, attempt))
        return _remote_errors(d).addCallback(lambda report: encode(committed_changes(report)))

    def remote_outcome(self, job_id: str) -> Any:  # noqa: D102
        try:
            outcome = self.daemon.host.outcome(job_id)
        except UnknownJob as e:
            raise RemoteUnknownJob(str(e)) from None
        return encode(outcome_wire(outcome)) if outcome is not None else None

    def remote_cancel_job(self, job_id: str) -> defer.Deferred[Any]:  # noqa: D102
        d = self.daemon.busy_with(self.daemon.host.cancel_job(job_id))
        return d.addCallback(lambda _: True)

    def remote_fail_source(self, spec: Any, failure: dict[str, Any]) -> defer.Deferred[Any]:  # noqa: D102
        job = JobSpec.from_wire(decode(spec))
        failed = self.daemon.host.fail_source(job, JobFailure.from_dict(failure))
        return self.daemon.busy_with(failed).addCallback(lambda report: encode(report_wire(report)))

    def remote_clean_job(self, spec: Any) -> defer.Deferred[int]:  # noqa: D102
        return self.daemon.busy_with(self.daemon.host.clean_job(JobSpec.from_wire(decode(spec))))

    def remote_monitor(self, settings: Any, spec: Any) -> bool:
        """Watch a customer's incoming folders here (monitoring.on-workers)."""
        self.daemon.monitors.assign(decode(settings), decode(spec))
        return True

    def remote_unmonitor(self, customer: str) -> bool:  # noqa: D102
        self.daemon.monitors.unassign(customer)
        return True

    def remote_monitor_release(self, customer: str, profile: str, relpath: str) -> bool:  # noqa: D102
        self.daemon.monitors.release(customer, profile, relpath)
        return True

    def remote_monitor_forget(self, customer: str, profile: str, relpath: str) -> bool:  # noqa: D102
        self.daemon.monitors.forget(customer, profile, relpath)
        return True

    def remote_jobs(self) -> str:
        """Every job with its spec (an admin attaching to a standalone manager adopts them)."""
        return encode(self.daemon.host.describe_jobs(with_specs=True))

    def remote_ping(self) -> bool:  # noqa: D102
        return True


def committed_changes(report: dict[str, Any]) -> dict[str, Any]:
    """What the admin gets for an acknowledgement: the committed report's wire form."""
    return report_wire(report)


def _remote_errors(d: defer.Deferred[Any]) -> defer.Deferred[Any]:
    def translate(failure: Any) -> Any:
        if failure.check(UnknownJob):
            raise RemoteUnknownJob(str(failure.value))
        return failure

    return d.addErrback(translate)


class WorkerDaemon(Service):
    """One worker: a link to the manager and the jobs it runs."""

    log = Logger()

    def __init__(
        self,
        name: str,
        manager: str,
        password: bytes,
        roots: Roots,
        max_jobs: int,
        reactor: IFarmReactor,
        *,
        heartbeat_interval: float = HEARTBEAT_INTERVAL,
        max_reconnect_delay: float = MAX_RECONNECT_DELAY,
        orphan_timeout: float = 0.0,
    ) -> None:
        self.name = name
        self.manager = manager
        self.roots = roots
        self.max_jobs = max_jobs
        self.reactor = reactor
        self.heartbeat_interval = heartbeat_interval
        self.max_reconnect_delay = max_reconnect_delay
        #: Seconds alone (no manager, nothing to do) before stopping; 0: never.
        self.orphan_timeout = orphan_timeout
        self._alone_since: float | None = None
        self._operations = 0  # the admin's file operations under way (commits, cleaning)
        #: Fires once the worker has been alone for ``orphan_timeout``: time to exit.
        self.orphaned: defer.Deferred[None] = defer.Deferred()
        self.host = JobHost(name, roots, max_jobs, reactor)
        self.mind = WorkerMind(self)
        self.link = PBLink(
            reactor,
            manager,
            name,
            password,
            self.mind,
            on_login=self._logged_in,
            on_lost=self._check_alone,
            what=f"worker {name}",
            # Try again at least as often as heartbeats are due: a worker that outlived
            # its admin must be back before the new admin's lost-timeout gives its jobs up.
            max_delay=min(max_reconnect_delay, heartbeat_interval),
        )
        self._heartbeat: task.LoopingCall | None = None
        self.connected_once: defer.Deferred[None] = defer.Deferred()
        self.monitors = MonitorHost(roots, reactor, self._monitor_event)
        #: Its warnings and errors, for the admin's debug mails (with each heartbeat).
        self.messages = WorkerMessages()

    # -- life cycle

    def startService(self) -> None:  # noqa: N802 (Twisted API)
        Service.startService(self)
        self.host.load_kept().addErrback(
            lambda f: self.log.failure("cannot list the failed jobs kept for inspection", f)
        )
        self.messages.start()
        self.link.start()
        self._check_alone()
        self._heartbeat = task.LoopingCall(self._beat)
        self._heartbeat.clock = self.reactor
        self._heartbeat.start(self.heartbeat_interval, now=False)

    def stopService(self) -> defer.Deferred[Any]:  # noqa: N802 (Twisted API)
        Service.stopService(self)
        if self._heartbeat is not None and self._heartbeat.running:
            self._heartbeat.stop()
        self.link.stop()
        self.messages.stop()
        self.monitors.stop()
        self.log.info("worker {name} stopping: its jobs are cancelled", name=self.name)
        return self.host.stop()

    def info(self) -> dict[str, Any]:
        """What the admin learns of this worker."""
        return {
            "name": self.name,
            "host": socket.gethostname(),
            "roots": dict(self.roots.mapping),
            "max_jobs": self.max_jobs,
            "pid": os.getpid(),
            "heartbeat_interval": self.heartbeat_interval,
            "components": self.components(),
        }

    def components(self) -> dict[str, Any]:
        """Besides jobs: the customers it monitors, the failed jobs it keeps (small)."""
        return {
            "monitors": sorted(self.monitors.customers),
            "failed": self.host.kept_failed(),
        }

    # -- the link

    async def _logged_in(self, perspective: Any) -> None:
        await perspective.callRemote(
            "hello", encode(self.info()), encode(self.host.describe_jobs(True))
        )
        self.log.info(
            "worker {name} attached to the manager at {manager} ({jobs} jobs)",
            name=self.name,
            manager=self.manager,
            jobs=len(self.host.jobs),
        )
        if not self.connected_once.called:
            self.connected_once.callback(None)
        self._check_alone()

    @property
    def perspective(self) -> Any:
        """The manager's perspective while logged in, else None."""
        return self.link.perspective

    def _beat(self) -> None:
        self._check_alone()
        if self.perspective is None:
            return
        state = {
            "jobs": self.host.describe_jobs(),
            "time": self.reactor.seconds(),
            "pending": self.monitors.pending(),
            "components": self.components(),
            "messages": self.messages.drain(),
        }
        try:
            text = encode(state)
        except TooBig as e:  # never expected (each list is bounded): beat all the same
            self.log.warn("heartbeat too big ({error}); sending the time only", error=e)
            text = encode({"time": state["time"]})
        d = self.perspective.callRemote("heartbeat", text)
        d.addErrback(self._beat_failed)

    def _beat_failed(self, failure: Any) -> None:
        if not failure.check(pb.PBConnectionLost, pb.DeadReferenceError):
            self.log.warn("heartbeat refused: {error}", error=failure.getErrorMessage())

    def _monitor_event(self, event: dict[str, Any]) -> None:
        # Lost with the link: the monitor is placed again and rescans when we reattach.
        if self.perspective is not None:
            d = self.perspective.callRemote("monitor_event", encode(event))
            d.addErrback(lambda _: None)

    # -- alone

    def busy_with(self, d: defer.Deferred[Any]) -> defer.Deferred[Any]:
        """Count a file operation of the admin's as work until ``d`` fires."""
        self._operations += 1

        def done(result: Any) -> Any:
            self._operations -= 1
            self._check_alone()
            return result

        return d.addBoth(done)

    def _busy(self) -> bool:
        """Whether a job runs or an operation on the files is under way."""
        running = any(job.outcome is None for job in self.host.jobs.values())
        return running or self._operations > 0

    def _check_alone(self) -> None:
        """Start, reset or end the orphan clock (on every change and every heartbeat)."""
        if not self.orphan_timeout or self.orphaned.called or not self.running:
            return
        if self.perspective is not None or self._busy():
            self._alone_since = None
            return
        now = self.reactor.seconds()
        if self._alone_since is None:
            self._alone_since = now
        elif now - self._alone_since >= self.orphan_timeout:
            self.log.info(
                "worker {name} stopping: alone for {seconds:.0f} s (not logged in to the "
                "manager at {manager}, no job running; orphan-timeout {timeout:g} s)",
                name=self.name,
                seconds=now - self._alone_since,
                manager=self.manager,
                timeout=self.orphan_timeout,
            )
            self.orphaned.callback(None)

    # -- jobs

    def start_job(self, spec: JobSpec) -> bool:
        """Start a job for the admin; its outcome goes back through the manager."""
        job_id = str(spec.job_id)
        if job_id in self.host.jobs:
            return True  # a repeated request after a lost link: it runs already
        d = self.host.start_job(spec)
        d.addCallback(self._finished, job_id)
        d.addErrback(lambda f: self.log.failure("job {job_id} failed", f, job_id=job_id))
        return True

    def _finished(self, outcome: dict[str, Any], job_id: str) -> None:
        self._check_alone()
        if job_id not in self.host.jobs:
            return  # cancelled meanwhile
        if self.perspective is not None:
            # If this is lost, the next hello lists the job as finished with its outcome.
            d = self.perspective.callRemote("job_finished", job_id, encode(outcome_wire(outcome)))
            d.addErrback(lambda _: None)


__all__ = ["WorkerDaemon", "WorkerMind", "RemoteUnknownJob"]
