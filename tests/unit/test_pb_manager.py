"""The manager, its workers and the admin as real PB client/server pairs, in memory.

The manager's own ``ManagerService.factory()`` serves; workers are real
``WorkerDaemon`` objects whose ``PBLink`` connects through a memory reactor, joined to
the server by ``twisted.test.iosim`` pumps (:mod:`tests.unit.pbpairs`).  Time is the
memory reactor's clock; jobs are real and end at once with a source failure.
"""

from __future__ import annotations

import os
from typing import Any

from twisted.cred.credentials import UsernamePassword
from twisted.cred.error import UnauthorizedLogin
from twisted.internet import defer
from twisted.logger import capturedLogs, formatEvent
from twisted.spread import pb
from twisted.trial.unittest import SynchronousTestCase

from tests.unit.pbpairs import (
    MANAGER,
    PEER,
    FakeReactor,
    Network,
    job_spec,
    report_files,
    scratch,
    write_source,
)
from transcoder_admin import pblink
from transcoder_admin.context.paths import Roots
from transcoder_admin.janitor import Janitor
from transcoder_admin.manager import AdminAvatar, Manager, ManagerService, WorkerAvatar
from transcoder_admin.monitoring.remote import _SpecCustomer
from transcoder_admin.proxy import ManagerSet, WorkerProxy, WorkerSet
from transcoder_admin.proxy.components import MONITOR, ComponentSet
from transcoder_admin.wire import decode
from transcoder_admin.worker.daemon import WorkerDaemon
from transcoder_admin.worker.interfaces import UnknownJob

T0 = 1_700_000_000.0
LOST_TIMEOUT = 10.0
HEARTBEAT = 2.0
USERS = {"w1": b"secret-one", "w2": b"secret-two", "admin": b"admin-secret"}


class AdminMind(pb.Referenceable):
    """A remote admin's mind that records what the manager tells it."""

    def __init__(self) -> None:
        self.heard: list[tuple[str, tuple]] = []

    def remote_worker_attached(self, name, info, jobs):  # noqa: D102
        self.heard.append(("worker_attached", (name, info, jobs)))

    def remote_worker_detached(self, name):  # noqa: D102
        self.heard.append(("worker_detached", (name,)))

    def remote_worker_heartbeat(self, name, state):  # noqa: D102
        self.heard.append(("worker_heartbeat", (name, state)))

    def remote_job_finished(self, name, job_id, outcome):  # noqa: D102
        self.heard.append(("job_finished", (name, job_id, outcome)))

    def names(self) -> list[str]:
        """The messages heard, in order."""
        return [name for name, _ in self.heard]


class Farm:
    """A manager service, the admin's worker set, and workers, on one memory reactor."""

    def __init__(self, test: SynchronousTestCase, lost_timeout: float = LOST_TIMEOUT) -> None:
        self.test = test
        self.base = scratch(test)
        self.media = os.path.join(self.base, "media")
        self.reactor = FakeReactor()
        self.reactor.advance(T0)
        self.manager = Manager()
        self.service = ManagerService(self.manager, "tcp:7632", dict(USERS), self.reactor)
        self.net = Network(self.reactor, self.service.factory())
        self.workers = WorkerSet(self.reactor, lost_timeout)
        self.managers = ManagerSet(self.workers, self.reactor)
        self.daemons: list[WorkerDaemon] = []
        self.added: list[str] = []
        self.removed: list[str] = []
        self.workers.worker_added.subscribe(lambda p: self.added.append(p.name))
        self.workers.worker_removed.subscribe(self.removed.append)
        test.addCleanup(self.stop)

    def embedded(self) -> None:
        """Attach the admin to the manager in this process and start liveness checks."""
        self.managers.use_embedded(self.manager)
        self.test.successResultOf(self.managers.start())
        self.workers.start()

    def roots(self) -> Roots:
        """The media and work roots every worker of this farm shares."""
        return Roots({"default": self.media, "temp": os.path.join(self.base, "temp")})

    def daemon(self, name: str = "w1", password: bytes | None = None) -> WorkerDaemon:
        """A worker daemon, started: it is connecting to the manager."""
        daemon = WorkerDaemon(
            name,
            MANAGER,
            USERS.get(name, b"") if password is None else password,
            self.roots(),
            2,
            self.reactor,
            heartbeat_interval=HEARTBEAT,
        )
        daemon.startService()
        self.daemons.append(daemon)
        return daemon

    def worker(self, name: str = "w1") -> tuple[WorkerDaemon, Any]:
        """A worker daemon logged in and attached; returns it and its connection's pump."""
        daemon = self.daemon(name)
        pump = self.net.accept()
        self.test.assertTrue(daemon.connected_once.called, f"{name} did not log in")
        return daemon, pump

    def client(self, name: str, password: bytes, mind: Any = None) -> tuple[defer.Deferred, Any]:
        """A bare PB client logging in; returns the login's Deferred and the pump."""
        factory = pb.PBClientFactory()
        self.reactor.connectTCP("127.0.0.1", 7632, factory)
        pump = self.net.accept()
        d = factory.login(UsernamePassword(name.encode(), password), client=mind)
        self.net.flush()
        return d, pump

    def stop(self) -> None:
        """Stop the daemons and the admin's link; let the connections close."""
        self.workers.stop()
        self.managers.stop()
        for daemon in self.daemons:
            if daemon.running:
                daemon.stopService()
        self.net.flush()


