"""The admin's worker set: liveness on an injected clock, and what happens to jobs.

The real :class:`Manager` relays between the admin's :class:`WorkerSet` (attached
through ``ManagerSet.use_embedded``) and workers whose *minds* are doubles that record
every call and let the test answer it, as a worker's ``WorkerMind`` would over PB.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from twisted.internet import defer
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.spread import pb
from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from transcoder_admin.manager import Manager, WorkerNotAttached
from transcoder_admin.prognosis import SYSTEM, JobFailure
from transcoder_admin.proxy import ManagerSet, WorkerProxy, WorkerSet
from transcoder_admin.records import JobSpec, Outcome
from transcoder_admin.wire import TooBig, decode
from transcoder_admin.worker.daemon import RemoteUnknownJob
from transcoder_admin.worker.interfaces import IWorkerConnection, UnknownJob, WorkerGone

LOST_TIMEOUT = 10.0
#: The clock starts at a real date (a worker heard at t=0 would read as never heard).
T0 = 1_700_000_000.0


class Call:
    """One call the admin made on a worker, waiting for the test's answer."""

    def __init__(self, method: str, args: tuple) -> None:
        self.method = method
        self.args = args
        self.deferred: defer.Deferred = defer.Deferred()


class MindDouble:
    """A worker's mind as the manager sees it: ``callRemote`` recorded, answered later."""

    def __init__(self) -> None:
        self.calls: list[Call] = []

    def callRemote(self, method: str, *args: Any) -> defer.Deferred:  # noqa: N802
        """Record the call; the test fires its Deferred."""
        call = Call(method, args)
        self.calls.append(call)
        return call.deferred

    def named(self, method: str) -> list[Call]:
        """The calls of one method, oldest first."""
        return [c for c in self.calls if c.method == method]


class BrokerDouble:
    """The worker's PB connection: ``transport.disconnecting`` once the manager drops it."""

    def __init__(self) -> None:
        self.transport = StringTransport()


class Worker:
    """A logged-in worker: its manager link, mind and connection."""

    def __init__(self, link: Any, mind: MindDouble, broker: BrokerDouble) -> None:
        self.link = link
        self.mind = mind
        self.broker = broker


class Cluster:
    """A manager, and the admin's worker set attached to it, on one clock."""

    def __init__(self, lost_timeout: float = LOST_TIMEOUT) -> None:
        self.clock = Clock()
        self.clock.advance(T0)
        self.manager = Manager()
        self.workers = WorkerSet(self.clock, lost_timeout)
        self.managers = ManagerSet(self.workers, self.clock)
        self.managers.use_embedded(self.manager)
        self.managers.start()
        self.workers.start()
        self.added: list[str] = []
        self.removed: list[str] = []
        self.up: list[str] = []
        self.down: list[str] = []
        self.unknown: list[tuple[str, dict]] = []
        self.workers.worker_added.subscribe(lambda p: self.added.append(p.name))
        self.workers.worker_removed.subscribe(self.removed.append)
        self.workers.link_up.subscribe(lambda p: self.up.append(p.name))
        self.workers.link_down.subscribe(lambda p: self.down.append(p.name))

    def login(self, name: str = "w1", jobs: list[dict] | None = None, max_jobs: int = 2) -> Worker:
        """A worker logs in and says hello with its jobs."""
        mind, broker = MindDouble(), BrokerDouble()
        link = self.manager.worker_login(name, mind, broker)
        info = {"host": "encoder", "roots": {"default": "/srv"}, "max_jobs": max_jobs}
        self.manager.worker_hello(link, info, list(jobs or []))
        return Worker(link, mind, broker)

    def beat(self, worker: Worker, jobs: list[dict] | None = None) -> None:
        """A heartbeat from the worker."""
        self.manager.heartbeat(worker.link, {"jobs": list(jobs or []), "time": 0})

    def logout(self, worker: Worker) -> None:
        """The worker's connection ends."""
        self.manager.worker_logout(worker.link)

    def proxy(self, name: str = "w1") -> WorkerProxy:
        """The admin's proxy of a worker."""
        return self.workers.proxies[name]

    def wait(self, seconds: float, step: float = 0.5) -> None:
        """Let time pass in small steps."""
        self.clock.pump([step] * round(seconds / step))


