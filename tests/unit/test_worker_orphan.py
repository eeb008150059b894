"""A worker alone too long (no manager, no job) stops by itself; never with a job running.

Real ``WorkerDaemon`` objects log in to a real manager over PB in memory
(:mod:`tests.unit.pbpairs`); time is the memory reactor's clock.  Cutting the
connection and refusing every later one is an admin that was killed and never came back.
"""

from __future__ import annotations

import os
from typing import Any

from twisted.internet import defer
from twisted.logger import capturedLogs, formatEvent
from twisted.trial.unittest import SynchronousTestCase

from tests.unit.pbpairs import MANAGER, FakeReactor, Network, job_spec, scratch
from transcoder_admin.context.paths import Roots
from transcoder_admin.manager import Manager, ManagerService
from transcoder_admin.records import JobSpec
from transcoder_admin.worker.daemon import WorkerDaemon

HEARTBEAT = 2.0
ORPHAN = 100.0
USERS = {"w1": b"secret-one"}


class HeldJob:
    """A job that runs until the test ends it (the JobHost's job factory)."""

    def __init__(self, spec: JobSpec, roots: Roots, worker: str, reactor: Any) -> None:
        self.spec = spec
        self.job_id = spec.job_id
        self.outcome: dict[str, Any] | None = None
        self.progress: dict[str, Any] = {}
        self._done: defer.Deferred[dict[str, Any]] = defer.Deferred()

    def run(self) -> defer.Deferred[dict[str, Any]]:
        """Fires when :meth:`finish` is called."""
        return self._done

    def finish(self) -> None:
        """End the job (failed: nothing to commit here)."""
        self.outcome = {
            "job_id": self.job_id,
            "attempt": 1,
            "outcome": "failed",
            "failure": {"kind": "cancelled", "reason": "stopped"},
        }
        self._done.callback(self.outcome)

    def abort(self) -> defer.Deferred[None]:
        """Nothing to kill."""
        return defer.succeed(None)


class OrphanTests(SynchronousTestCase):
    """The orphan clock: starts when alone and idle, resets on login and on work."""

    def setUp(self) -> None:
        """A manager on a memory reactor and a worker daemon logged in to it."""
        self.base = scratch(self)
        self.reactor = FakeReactor()
        self.reactor.advance(1_700_000_000.0)
        service = ManagerService(Manager(), "tcp:7632", dict(USERS), self.reactor)
        self.net = Network(self.reactor, service.factory())

    def worker(self, orphan_timeout: float = ORPHAN) -> WorkerDaemon:
        """A started worker daemon, logged in to the manager."""
        roots = Roots({"default": self.base, "temp": os.path.join(self.base, "t")})
        daemon = WorkerDaemon(
            "w1",
            MANAGER,
            USERS["w1"],
            roots,
            2,
            self.reactor,
            heartbeat_interval=HEARTBEAT,
            orphan_timeout=orphan_timeout,
        )
        daemon.host.job_factory = HeldJob
        daemon.startService()
        self.addCleanup(lambda: daemon.running and daemon.stopService())
        self.pump = self.net.accept()
        self.assertTrue(daemon.connected_once.called)
        return daemon

    def admin_gone(self) -> None:
        """The connection breaks; later connection attempts are never answered."""
        self.net.cut(self.pump)

    def test_alone_and_idle_for_the_timeout_it_stops_with_a_log_line(self):
        """No manager and no job for orphan-timeout: `orphaned` fires, saying why."""
        daemon = self.worker()
        self.net.run(10 * ORPHAN)  # logged in: the clock never runs
        self.assertFalse(daemon.orphaned.called)
        self.admin_gone()
        self.net.run(ORPHAN - HEARTBEAT)
        self.assertFalse(daemon.orphaned.called)
        with capturedLogs() as events:
            self.net.run(2 * HEARTBEAT)
        self.assertTrue(daemon.orphaned.called)
        text = "\n".join(formatEvent(e) for e in events)
        self.assertIn("worker w1 stopping: alone for 100 s (not logged in to the manager", text)
        self.assertIn("orphan-timeout 100 s", text)

    def test_logging_in_again_resets_the_clock(self):
        """An admin back before the timeout: the worker stays, and the clock starts anew."""
        daemon = self.worker()
        self.admin_gone()
        self.net.run(ORPHAN * 0.6)
        self.pump = self.net.accept()  # the restarted admin answers
        self.assertIsNotNone(daemon.perspective)
        self.net.run(ORPHAN * 0.6)
        self.admin_gone()
        self.net.run(ORPHAN * 0.6)
        self.assertFalse(daemon.orphaned.called)
        self.net.run(ORPHAN * 0.5)
        self.assertTrue(daemon.orphaned.called)

    def test_a_running_job_keeps_it_waiting_and_the_clock_starts_when_it_ends(self):
        """Alone with a job: no limit; once the job ends, the full timeout applies."""
        daemon = self.worker()
        daemon.start_job(job_spec("j1", 1))
        [job] = daemon.host.jobs.values()
        self.admin_gone()
        self.net.run(5 * ORPHAN)
        self.assertFalse(daemon.orphaned.called)
        job.finish()
        self.net.run(ORPHAN - HEARTBEAT)
        self.assertFalse(daemon.orphaned.called)
        self.net.run(2 * HEARTBEAT)
        self.assertTrue(daemon.orphaned.called)

    def test_a_file_operation_under_way_keeps_it_waiting(self):
        """A commit or cleaning the admin asked for holds the clock until it ends."""
        daemon = self.worker()
        commit: defer.Deferred[None] = defer.Deferred()
        daemon.busy_with(commit)
        self.admin_gone()
        self.net.run(3 * ORPHAN)
        self.assertFalse(daemon.orphaned.called)
        commit.callback(None)
        self.net.run(ORPHAN + HEARTBEAT)
        self.assertTrue(daemon.orphaned.called)

    def test_without_an_orphan_timeout_it_waits_for_ever(self):
        """0 (a standalone worker's default): it keeps reconnecting, however long."""
        daemon = self.worker(orphan_timeout=0)
        self.admin_gone()
        self.net.run(1000 * ORPHAN, step=50)
        self.assertFalse(daemon.orphaned.called)
        self.assertTrue(daemon.running)