def avatars(pump: Any) -> list[Any]:
    """The avatars the manager serves on one connection."""
    found = []
    for local in pump.server.localObjects.values():
        method = getattr(local.object, "remoteMessageReceived", None)
        found.append(getattr(method, "__self__", None))
    return found


def log_text(events: Any) -> str:
    """Every captured log event, formatted, one a line."""
    return "\n".join(formatEvent(e) for e in events)


class LoginTests(SynchronousTestCase):
    """twisted.cred logins: the right secret gets in, anything else is refused and logged."""

    def test_worker_login_and_hello_reach_the_worker_set(self):
        """A worker daemon logs in and its facts reach the admin's worker set."""
        farm = Farm(self)
        farm.embedded()
        farm.worker("w1")
        proxy = farm.workers.proxies["w1"]
        info = proxy.info()
        self.assertEqual(info["state"], "attached")
        self.assertEqual(info["max_jobs"], 2)
        self.assertEqual(info["roots"], dict(farm.roots().mapping))
        self.assertEqual(info["pid"], os.getpid())
        self.assertEqual(farm.added, ["w1"])
        self.assertEqual(list(farm.manager.workers), ["w1"])

    def test_wrong_password_is_refused_and_logged_with_the_peer_not_the_secret(self):
        """UnauthorizedLogin for the client; the log names user and peer, never a secret."""
        farm = Farm(self)
        farm.embedded()
        with capturedLogs() as events:
            d, _pump = farm.client("w1", b"not-the-secret", pb.Referenceable())
        self.failureResultOf(d, UnauthorizedLogin)
        self.assertEqual(self.flushLoggedErrors(), [], "one warning line, no traceback")
        text = log_text(events)
        self.assertIn("login refused for 'w1' from", text)
        self.assertNotIn("traceback", text.lower())
        self.assertIn(PEER.host, text)
        for secret in (b"not-the-secret", USERS["w1"]):
            self.assertNotIn(secret.decode(), text)
            self.assertNotIn(secret.decode(), repr(list(events)))
        self.assertEqual(farm.manager.workers, {})
        self.assertEqual(farm.workers.proxies, {})

    def test_unknown_user_is_refused_and_logged(self):
        """A name missing from the credentials gets in no more than a wrong password."""
        farm = Farm(self)
        farm.embedded()
        with capturedLogs() as events:
            d, _pump = farm.client("intruder", b"guess", pb.Referenceable())
        self.failureResultOf(d, UnauthorizedLogin)
        self.assertEqual(self.flushLoggedErrors(), [])
        self.assertIn("login refused for 'intruder' from", log_text(events))
        self.assertEqual(farm.manager.workers, {})

    def test_an_unknown_name_and_a_wrong_password_read_the_same_to_the_client(self):
        """The refusal does not tell a prober which names exist; the log does tell why."""
        farm = Farm(self)
        farm.embedded()
        with capturedLogs() as events:
            unknown, _pump = farm.client("intruder", b"guess", pb.Referenceable())
            wrong, _pump = farm.client("w1", b"guess", pb.Referenceable())
        told = [
            self.failureResultOf(d, UnauthorizedLogin).getErrorMessage() for d in (unknown, wrong)
        ]
        self.assertEqual(told[0], told[1])
        self.assertIn("unknown name or wrong password", told[0])
        text = log_text(events)
        self.assertIn("'intruder'", text)
        self.assertIn("unknown user", text)
        self.assertIn("wrong password", text)

    def test_a_login_without_a_mind_is_refused(self):
        """The manager must be able to call a worker back: no mind, no login."""
        farm = Farm(self)
        d, _pump = farm.client("w1", USERS["w1"], None)
        self.failureResultOf(d, UnauthorizedLogin)
        self.flushLoggedErrors(UnauthorizedLogin)
        self.assertEqual(farm.manager.workers, {})

    def test_refused_worker_keeps_trying_with_growing_delays_and_never_logs_its_secret(self):
        """A refused worker retries after 0.5 s, then 1 s, each time on a new connection."""
        self.patch(pblink.random, "uniform", lambda low, high: 1.0)
        farm = Farm(self)
        farm.embedded()
        with capturedLogs() as events:
            farm.daemon("w1", password=b"stale-secret")
            farm.net.accept()
            self.assertEqual(farm.reactor.tcpClients, [])
            farm.reactor.advance(0.49)
            self.assertEqual(farm.reactor.tcpClients, [], "not before the delay")
            farm.reactor.advance(0.02)
            self.assertEqual(len(farm.reactor.tcpClients), 1)
            farm.net.accept()
            farm.reactor.advance(0.99)
            self.assertEqual(farm.reactor.tcpClients, [])
            farm.reactor.advance(0.02)
            self.assertEqual(len(farm.reactor.tcpClients), 1)
        self.flushLoggedErrors(UnauthorizedLogin)
        text = log_text(events)
        self.assertEqual(text.count("cannot log in to the manager"), 2)
        self.assertEqual(text.count("login refused for 'w1'"), 2)
        self.assertNotIn("stale-secret", text)
        self.assertEqual(farm.workers.proxies, {})

    def test_admin_login_gets_the_admin_avatar_and_can_call_workers(self):
        """'admin' gets an AdminAvatar: it attaches, hears of workers and calls them."""
        farm = Farm(self)
        farm.worker("w1")
        mind = AdminMind()
        d, pump = farm.client("admin", USERS["admin"], mind)
        perspective = self.successResultOf(d)
        self.assertTrue(any(isinstance(a, AdminAvatar) for a in avatars(pump)))
        self.assertNotIn("admin", farm.manager.workers, "the admin is not a worker")
        attached = perspective.callRemote("attach")
        farm.net.flush()
        snapshot = self.successResultOf(attached)
        self.assertEqual(list(snapshot), ["w1"])
        self.assertEqual(decode(snapshot["w1"]["info"])["max_jobs"], 2)  # JSON text
        pong = perspective.callRemote("call_worker", "w1", "ping")
        farm.net.flush()
        self.assertIs(self.successResultOf(pong), True)
        absent = perspective.callRemote("call_worker", "nobody", "ping")
        farm.net.flush()
        failure = self.failureResultOf(absent)
        self.assertTrue(failure.check("transcoder_admin.manager.WorkerNotAttached"))
        farm.worker("w2")
        farm.net.run(HEARTBEAT)
        self.assertIn("worker_attached", mind.names())
        self.assertEqual(
            [args[0] for name, args in mind.heard if name == "worker_attached"], ["w2"]
        )
        self.assertIn("worker_heartbeat", mind.names())

    def test_a_worker_cannot_use_the_admin_perspective(self):
        """A worker's login is a WorkerAvatar: it cannot relay calls to other workers."""
        farm = Farm(self)
        farm.worker("w2")
        d, pump = farm.client("w1", USERS["w1"], pb.Referenceable())
        perspective = self.successResultOf(d)
        self.assertTrue(any(isinstance(a, WorkerAvatar) for a in avatars(pump)))
        relay = perspective.callRemote("call_worker", "w2", "ping")
        farm.net.flush()
        self.failureResultOf(relay)
        self.flushLoggedErrors(AttributeError)  # PB logs the traceback it sends back

    def test_a_worker_sending_anything_but_a_dict_is_refused(self):
        """Only plain values cross the wire: a heartbeat that is not a dict is an error."""
        farm = Farm(self)
        farm.embedded()
        d, _pump = farm.client("w1", USERS["w1"], pb.Referenceable())
        perspective = self.successResultOf(d)
        hello = perspective.callRemote("hello", ["not", "a", "dict"], [])
        farm.net.flush()
        failure = self.failureResultOf(hello)
        self.assertIn("expected a dict, got list", failure.getErrorMessage())
        self.assertEqual(farm.workers.proxies, {}, "no worker without a proper hello")

    def test_second_login_under_one_name_replaces_the_first_connection(self):
        """A worker that logs in again (its old connection half-dead) is attached once."""
        farm = Farm(self)
        farm.embedded()
        stale, stale_pump = farm.client("w1", USERS["w1"], pb.Referenceable())
        old = self.successResultOf(stale)  # kept: PB logs out a perspective nobody holds
        daemon, _pump = farm.worker("w1")
        self.assertTrue(stale_pump.serverIO.disconnected, "the old connection is closed")
        self.assertRaises(pb.DeadReferenceError, old.callRemote, "heartbeat", {})
        self.assertEqual(list(farm.manager.workers), ["w1"])
        self.assertEqual(farm.workers.proxies["w1"].info()["state"], "attached")
        self.assertEqual(farm.workers.proxies["w1"].info()["pid"], os.getpid())
        self.assertEqual(farm.added, ["w1"])
        pong = farm.manager.call_worker("w1", "ping")
        farm.net.flush()
        self.assertIs(self.successResultOf(pong), True)
        self.assertTrue(daemon.connected_once.called)