def spec(job_id: str = "J1", attempt: int = 1) -> dict:
    """A job configuration (only what the proxy reads)."""
    return JobSpec(
        job_id=job_id,
        attempt=attempt,
        customer="c",
        profile="p",
        relpath=f"{job_id}.mov",
        source=f"default:/in/{job_id}.mov",
        report_done=f"default:/reports/done/{job_id}.mov.{job_id}.yaml",
    )


def row(job_id: str = "J1", state: str = "running", attempt: int = 1) -> dict:
    """A job as a worker reports it in a hello or a heartbeat."""
    return {"job_id": job_id, "attempt": attempt, "state": state, "progress": {"percent": 5.0}}


OUTCOME = {"job_id": "J1", "attempt": 1, "outcome": "done", "failure": None}
#: The same outcome of a job's second attempt.
OUTCOME_2 = {**OUTCOME, "attempt": 2}


def report(attempt: int) -> dict:
    """A committed report of J1 as a worker sends it."""
    return {
        **OUTCOME,
        "attempt": attempt,
        "report_path": "default:/reports/done/J1.mov.J1.yaml",
        "customer": "c",
        "profile": "p",
        "relpath": "J1.mov",
    }


class LivenessTests(SynchronousTestCase):
    """A worker is lost after lost-timeout seconds of silence, measured on the clock."""

    def test_silent_worker_is_lost_after_lost_timeout_and_not_before(self):
        """Silent exactly lost-timeout seconds: still there; the next check loses it."""
        c = Cluster()
        w = c.login()
        c.wait(LOST_TIMEOUT)
        self.assertEqual(c.removed, [])
        self.assertEqual(c.proxy().info()["state"], "attached")
        self.assertEqual(c.proxy().info()["silent_for"], LOST_TIMEOUT)
        proxy = c.proxy()
        c.wait(LOST_TIMEOUT / 10)
        self.assertEqual(c.removed, ["w1"])
        self.assertEqual(c.down, ["w1"])
        self.assertNotIn("w1", c.workers.proxies)
        self.assertEqual(proxy.info()["state"], "lost")
        self.assertTrue(w.broker.transport.disconnecting, "the manager drops the lost worker")

    def test_silence_is_measured_from_the_last_heartbeat(self):
        """A heartbeat at t=3.5 moves the deadline to t=13.5: not lost at 13, lost at 14."""
        c = Cluster()
        w = c.login()
        c.wait(3.5)
        c.beat(w)
        c.wait(9.5)
        self.assertEqual(c.removed, [])
        c.wait(1.0)
        self.assertEqual(c.removed, ["w1"])

    def test_heartbeats_keep_a_worker_alive(self):
        """A worker beating every 5 s is never lost; its last heartbeat is shown."""
        c = Cluster()
        w = c.login()
        for _ in range(40):
            c.wait(5)
            c.beat(w)
        self.assertEqual(c.removed, [])
        info = c.proxy().info()
        self.assertEqual(info["state"], "attached")
        self.assertEqual(info["last_heartbeat"], "2023-11-14T22:16:40+00:00")
        self.assertEqual(info["silent_for"], 0.0)
        c.wait(LOST_TIMEOUT + 1)
        self.assertEqual(c.removed, ["w1"])

    def test_worker_facts_reach_the_proxy(self):
        """The proxy shows the worker's host, roots and slots, and honours the interface."""
        c = Cluster()
        c.login(max_jobs=3)
        proxy = c.proxy()
        self.assertTrue(verifyObject(IWorkerConnection, proxy))
        self.assertEqual(proxy.max_jobs, 3)
        info = proxy.info()
        self.assertEqual(
            (info["name"], info["host"], info["roots"]), ("w1", "encoder", {"default": "/srv"})
        )
        self.assertEqual((c.added, c.up), (["w1"], ["w1"]))

    def test_lost_worker_pending_outcomes_errback_worker_gone(self):
        """Started and adopted jobs of a lost worker fail with WorkerGone; so do new calls."""
        c = Cluster()
        c.login(jobs=[row("J2", "running", 4)])
        proxy = c.proxy()
        started = proxy.start_job(spec("J1"))
        adopted = proxy.job_outcome("J2", 4)
        disconnected = proxy.when_disconnected()
        self.assertNoResult(started)
        self.assertNoResult(adopted)
        c.wait(LOST_TIMEOUT + 1)
        self.failureResultOf(started, WorkerGone)
        self.failureResultOf(adopted, WorkerGone)
        self.assertIsNone(self.successResultOf(disconnected))
        self.failureResultOf(proxy.start_job(spec("J3")), WorkerGone)
        self.failureResultOf(proxy.acknowledge("J1"), WorkerGone)

    def test_detached_worker_back_within_the_timeout_keeps_its_jobs(self):
        """The link drops and comes back with the job: the same proxy waits on, no failover."""
        c = Cluster()
        w = c.login()
        proxy = c.proxy()
        outcome = proxy.start_job(spec("J1"))
        w.mind.named("start_job")[0].deferred.callback(True)
        c.wait(4)
        c.logout(w)
        self.assertEqual(proxy.info()["state"], "detached")
        self.assertEqual(c.down, ["w1"])
        c.wait(LOST_TIMEOUT - 5)
        w2 = c.login(jobs=[row("J1", "running")])
        self.assertIs(c.proxy(), proxy)
        self.assertEqual((c.added, c.up, c.removed), (["w1"], ["w1", "w1"], []))
        self.assertEqual(proxy.running_jobs(), ["J1"])
        self.assertEqual(w2.mind.named("cancel_job"), [], "its own job is not cancelled")
        c.wait(LOST_TIMEOUT - 1)
        self.assertEqual(c.removed, [], "the hello counts as a sign of life")
        self.assertNoResult(outcome)
        c.manager.job_finished(w2.link, "J1", OUTCOME)
        self.assertEqual(self.successResultOf(outcome), Outcome.from_wire(OUTCOME))

    def test_detached_worker_that_stays_away_is_lost(self):
        """A dropped link that does not come back: lost lost-timeout after its last sign."""
        c = Cluster()
        w = c.login()
        outcome = c.proxy().start_job(spec("J1"))
        c.wait(6)
        c.beat(w)
        c.logout(w)
        c.wait(LOST_TIMEOUT)
        self.assertEqual(c.removed, [])
        c.wait(1)
        self.assertEqual(c.removed, ["w1"])
        self.assertEqual(c.down, ["w1"], "link-down fires once, at the drop")
        self.failureResultOf(outcome, WorkerGone)

    def test_reattach_without_the_job_fails_it_with_worker_gone(self):
        """A worker back without a job it ran (it restarted): that job fails, others go on."""
        c = Cluster()
        w = c.login()
        proxy = c.proxy()
        gone = proxy.start_job(spec("J1"))
        kept = proxy.start_job(spec("J2"))
        c.logout(w)
        c.login(jobs=[row("J2", "running")])
        self.failureResultOf(gone, WorkerGone)
        self.assertNoResult(kept)
        self.assertEqual(proxy.running_jobs(), ["J2"])

    def test_start_while_detached_waits_for_the_next_hello(self):
        """A start that could not reach the worker fails at its next hello if not running."""
        c = Cluster()
        w = c.login()
        proxy = c.proxy()
        c.logout(w)
        outcome = proxy.start_job(spec("J1"))
        self.assertNoResult(outcome)
        c.login(jobs=[])
        self.failureResultOf(outcome, WorkerGone)

    def test_finished_state_in_a_heartbeat_fetches_the_outcome(self):
        """The outcome message was lost: a heartbeat saying finished makes the admin ask."""
        c = Cluster()
        w = c.login()
        outcome = c.proxy().start_job(spec("J1"))
        c.beat(w, [row("J1", "running")])
        self.assertEqual(w.mind.named("outcome"), [])
        self.assertEqual(c.proxy().job_progress("J1"), {"percent": 5.0})
        c.beat(w, [row("J1", "finished")])
        asks = w.mind.named("outcome")
        self.assertEqual([a.args for a in asks], [("J1",)])
        c.beat(w, [row("J1", "finished")])
        self.assertEqual(len(w.mind.named("outcome")), 1, "asked once")
        asks[0].deferred.callback(OUTCOME)
        self.assertEqual(self.successResultOf(outcome), Outcome.from_wire(OUTCOME))

    def test_outcome_of_a_job_the_worker_forgot_is_worker_gone(self):
        """Asked for the outcome, the worker says it has no such job: WorkerGone."""
        c = Cluster()
        w = c.login()
        outcome = c.proxy().start_job(spec("J1"))
        c.beat(w, [row("J1", "finished")])
        w.mind.named("outcome")[0].deferred.errback(RemoteUnknownJob("J1"))
        self.failureResultOf(outcome, WorkerGone)

    def test_adopting_a_finished_job_fetches_its_outcome_at_once(self):
        """After an admin restart, a job reported finished is adopted by asking its outcome."""
        c = Cluster()
        adopted: list[defer.Deferred] = []
        c.workers.on_unknown_job = adopting(adopted)
        w = c.login(jobs=[row("J1", "finished", 2)])
        asks = w.mind.named("outcome")
        self.assertEqual([a.args for a in asks], [("J1",)])
        asks[0].deferred.callback(OUTCOME_2)
        self.assertEqual(self.successResultOf(adopted[0]), Outcome.from_wire(OUTCOME_2))

    def test_adopted_finished_job_gets_its_outcome_by_the_next_heartbeat(self):
        """At the latest, the next heartbeat saying finished fetches the adopted outcome."""
        c = Cluster()
        adopted: list[defer.Deferred] = []
        c.workers.on_unknown_job = adopting(adopted)
        w = c.login(jobs=[row("J1", "finished", 2)])
        c.wait(5)
        c.beat(w, [row("J1", "finished", 2)])
        asks = w.mind.named("outcome")
        self.assertEqual([a.args for a in asks], [("J1",)])
        asks[0].deferred.callback(OUTCOME_2)
        self.assertEqual(self.successResultOf(adopted[0]), Outcome.from_wire(OUTCOME_2))
        report = c.proxy().acknowledge("J1")
        self.assertEqual(w.mind.named("acknowledge")[0].args, ("J1", 2))
        self.assertNoResult(report)