class LivenessOverPBTests(SynchronousTestCase):
    """Heartbeats over the wire, silence, and coming back."""

    def test_heartbeats_keep_a_worker_alive_and_silence_loses_it(self):
        """Beating every 2 s for a minute: alive; silent past lost-timeout: lost and dropped."""
        farm = Farm(self)
        farm.embedded()
        _daemon, pump = farm.worker("w1")
        proxy = farm.workers.proxies["w1"]
        farm.net.run(60)
        self.assertEqual(farm.removed, [])
        self.assertLessEqual(proxy.info()["silent_for"], HEARTBEAT)
        farm.net.freeze(pump)  # SIGSTOP: nothing goes either way
        farm.net.run(LOST_TIMEOUT - HEARTBEAT)
        self.assertEqual(farm.removed, [])
        farm.net.run(HEARTBEAT + 1)
        self.assertEqual(farm.removed, ["w1"])
        self.assertTrue(proxy.lost)
        farm.net.thaw(pump)  # SIGCONT: the manager had closed the connection
        farm.net.flush()
        self.assertEqual(farm.manager.workers, {})
        farm.net.run(1)
        farm.net.accept()
        self.assertEqual(farm.added, ["w1", "w1"])
        self.assertIsNot(farm.workers.proxies["w1"], proxy)

    def test_job_finished_while_the_link_was_down_is_reported_in_the_hello(self):
        """The link drops mid-job; the worker comes back within lost-timeout: one commit."""
        farm = Farm(self)
        farm.embedded()
        source = write_source(farm.media)
        daemon, pump = farm.worker("w1")
        proxy = farm.workers.proxies["w1"]
        farm.reactor.pool.paused = True
        outcome = proxy.start_job(job_spec("J1", 1))
        farm.net.flush()
        self.assertEqual(list(daemon.host.jobs), ["J1"])
        farm.net.cut(pump)
        self.assertEqual(proxy.info()["state"], "detached")
        farm.reactor.pool.resume()  # the job ends while nobody listens
        self.assertNoResult(outcome)
        farm.net.run(1)
        farm.net.accept()
        report = self.successResultOf(outcome)
        self.assertEqual((report.job_id, report.outcome), ("J1", "failed"))
        self.assertEqual(farm.removed, [])
        ack = proxy.acknowledge("J1")
        farm.net.flush()
        self.assertEqual(self.successResultOf(ack).outcome, "failed")
        self.assertFalse(os.path.exists(source))
        self.assertTrue(os.path.exists(os.path.join(farm.media, "failed", "clip.mov")))
        self.assertEqual(daemon.host.jobs, {})

    @staticmethod
    def _ack_across_a_cut(farm: Farm) -> tuple[Any, Any, str, list]:
        """Start a job, cut the link while its acknowledgement is in flight, reconnect."""
        source = write_source(farm.media)
        daemon, pump = farm.worker("w1")
        proxy = farm.workers.proxies["w1"]
        unknown: list[tuple[str, dict]] = []
        default = farm.workers.on_unknown_job

        def record(p: WorkerProxy, job: dict) -> Any:
            unknown.append((p.name, job))
            return default(p, job)

        farm.workers.on_unknown_job = record
        outcome = proxy.start_job(job_spec("J1", 1))
        farm.net.flush()
        farm.test.successResultOf(outcome)
        farm.net.freeze(pump)
        ack = proxy.acknowledge("J1")
        farm.net.cut(pump)  # the acknowledgement is lost on the way
        farm.test.assertTrue(os.path.exists(source), "nothing committed yet")
        farm.test.assertNoResult(ack)
        farm.net.run(1)
        farm.net.accept()
        return daemon, ack, source, unknown

    def test_acknowledgement_lost_with_the_link_is_sent_again_and_commits_once(self):
        """The acknowledgement dies with the link; after the next hello it commits, once."""
        farm = Farm(self)
        farm.embedded()
        daemon, ack, source, _unknown = self._ack_across_a_cut(farm)
        self.assertEqual(self.successResultOf(ack).outcome, "failed")
        self.assertFalse(os.path.exists(source))
        reports = report_files(os.path.join(farm.media, "reports", "failed"))
        self.assertEqual(reports, ["clip.mov.J1.yaml"])
        self.assertEqual(list(daemon.host.committed), ["J1"])

    def test_a_job_being_acknowledged_is_not_treated_as_unknown(self):
        """The job the admin is committing is its own: no 'not current' cancel is sent."""
        farm = Farm(self)
        farm.embedded()
        _daemon, ack, _source, unknown = self._ack_across_a_cut(farm)
        self.successResultOf(ack)
        self.assertEqual(unknown, [])

    def test_a_workers_warnings_reach_the_admin_with_its_next_heartbeat(self):
        """Warnings and errors the worker logs (the farm's own, not its info) arrive at
        the admin's worker set, once each, with the next heartbeat."""
        from twisted.logger import Logger

        farm = Farm(self)
        farm.embedded()
        daemon, _pump = farm.worker("w1")
        heard: list[tuple[str, dict]] = []
        farm.workers.worker_message.subscribe(heard.append)
        log = Logger(namespace="transcoder_admin.job.job")
        log.info("nothing to see")
        log.warn("job {job_id}: cannot record process {pid}", job_id="J1", pid=42)
        Logger(namespace="someone.else").error("not the farm's")
        farm.net.run(HEARTBEAT)
        farm.net.run(HEARTBEAT)
        self.assertEqual(
            [(name, m["level"], m["text"]) for name, m in heard],
            [("w1", "warn", "job J1: cannot record process 42")],
        )
        daemon.messages.stop()


class RemoteAdminTests(SynchronousTestCase):
    """The admin attached to a standalone manager over PB (ManagerSet.use_remote)."""

    def attach_remote(self, farm: Farm) -> tuple[list[str], list[str], Any]:
        """Attach the farm's admin over PB as 'admin'; returns its events and the pump."""
        attached: list[str] = []
        detached: list[str] = []
        farm.managers.attached.subscribe(attached.append)
        farm.managers.detached.subscribe(detached.append)
        farm.managers.use_remote(MANAGER, USERS["admin"])
        first = farm.managers.start()
        pump = farm.net.accept()
        self.successResultOf(first)
        farm.workers.start()
        return attached, detached, pump

    def test_remote_admin_sees_workers_logged_in_before_and_after_it(self):
        """The attach snapshot brings the workers already there; later logins are relayed."""
        farm = Farm(self)
        farm.worker("w1")
        attached, _detached, _pump = self.attach_remote(farm)
        self.assertEqual(attached, [MANAGER])
        self.assertTrue(farm.managers.is_attached)
        self.assertEqual(list(farm.workers.proxies), ["w1"])
        farm.worker("w2")
        self.assertEqual(sorted(farm.workers.proxies), ["w1", "w2"])
        self.assertEqual(farm.added, ["w1", "w2"])
        farm.net.run(30)
        self.assertEqual(farm.removed, [], "heartbeats are relayed to the remote admin")

    def test_job_round_trip_through_a_standalone_manager(self):
        """Start, outcome and acknowledgement cross two PB hops; the source moves once."""
        farm = Farm(self)
        source = write_source(farm.media)
        daemon, _ = farm.worker("w1")
        self.attach_remote(farm)
        proxy = farm.workers.proxies["w1"]
        outcome = proxy.start_job(job_spec("J1", 2))
        farm.net.flush()
        self.assertEqual(self.successResultOf(outcome).attempt, 2)
        self.assertTrue(os.path.exists(source))
        ack = proxy.acknowledge("J1")
        farm.net.flush()
        self.assertEqual(self.successResultOf(ack).outcome, "failed")
        self.assertFalse(os.path.exists(source))
        self.assertEqual(daemon.host.jobs, {})

    def test_stale_attempt_is_refused_across_two_hops(self):
        """Adopting a job with an attempt that is not the worker's: UnknownJob, no move."""
        farm = Farm(self)
        source = write_source(farm.media)
        daemon = farm.daemon("w1")
        self.successResultOf(daemon.host.start_job(job_spec("J1", 2)))
        farm.net.accept()
        adopted: list[defer.Deferred] = []

        def adopt(p: WorkerProxy, job: dict) -> bool:
            adopted.append(p.job_outcome("J1", 1))
            return True

        farm.workers.on_unknown_job = adopt
        self.attach_remote(farm)
        farm.net.run(HEARTBEAT)
        self.successResultOf(adopted[0])
        ack = farm.workers.proxies["w1"].acknowledge("J1")
        farm.net.flush()
        self.failureResultOf(ack, UnknownJob)
        self.assertTrue(os.path.exists(source))
        self.assertEqual(list(daemon.host.jobs), ["J1"])

    def test_admin_attaching_after_heartbeats_gets_the_specs_to_adopt_jobs(self):
        """A restarted admin attaching to a standalone manager can adopt running jobs."""
        farm = Farm(self)
        daemon = farm.daemon("w1")
        farm.reactor.pool.paused = True  # the job keeps running
        daemon.host.start_job(job_spec("J1", 1))
        farm.net.accept()
        farm.net.run(3 * HEARTBEAT)
        seen: list[dict] = []

        def adopt(p: WorkerProxy, job: dict) -> bool:
            seen.append(job)
            return True

        farm.workers.on_unknown_job = adopt
        self.attach_remote(farm)
        self.assertEqual([job["job_id"] for job in seen], ["J1"])
        self.assertEqual(seen[0].get("spec", {}).get("attempt"), 1)
        farm.reactor.pool.resume()

    def test_admin_losing_its_manager_detaches_workers_then_attaches_again(self):
        """The manager link drops: detached (not lost); back within the timeout: attached."""
        farm = Farm(self)
        farm.worker("w1")
        attached, detached, pump = self.attach_remote(farm)
        proxy = farm.workers.proxies["w1"]
        farm.net.cut(pump)
        self.assertEqual(detached, [MANAGER])
        self.assertFalse(farm.managers.is_attached)
        self.assertEqual(proxy.info()["state"], "detached")
        farm.net.run(1)
        farm.net.accept()
        self.assertEqual(attached, [MANAGER, MANAGER])
        self.assertIs(farm.workers.proxies["w1"], proxy)
        self.assertEqual(proxy.info()["state"], "attached")
        self.assertEqual(farm.removed, [])