def adopting(adopted: list) -> Any:
    """An unknown-job handler that adopts every job (waits for its outcome)."""

    def adopt(proxy: Any, job: dict) -> bool:
        adopted.append(proxy.job_outcome(job["job_id"], job["attempt"]))
        return True

    return adopt


class UnknownJobTests(SynchronousTestCase):
    """Jobs a worker reports that this admin did not start."""

    def test_unknown_job_is_cancelled_by_default(self):
        """A job the admin knows nothing of is cancelled on the worker (it moves nothing)."""
        c = Cluster()
        w = c.login(jobs=[row("X", "finished")])
        self.assertEqual([a.args for a in w.mind.named("cancel_job")], [("X",)])
        self.assertEqual(w.mind.named("acknowledge"), [])
        self.assertEqual(c.proxy().running_jobs(), [])

    def test_unknown_job_handler_gets_the_job_with_its_spec(self):
        """The admin's handler decides (adopt or cancel) with the worker's full report."""
        c = Cluster()
        seen: list[tuple[str, dict]] = []

        def decide(proxy: Any, job: dict) -> bool:
            seen.append((proxy.name, job))
            return True  # adopted: not cancelled

        c.workers.on_unknown_job = decide
        job = dict(row("X", "running", 2), spec=spec("X", 2).to_wire())
        w = c.login(jobs=[job])
        self.assertEqual(seen, [("w1", job)])
        self.assertEqual(w.mind.named("cancel_job"), [])
        self.assertEqual(c.proxy().reported, {"X"})

    def test_lost_worker_coming_back_is_a_new_worker_and_its_old_jobs_are_cancelled(self):
        """After lost, the same name logs in again: a new proxy; its stale job is cancelled."""
        c = Cluster()
        w = c.login()
        old = c.proxy()
        outcome = old.start_job(spec("J1", 1))
        w.mind.named("start_job")[0].deferred.callback(True)
        c.wait(LOST_TIMEOUT + 1)
        self.failureResultOf(outcome, WorkerGone)
        c.logout(w)
        w2 = c.login(jobs=[row("J1", "finished", 1)])
        self.assertIsNot(c.proxy(), old)
        self.assertEqual(c.added, ["w1", "w1"])
        self.assertTrue(old.lost)
        self.assertEqual([a.args for a in w2.mind.named("cancel_job")], [("J1",)])
        self.assertEqual(w2.mind.named("acknowledge"), [])