class FailoverTests(SynchronousTestCase):
    """A lost worker's job runs elsewhere as the next attempt; the stale one moves nothing."""

    def test_stale_attempt_of_a_lost_worker_moves_nothing(self):
        """w1 stops mid-job, is lost, its job commits on w2 as attempt 2; w1's is cancelled."""
        from transcoder_admin.scheduler import QueueItem
        from transcoder_admin.transcoding import Transcoding

        farm = Farm(self)
        farm.embedded()
        source = write_source(farm.media)

        def make_spec(item: QueueItem, job_id: str, attempt: int) -> dict:
            return job_spec(job_id, attempt)

        transcoding = Transcoding(make_spec, farm.reactor)
        farm.workers.link_up.subscribe(transcoding.add_worker)
        farm.workers.link_down.subscribe(lambda p: transcoding.remove_worker(p.name))
        w1, pump1 = farm.worker("w1")
        farm.reactor.pool.paused = True  # jobs run until the test lets them end
        done = transcoding.run(QueueItem(("c", "p", "clip.mov"), 1, 0.0))
        farm.net.flush()
        first = next(iter(w1.host.jobs.values()))
        self.assertEqual(first.spec.attempt, 1)
        w2, _pump2 = farm.worker("w2")
        farm.net.freeze(pump1)
        farm.net.run(LOST_TIMEOUT + 2)
        self.assertEqual(farm.removed, ["w1"])
        [second] = w2.host.jobs.values()
        self.assertEqual(second.spec.attempt, 2)
        farm.reactor.pool.resume()  # both attempts end; only w2's reaches the admin
        farm.net.flush()
        report = self.successResultOf(done)
        self.assertEqual((report.job_id, report.attempt), (second.job_id, 2))
        self.assertFalse(os.path.exists(source))
        failed_reports = report_files(os.path.join(farm.media, "reports", "failed"))
        self.assertEqual(failed_reports, [f"clip.mov.{second.job_id}.yaml"])
        self.assertIsNotNone(w1.host.jobs[first.job_id].outcome, "the stale attempt ended")
        farm.net.thaw(pump1)  # SIGCONT: w1 comes back with its stale, finished attempt
        farm.net.run(1)
        farm.net.accept()
        self.assertEqual(w1.host.jobs, {}, "the stale attempt was cancelled")
        self.assertEqual(w1.host.committed, {})
        self.assertEqual(
            report_files(os.path.join(farm.media, "reports", "failed")),
            [f"clip.mov.{second.job_id}.yaml"],
            "the stale attempt wrote no report",
        )

    def test_admin_restart_adopts_a_finished_job_and_commits_it_once(self):
        """A new admin attaches to the manager; it adopts the worker's finished job."""
        farm = Farm(self)
        farm.embedded()
        source = write_source(farm.media)
        adopted: list[defer.Deferred] = []

        def adopt(p: WorkerProxy, job: dict) -> bool:
            adopted.append(p.job_outcome(job["job_id"], job["attempt"]))
            return True

        farm.workers.on_unknown_job = adopt
        daemon = farm.daemon("w1")  # it outlived the previous admin with a finished job
        self.successResultOf(daemon.host.start_job(job_spec("J1", 1)))
        farm.net.accept()
        self.assertEqual(len(adopted), 1)
        farm.net.run(HEARTBEAT)
        self.assertEqual(self.successResultOf(adopted[0]).job_id, "J1")
        ack = farm.workers.proxies["w1"].acknowledge("J1")
        farm.net.flush()
        self.successResultOf(ack)
        self.assertFalse(os.path.exists(source))
        self.assertEqual(list(daemon.host.committed), ["J1"])
        self.assertRaises(KeyError, lambda: daemon.host.jobs["J1"])