class OversizeTests(SynchronousTestCase):
    """Only bounded values cross the wire; a job too big to send is refused here."""

    def test_a_spec_too_big_to_send_is_refused_before_anything_is_sent(self):
        """TooBig naming the job's configuration; the worker is not asked, nothing is kept."""
        c = Cluster()
        w = c.login()
        proxy = c.proxy()
        huge = replace(spec("J1"), targets=({"name": "t" * 1000},) * 600)
        failure = self.failureResultOf(proxy.start_job(huge), TooBig)
        self.assertIn("the job's configuration is too big to send", str(failure.value))
        self.assertEqual(w.mind.named("start_job"), [])
        self.assertEqual(proxy.running_jobs(), [])

    def test_a_start_the_worker_refuses_leaves_no_phantom_job(self):
        """Refused (not a lost link): the outcome fails and the job is not counted."""
        c = Cluster()
        w = c.login()
        proxy = c.proxy()
        outcome = proxy.start_job(spec("J1"))
        w.mind.named("start_job")[0].deferred.errback(pb.Error("no room"))
        self.failureResultOf(outcome)
        self.assertEqual((proxy.running_jobs(), proxy.info()["running"]), ([], 0))

    def test_fail_source_sends_only_what_a_report_needs(self):
        """The source of a job that could not be sent can still be failed with a report."""
        c = Cluster()
        w = c.login()
        huge = replace(
            spec("J1"), source="default:/in/x.mov", targets=({"name": "t" * 1000},) * 600
        )
        c.proxy().fail_source(huge, JobFailure(SYSTEM, "too big"))
        (call,) = w.mind.named("fail_source")
        sent = decode(call.args[0])
        self.assertEqual(sent["source"], "default:/in/x.mov")
        self.assertNotIn("targets", sent)


class AcknowledgeTests(SynchronousTestCase):
    """The acknowledgement carries the attempt and survives a dropped link."""

    def test_acknowledge_sends_the_current_attempt(self):
        """The fencing token is the attempt the admin started."""
        c = Cluster()
        w = c.login()
        proxy = c.proxy()
        proxy.start_job(spec("J1", attempt=3))
        c.manager.job_finished(w.link, "J1", {**OUTCOME, "attempt": 3})
        committed = proxy.acknowledge("J1")
        (ack,) = w.mind.named("acknowledge")
        self.assertEqual(ack.args, ("J1", 3))
        ack.deferred.callback(report(3))
        self.assertEqual(self.successResultOf(committed).outcome, "done")
        self.assertEqual(proxy.running_jobs(), [])

    def test_acknowledge_waits_for_a_detached_worker_then_retries(self):
        """Sent while the link is down, or lost on the way: sent again after the next hello."""
        c = Cluster()
        w = c.login()
        proxy = c.proxy()
        proxy.start_job(spec("J1", attempt=2))
        c.manager.job_finished(w.link, "J1", OUTCOME_2)
        committed = proxy.acknowledge("J1")
        w.mind.named("acknowledge")[0].deferred.errback(pb.PBConnectionLost("gone"))
        c.logout(w)
        self.assertNoResult(committed)
        w2 = c.login(jobs=[row("J1", "finished", 2)])
        c.clock.advance(0)  # the waiting call goes on at the next turn of the event loop
        (again,) = w2.mind.named("acknowledge")
        self.assertEqual(again.args, ("J1", 2))
        again.deferred.callback(report(2))
        self.assertEqual(self.successResultOf(committed).outcome, "done")

    def test_acknowledge_refused_by_the_worker_is_unknown_job(self):
        """The worker's refusal (wrong attempt, no such job) becomes a local UnknownJob."""
        c = Cluster()
        w = c.login()
        proxy = c.proxy()
        proxy.start_job(spec("J1"))
        report = proxy.acknowledge("J1")
        w.mind.named("acknowledge")[0].deferred.errback(RemoteUnknownJob("J1 is attempt 2"))
        failure = self.failureResultOf(report, UnknownJob)
        self.assertIn("J1 is attempt 2", str(failure.value))

    def test_acknowledge_waiting_for_a_worker_that_is_lost_fails(self):
        """An acknowledgement waiting for a link that never comes back: WorkerGone."""
        c = Cluster()
        w = c.login()
        proxy = c.proxy()
        outcome = proxy.start_job(spec("J1"))
        c.logout(w)
        report = proxy.acknowledge("J1")
        self.assertEqual(w.mind.named("acknowledge"), [])
        c.wait(LOST_TIMEOUT + 1)
        self.failureResultOf(report, WorkerGone)
        self.failureResultOf(outcome, WorkerGone)

    def test_cancel_settles_the_outcome_and_tells_the_worker(self):
        """A cancelled job's outcome fails at once; the worker is told to kill it."""
        c = Cluster()
        w = c.login()
        proxy = c.proxy()
        outcome = proxy.start_job(spec("J1"))
        done = proxy.cancel_job("J1")
        self.failureResultOf(outcome, WorkerGone)
        (cancel,) = w.mind.named("cancel_job")
        self.assertEqual(cancel.args, ("J1",))
        self.assertNoResult(done)
        cancel.deferred.callback(True)
        self.assertIsNone(self.successResultOf(done))
        self.assertEqual(proxy.running_jobs(), [])


    def test_cancel_while_the_link_is_down_waits_for_the_worker_or_its_loss(self):
        """The job may still run on a worker whose link dropped: the cancel fires only
        once the worker is back and says it is killed, or once it is declared lost."""
        c = Cluster()
        w = c.login()
        proxy = c.proxy()
        outcome = proxy.start_job(spec("J1"))
        w.mind.named("start_job")[0].deferred.callback(True)
        c.logout(w)
        done = proxy.cancel_job("J1")
        self.failureResultOf(outcome, WorkerGone)
        c.wait(5)
        self.assertNoResult(done)
        back = c.login(jobs=[row("J1", "running")])
        c.clock.advance(0)
        cancels = back.mind.named("cancel_job")
        self.assertTrue(cancels)
        self.assertEqual({call.args for call in cancels}, {("J1",)})
        self.assertNoResult(done)
        for call in cancels:
            call.deferred.callback(True)
        self.assertIsNone(self.successResultOf(done))

        away = proxy.start_job(spec("J2"))
        back.mind.named("start_job")[-1].deferred.callback(True)
        c.logout(back)
        gone = proxy.cancel_job("J2")
        self.failureResultOf(away, WorkerGone)
        c.wait(LOST_TIMEOUT - 1)
        self.assertNoResult(gone)
        c.wait(2)
        self.assertEqual(c.removed, ["w1"])
        self.assertIsNone(self.successResultOf(gone))