#: A Latin-1 file name, kept as surrogate escapes (PB alone cannot carry them).
NOT_UTF8 = b"caf\xe9.mov".decode("utf-8", "surrogateescape")


class NotUtf8NameTests(SynchronousTestCase):
    """File names that are not UTF-8 cross every hop: hello, heartbeats, outcomes."""

    def test_a_worker_keeping_a_failure_of_such_a_name_stays_attached(self):
        """Kept failure with a Latin-1 name: heartbeats go on; the admin sees the name."""
        farm = Farm(self)
        farm.embedded()
        daemon, _pump = farm.worker("w1")
        write_source(farm.media, f"in/{NOT_UTF8}")
        outcome = self.successResultOf(
            daemon.host.start_job(job_spec("J1", 1, f"in/{NOT_UTF8}", keep_failed=3))
        )
        self.assertEqual(outcome["outcome"], "failed")
        self.successResultOf(daemon.host.acknowledge("J1", 1))
        farm.net.run(LOST_TIMEOUT + 2 * HEARTBEAT)
        self.assertEqual(farm.removed, [], "still alive")
        self.assertEqual(farm.workers.proxies["w1"].components["failed"][0]["key"][2], NOT_UTF8)
        # A new process of the same worker finds the kept failure and still attaches.
        daemon.stopService()
        farm.net.flush()
        again = farm.daemon("w1")
        self.assertEqual(again.host.kept_failed()[0]["key"][2], NOT_UTF8)
        farm.net.accept()
        farm.net.run(5)
        self.assertTrue(farm.workers.proxies["w1"].attached)

    def test_a_running_job_of_such_a_name_keeps_its_worker_alive(self):
        """The heartbeat's job list carries the name too."""
        farm = Farm(self)
        farm.embedded()
        daemon, _pump = farm.worker("w1")
        write_source(farm.media, f"in/{NOT_UTF8}")
        farm.reactor.pool.paused = True  # the job keeps running
        daemon.host.start_job(job_spec("J1", 1, f"in/{NOT_UTF8}"))
        farm.net.run(LOST_TIMEOUT + 2 * HEARTBEAT)
        self.assertEqual(farm.removed, [])
        self.assertEqual(farm.workers.proxies["w1"].reported_jobs[0]["key"][2], NOT_UTF8)
        farm.reactor.pool.resume()