class ManagerRelayTests(SynchronousTestCase):
    """The manager relays calls and news, and knows nothing of jobs."""

    def test_call_to_a_worker_that_is_not_logged_in_fails_with_worker_not_attached(self):
        """The admin's call for an absent worker fails at once."""
        c = Cluster()
        self.failureResultOf(c.manager.call_worker("nobody", "ping"), WorkerNotAttached)

    def test_second_login_under_one_name_closes_the_first_connection(self):
        """The newest connection wins; the old one is closed and its news are ignored."""
        c = Cluster()
        first = c.login()
        second = c.login()
        self.assertTrue(first.broker.transport.disconnecting)
        self.assertFalse(second.broker.transport.disconnecting)
        self.assertEqual(c.up, ["w1", "w1"])
        self.assertEqual(c.down, ["w1"])
        c.logout(first)  # the old connection's end arrives late
        self.assertEqual(c.proxy().info()["state"], "attached")
        c.manager.call_worker("w1", "ping")
        self.assertEqual((len(first.mind.calls), len(second.mind.calls)), (0, 1))

    def test_manager_going_away_detaches_every_worker_without_losing_them(self):
        """Workers whose manager vanished are detached, lost only after the timeout."""
        c = Cluster()
        c.login("a")
        c.login("b")
        c.workers.all_detached()
        self.assertEqual(sorted(c.down), ["a", "b"])
        self.assertEqual(
            {n: p.info()["state"] for n, p in c.workers.proxies.items()},
            {"a": "detached", "b": "detached"},
        )
        c.wait(LOST_TIMEOUT + 1)
        self.assertEqual(sorted(c.removed), ["a", "b"])

    def test_a_failing_admin_listener_does_not_stop_the_others(self):
        """One attached admin that raises does not keep the news from the next one."""
        c = Cluster()

        class Broken:
            def worker_attached(self, *args):
                raise RuntimeError("broken admin")

        c.manager.listeners.insert(0, Broken())
        c.login()
        self.assertEqual(c.added, ["w1"])
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)