class StandaloneComponentsTests(SynchronousTestCase):
    """An admin attaching to a standalone manager sees the components of right now."""

    def test_an_orphan_monitor_placed_after_login_is_swept_on_attach(self):
        """The manager's snapshot has the last heartbeat's components: the janitor acts."""
        farm = Farm(self)
        daemon, _ = farm.worker("w1")  # hello: no monitors
        daemon.monitors.customers["acme"] = _SpecCustomer("acme", ())  # an earlier admin's
        farm.net.run(6)  # heartbeats now list acme
        components = ComponentSet(farm.workers)
        janitor = Janitor(components, farm.reactor)
        janitor.claim(MONITOR, lambda c: False)  # no task of this admin claims it
        farm.managers.use_remote(MANAGER, USERS["admin"])
        first = farm.managers.start()
        farm.net.accept()
        self.successResultOf(first)
        farm.workers.start()
        farm.net.run(1)
        self.assertEqual(daemon.monitors.customers, {}, "stopped on the worker")
        farm.net.run(6)
        self.assertEqual(list(components.monitors), [])


class TamperedWorkerTests(SynchronousTestCase):
    """A real worker daemon whose messages are tampered with, over real PB."""

    def test_a_worker_saying_max_jobs_x_is_refused_and_its_connection_closed(self):
        """Not in the pool, not in the manager, one error line naming it and the field."""
        farm = Farm(self)
        farm.embedded()
        daemon = farm.daemon("w1")
        honest_info = daemon.info
        daemon.info = lambda: {**honest_info(), "max_jobs": "x"}  # type: ignore[method-assign]
        with capturedLogs() as events:
            farm.net.accept()
            farm.net.flush()
        self.assertEqual((farm.workers.proxies, farm.manager.workers), ({}, {}))
        self.assertIn("worker w1 refused: bad max_jobs", log_text(events))
        self.assertEqual(farm.added, [])

    def test_a_pushed_outcome_with_a_forged_report_path_commits_nothing_of_it(self):
        """The worker's outcome names a report elsewhere: never acknowledged; the source
        goes to failed with the admin's own report, naming the mismatch."""
        from transcoder_admin.worker import daemon as worker_daemon

        farm = Farm(self)
        farm.embedded()
        source = write_source(farm.media)
        honest = worker_daemon.outcome_wire

        def forged(document: dict) -> dict:
            # the pushed outcome; fail_source's report stays honest
            return {**honest(document), "report_path": "default:/admin.secret"}

        self.patch(worker_daemon, "outcome_wire", forged)
        daemon, _pump = farm.worker("w1")
        proxy = farm.workers.proxies["w1"]
        spec = job_spec("J1", 1)
        outcome = proxy.start_job(spec)
        farm.net.flush()
        got = self.successResultOf(outcome)
        self.assertEqual(got.failure.kind, "system")
        self.assertIn("does not match job J1: report_path", got.failure.reason)
        report = proxy.acknowledge("J1")
        farm.net.flush()
        self.assertEqual(self.successResultOf(report).report_path, spec.report_failed)
        self.assertEqual(daemon.host.committed, {}, "its own outcome was never committed")
        self.assertFalse(os.path.exists(source))
        self.assertFalse(os.path.exists(os.path.join(farm.media, "admin.secret")))
        [written] = report_files(os.path.join(farm.media, "reports", "failed"))
        with open(os.path.join(farm.media, "reports", "failed", written)) as f:
            self.assertIn("does not match job J1: report_path", f.read())
