"""Transcoding tasks: balancing, retries of system failures, fencing of lost workers."""

from __future__ import annotations

from collections import Counter

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule
from twisted.internet import defer
from twisted.internet.task import Clock
from twisted.spread import pb
from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from transcoder_admin.context.paths import Roots
from transcoder_admin.job.job import build_report, fail_source
from transcoder_admin.prognosis import JobFailure
from transcoder_admin.proxy import RemoteError
from transcoder_admin.records import JobSpec
from transcoder_admin.reports.files import read_report
from transcoder_admin.scheduler import QueueItem, Scheduler, SourceChanged, SourceStuck
from transcoder_admin.transcoding import Transcoding
from transcoder_admin.transcoding.journal import Journal
from transcoder_admin.wire import TooBig
from transcoder_admin.worker.interfaces import IWorkerConnection, WorkerGone
from transcoder_admin.worker.local import InProcessWorkerConnection, JobHost
from transcoder_admin.worker.testing import ScriptedWorker

from .test_workers import OUTCOME, Cluster
from .test_workers import spec as worker_spec

COMMIT_FAILED = {"kind": "system", "reason": "cannot write the report /r/done/x.yaml: No space"}
CHANGED = {"kind": "changed", "reason": "source changed during the job"}


class FakeWorker(ScriptedWorker):
    """The scripted worker, ending jobs with the failures (dicts) these tests name."""

    uncommitted = JobFailure.from_dict(COMMIT_FAILED)
    changed = JobFailure.from_dict(CHANGED)

    def outcome(self, failure=None, lost=False):
        """End the oldest running job."""
        self.finish(self.running()[0], failure, lost)

    def finish(self, job_id, failure=None, lost=False):
        """End one running job (``failure`` a dict, as the tests write them)."""
        if isinstance(failure, dict):
            failure = JobFailure.from_dict(failure)
        super().finish(job_id, failure, lost)


def item_spec(item: QueueItem, job_id: str, attempt: int, max_attempts: int) -> JobSpec:
    """The spec of one attempt at a queued file (paths below a ``default`` root)."""
    customer, profile, relpath = item.key
    return JobSpec(
        job_id=job_id,
        attempt=attempt,
        max_attempts=max_attempts,
        customer=customer,
        profile=profile,
        relpath=relpath,
        source=f"default:/in/{relpath}",
    )


def make(max_attempts=2):
    """A Transcoding part whose job specs record the attempt."""
    clock = Clock()

    def spec(item, job_id, attempt):
        return item_spec(item, job_id, attempt, max_attempts)

    return Transcoding(spec, clock)


ITEM = QueueItem(("c", "p", "f.mov"), 1, 0.0)
SYSTEM = {"kind": "system", "reason": "timed out after 5 s"}
SOURCE = {"kind": "source", "reason": "not a media file"}


def test_fake_and_in_process_connections_honour_the_interface(tmp_path):
    """The contract: both implementations provide IWorkerConnection."""
    host = JobHost("w", Roots({"default": str(tmp_path)}), 2, Clock())
    assert verifyObject(IWorkerConnection, InProcessWorkerConnection(host))
    assert verifyObject(IWorkerConnection, FakeWorker("f"))


def test_balancer_picks_the_worker_with_most_free_slots():
    """Jobs go where the most slots are free; capacity sums the slots."""
    t = make()
    a, b = FakeWorker("a", 1), FakeWorker("b", 3)
    t.add_worker(a)
    t.add_worker(b)
    assert t.capacity() == 4
    t.run(QueueItem(("c", "p", "1"), 1, 0))
    t.run(QueueItem(("c", "p", "2"), 1, 0))
    assert [len(a.started), len(b.started)] == [0, 2]
    t.run(QueueItem(("c", "p", "3"), 1, 0))
    assert [len(a.started), len(b.started)] == [1, 2]
    assert t.free_slots() == 1


def test_free_slots_are_counted_per_backend_as_workers_come_go_and_change():
    """Each backend's free slots follow joins, leaves, jobs and a worker that re-attaches."""
    t = make()
    a, q = FakeWorker("a", 2), FakeWorker("q", 3)
    q.backend = "qmaster"
    t.add_worker(a)
    t.add_worker(q)
    assert (t.free_slots(), t.free_slots("ffmpeg"), t.free_slots("qmaster")) == (5, 2, 3)
    t.run(QueueItem(("c", "p", "1"), 1, 0))
    assert (t.free_slots("ffmpeg"), t.free_slots("qmaster")) == (1, 3)
    assert t.pick_worker("qmaster") is q and t.pick_worker("elsewhere") is None
    a.max_jobs = 4  # it attached again, configured with more slots
    t.add_worker(a)
    assert (t.free_slots("ffmpeg"), t.free_slots()) == (3, 6)
    t.remove_worker("q")
    assert (t.free_slots("qmaster"), t.pick_worker("qmaster")) == (0, None)
    a.finish(a.started[0].job_id)
    assert t.free_slots() == 4 and t.load == {"a": 0, "q": 0}


def test_system_failure_retries_with_the_next_attempt_then_acknowledges():
    """Attempt 1 times out, attempt 2 succeeds; only the final outcome is committed."""
    t = make(max_attempts=2)
    w = FakeWorker("w", 1)
    t.add_worker(w)
    d = t.run(ITEM)
    w.outcome(SYSTEM)
    assert [s.attempt for s in w.started] == [1, 2]
    assert w.cancelled == [w.started[0].job_id] and w.acked == []
    w.outcome(None)
    assert w.acked == [w.started[1].job_id]
    assert d.called


def test_source_failure_is_final_at_once():
    """A source failure is acknowledged (source to failed) without another attempt."""
    t = make(max_attempts=3)
    w = FakeWorker("w", 1)
    t.add_worker(w)
    t.run(ITEM)
    w.outcome(SOURCE)
    assert len(w.started) == 1 and w.acked == [w.started[0].job_id]


def test_lost_worker_retries_elsewhere_then_fails_the_source():
    """A worker lost mid-job: retried on another; lost again at the last attempt → failed."""
    t = make(max_attempts=2)
    a, b = FakeWorker("a", 1), FakeWorker("b", 1)
    t.add_worker(a)
    t.add_worker(b)
    d = t.run(ITEM)
    first = a if a.started else b
    t.remove_worker(first.name)  # the worker set drops a lost worker
    first.outcome(lost=True)
    second = b if first is a else a
    assert [s.attempt for s in second.started] == [2]
    t.add_worker(first)  # it comes back; the last attempt is lost too
    second.outcome(lost=True)
    reports = []
    d.addCallback(reports.append)
    assert reports and reports[0].outcome == "failed"
    failed = a.failed_sources + b.failed_sources
    assert len(failed) == 1 and "was lost" in failed[0][1].reason
    assert a.acked == b.acked == []


class RefusingWorker(FakeWorker):
    """A worker that cannot take the job (the wire refuses it, or the worker does)."""

    def start_job(self, spec):
        self.started.append(spec)
        return defer.fail(TooBig("the job's configuration is too big to send"))


def test_a_job_that_cannot_start_fails_with_a_report_after_its_attempts():
    """Refused at start: retried within max-attempts, then the source fails with the reason."""
    t = make(max_attempts=2)
    w = RefusingWorker("w", 1)
    t.add_worker(w)
    reports = []
    t.run(ITEM).addCallback(reports.append)
    assert [s.attempt for s in w.started] == [1, 2]
    assert reports and reports[0].outcome == "failed"
    [(_spec, failure)] = w.failed_sources
    assert failure.kind == "system"
    assert failure.reason.startswith("the job could not start on 'w': the job's config")
    assert t.tasks == {} and t.load == {"w": 0}


def test_fail_source_moves_the_source_and_writes_a_report(tmp_path):
    """Failing a dead job's source for real: the file lands in failed beside its report."""
    roots = Roots({"default": str(tmp_path / "m"), "temp": str(tmp_path / "t")})
    src = tmp_path / "m" / "in" / "x.mov"
    src.parent.mkdir(parents=True)
    src.write_bytes(b"data")
    spec = {
        "job_id": "J",
        "attempt": 2,
        "customer": "c",
        "profile": "p",
        "relpath": "x.mov",
        "source": "default:/in/x.mov",
        "failed": "default:/failed/x.mov",
        "report_failed": "default:/reports/x.mov.J.yaml",
        "report_done": "default:/r/x",
    }
    report = build_report(JobSpec.from_wire(spec), "w", Clock(), JobFailure.from_dict(SYSTEM))
    fail_source(roots, JobSpec.from_wire(spec), report)
    assert report["outcome"] == "failed" and report["failure"]["reason"] == SYSTEM["reason"]
    assert (tmp_path / "m" / "failed" / "x.mov").read_bytes() == b"data"
    assert not src.exists()
    saved = read_report(str(tmp_path / "m" / "reports" / "x.mov.J.yaml"))
    assert saved["failure"]["kind"] == "system" and saved["attempt"] == 2


def ended(d):
    """What a task's Deferred fired with: a report, or the exception it failed with."""
    results = []
    d.addBoth(lambda r: results.append(r.value if hasattr(r, "value") else r))
    assert results, "the task has not ended"
    return results[0]


def test_a_commit_undone_is_retried_then_the_source_fails_with_the_commit_error():
    """committed False twice with max-attempts 2: two jobs, then failed with that reason."""
    t = make(max_attempts=2)
    w = FakeWorker("w", 1)
    t.add_worker(w)
    w.ack_script = ["uncommitted", "uncommitted"]
    d = t.run(QueueItem(("c", "p", "x.mov"), 1, 0.0))
    w.outcome(None)
    w.outcome(None)
    report = ended(d)
    assert [s.attempt for s in w.started] == [1, 2]  # no third transcoding
    assert w.cancelled == [s.job_id for s in w.started]  # each undone attempt cleaned
    assert report.outcome == "failed"
    [(spec, failure)] = w.failed_sources
    assert spec.attempt == 2
    assert (failure.kind, failure.reason) == (COMMIT_FAILED["kind"], COMMIT_FAILED["reason"])
    assert t.load == {"w": 0} and t.tasks == {}


def test_an_error_from_acknowledge_is_a_system_failure_of_that_attempt():
    """A commit that raised (older worker) counts as an attempt: retried, then failed."""
    t = make(max_attempts=2)
    w = FakeWorker("w", 1)
    t.add_worker(w)
    w.ack_script = ["raise", "raise"]
    d = t.run(QueueItem(("c", "p", "x.mov"), 1, 0.0))
    w.outcome(None)
    assert [s.attempt for s in w.started] == [1, 2]
    assert w.cleaned == [w.started[0].job_id]  # its leftovers are removed
    w.outcome(None)
    assert ended(d).outcome == "failed"
    [(_spec, failure)] = w.failed_sources
    assert failure.kind == "system"
    assert failure.reason.startswith("committing the outcome on 'w' failed: [Errno 20] Not a")
    assert t.load == {"w": 0}


def test_a_source_that_cannot_be_failed_is_stuck_with_the_reason():
    """fail_source errbacks: the task ends with SourceStuck naming both errors; slot freed."""
    t = make(max_attempts=1)
    w = FakeWorker("w", 1)
    t.add_worker(w)
    w.fail_source_error = RemoteError("[Errno 13] Permission denied: '/m/failed/x.mov'")
    d = t.run(QueueItem(("c", "p", "x.mov"), 1, 0.0))
    w.outcome(lost=True)
    error = ended(d)
    assert isinstance(error, SourceStuck)
    assert "cannot move the source to failed ([Errno 13] Permission denied" in str(error)
    assert str(error).endswith("after: worker 'w' was lost")
    assert len(w.started) == 1 and t.load == {"w": 0} and t.tasks == {}


def test_a_job_that_cannot_be_built_is_stuck_and_takes_no_slot():
    """make_spec raising ends the task as stuck with the reason; no slot is taken."""

    def broken(item, job_id, attempt):
        raise LookupError("profile c/p no longer exists")

    t = Transcoding(broken, Clock())
    w = FakeWorker("w", 1)
    t.add_worker(w)
    error = ended(t.run(QueueItem(("c", "p", "x.mov"), 1, 0.0)))
    assert isinstance(error, SourceStuck)
    assert str(error) == "cannot build the job: profile c/p no longer exists"
    assert w.started == [] and t.free_slots() == 1


def test_a_changed_source_discards_the_attempt_without_counting_it():
    """changed at the end of attempt 2: cancelled, no commit; the next job is attempt 2."""
    t = make(max_attempts=2)
    w = FakeWorker("w", 1)
    t.add_worker(w)
    item = QueueItem(("c", "p", "x.mov"), 1, 0.0)
    d = t.run(item)
    w.outcome(SYSTEM)
    w.outcome(CHANGED)
    assert isinstance(ended(d), SourceChanged)
    assert w.cancelled == [s.job_id for s in w.started] and w.acked == []
    assert w.failed_sources == [] and t.load == {"w": 0}
    assert item.attempts == 1  # the discarded attempt is not counted
    again = t.run(QueueItem(item.key, 1, 0.0, attempts=item.attempts))
    assert w.started[-1].attempt == 2
    w.outcome(None)
    assert ended(again).committed is True


def test_a_source_changed_at_commit_is_discarded_the_same_way():
    """committed False with a changed failure: cancelled, not counted, not failed."""
    t = make(max_attempts=1)
    w = FakeWorker("w", 1)
    t.add_worker(w)
    w.ack_script = ["changed"]
    item = QueueItem(("c", "p", "x.mov"), 1, 0.0)
    d = t.run(item)
    w.outcome(None)
    assert isinstance(ended(d), SourceChanged)
    assert w.cancelled == [w.started[0].job_id] and w.failed_sources == []
    assert item.attempts == 0 and t.load == {"w": 0}


class RaisingFile:
    """A journal file whose every write fails as on a full disk."""

    def write(self, text):
        """Fail."""
        raise OSError(28, "No space left on device")

    def close(self):
        """Nothing to close."""


def test_a_journal_that_cannot_be_written_costs_no_slot(tmp_path):
    """Journal writes failing (full disk, closed file): the jobs end done, slots come back."""
    t = make()
    w = FakeWorker("w", 1)
    t.add_worker(w)
    journal = Journal(str(tmp_path))
    journal.open()
    journal._file = RaisingFile()
    t.journal = journal
    first = t.run(QueueItem(("c", "p", "a.mov"), 1, 0.0))
    w.outcome(None)
    assert ended(first).committed is True
    assert t.free_slots() == 1 and journal.failing
    closed = Journal(str(tmp_path / "other"))
    closed.open()
    closed._file.close()  # writes raise ValueError now
    t.journal = closed
    second = t.run(QueueItem(("c", "p", "b.mov"), 1, 0.0))
    w.outcome(None)
    assert ended(second).committed is True
    assert t.free_slots() == 1 and t.load == {"w": 0} and t.tasks == {}


def test_a_journal_in_place_of_which_is_a_folder_is_run_without(tmp_path):
    """A folder where the journal should be: open logs and returns no jobs; writes are no-ops."""
    (tmp_path / "jobs.journal").mkdir()
    journal = Journal(str(tmp_path))
    assert journal.open() == {} and journal.failing
    journal.started("J", ["c", "p", "x"], 1, "w")
    journal.ended("J")


def test_the_journal_records_the_identity_the_job_was_offered_with(tmp_path):
    """The start entry carries the spec's source_identity, for adoption after a crash."""
    identity = {"dev": 2049, "ino": 7, "size": 10, "mtime_ns": 5, "host": "h"}

    def spec(item, job_id, attempt):
        return JobSpec(
            job_id=job_id,
            attempt=attempt,
            customer="c",
            profile="p",
            relpath="x.mov",
            source="default:/in/x.mov",
            source_identity=item.identity,
        )

    t = Transcoding(spec, Clock())
    t.add_worker(FakeWorker("w", 1))
    t.journal = Journal(str(tmp_path))
    t.journal.open()
    t.run(QueueItem(("c", "p", "x.mov"), 1, 0.0, identity=identity))
    t.journal.close()
    [entry] = Journal(str(tmp_path)).open().values()
    assert entry["identity"] == identity and entry["key"] == ["c", "p", "x.mov"]


BEHAVIOURS = (
    "done",
    "source",
    "system",
    "lost",
    "uncommitted",
    "ack-raises",
    "changed",
    "commit-changed",
)
MAX_ATTEMPTS = 2
MAX_CHANGES = 2


class FlowMachine(RuleBasedStateMachine):
    """Scheduler and transcoding over a fake worker whose jobs and commits fail at random.

    Every file ends in done, failed or stuck exactly once, and none is transcoded more
    than max-attempts times plus the times its source changed (changes are bounded, as
    uploads are): no loop.
    """

    def __init__(self) -> None:
        super().__init__()
        clock = Clock()
        self.worker = FakeWorker("w", 2)
        self.transcoding = make(MAX_ATTEMPTS)
        self.transcoding.add_worker(self.worker)
        self.scheduler = Scheduler(self.transcoding, clock)
        self.ended: Counter = Counter()
        self.changes: Counter = Counter()
        self.offered: set = set()
        for event in ("done", "failed"):
            getattr(self.scheduler, f"transcoding_{event}").subscribe(
                lambda f: self.ended.update([f.item.key])
            )
        self.scheduler.transcoding_stuck.subscribe(lambda s: self.ended.update([s.item.key]))
        self.scheduler.transcoding_abandoned.subscribe(self._offered_again)
        self.scheduler.start()
        self.names = 0

    def _offered_again(self, item) -> None:
        """What monitoring does for a changed source: a new arrival, attempts carried."""
        self.scheduler.enqueue(item.key, 1, 0.0, attempts=item.attempts)

    def starts(self, key) -> int:
        """How many jobs were started for a file."""
        return sum(1 for s in self.worker.started if tuple(s.key) == key)

    @rule()
    def drop_file(self):
        """A new file is offered."""
        self.names += 1
        key = ("c", "p", f"f{self.names}")
        self.offered.add(key)
        self.scheduler.enqueue(key, 1, 0.0)

    @rule(broken=st.booleans())
    def failed_folder(self, broken):
        """The failed folder becomes unwritable (or writable again)."""
        self.worker.fail_source_error = RemoteError("Permission denied") if broken else None

    @precondition(lambda self: self.worker.running())
    @rule(index=st.integers(0, 10), behaviour=st.sampled_from(BEHAVIOURS))
    def job_ends(self, index, behaviour):
        """A running job ends as the behaviour says (its commit too)."""
        job_id = list(self.worker.running())[index % len(self.worker.running())]
        key = next(tuple(s.key) for s in self.worker.started if s.job_id == job_id)
        if behaviour in ("changed", "commit-changed"):
            if self.changes[key] >= MAX_CHANGES:
                behaviour = "done"
            else:
                self.changes[key] += 1
        if behaviour in ("uncommitted", "commit-changed", "ack-raises"):
            self.worker.ack_script.append(
                {"uncommitted": "uncommitted", "commit-changed": "changed"}.get(behaviour, "raise")
            )
        failure = {"source": SOURCE, "system": SYSTEM, "changed": CHANGED}.get(behaviour)
        self.worker.finish(job_id, failure, lost=behaviour == "lost")
        assert not self.worker.ack_script  # consumed by this job's commit

    @invariant()
    def ends_at_most_once_and_never_loops(self):
        """No file ends twice; none starts more often than its attempts and changes allow."""
        assert all(count == 1 for count in self.ended.values())
        for key in self.offered:
            assert self.starts(key) <= MAX_ATTEMPTS + self.changes[key]

    def teardown(self):
        """Drain: every remaining job ends done; every file ended exactly once, slots free."""
        while self.worker.running():
            self.worker.finish(next(iter(self.worker.running())))
        assert set(self.ended) == self.offered
        assert all(count == 1 for count in self.ended.values())
        assert self.transcoding.free_slots() == 2 and not self.scheduler.running()


FlowMachine.TestCase.settings = settings(max_examples=60, stateful_step_count=30, deadline=None)
TestFlow = FlowMachine.TestCase


class ProxyCommitTests(SynchronousTestCase):
    """The PB worker proxy passes a failed commit on, and forgets the job either way."""

    def test_a_commit_that_raised_on_the_worker_is_an_error_and_the_job_is_over(self):
        """The worker's commit raised: the admin gets a RemoteError naming it; no job is left."""
        c = Cluster()
        w = c.login()
        proxy = c.proxy()
        proxy.start_job(worker_spec("J1"))
        c.manager.job_finished(w.link, "J1", OUTCOME)
        report = proxy.acknowledge("J1")
        w.mind.named("acknowledge")[0].deferred.errback(
            pb.RemoteError("builtins.NotADirectoryError", "[Errno 20] Not a directory", None)
        )
        failure = self.failureResultOf(report, RemoteError)
        self.assertIn("Not a directory", str(failure.value))
        self.assertEqual((proxy.running_jobs(), proxy.records), ([], {}))

    def test_a_commit_undone_comes_back_with_committed_false(self):
        """committed False and the commit's failure replace the outcome's."""
        c = Cluster()
        w = c.login()
        proxy = c.proxy()
        proxy.start_job(worker_spec("J1"))
        c.manager.job_finished(w.link, "J1", OUTCOME)
        report = proxy.acknowledge("J1")
        changes = {"outcome": "failed", "committed": False, "failure": COMMIT_FAILED}
        reply = {**OUTCOME, **changes, "customer": "c", "profile": "p", "relpath": "J1.mov"}
        w.mind.named("acknowledge")[0].deferred.callback(reply)
        got = self.successResultOf(report)
        self.assertEqual((got.job_id, got.committed), ("J1", False))
        self.assertEqual(got.failure, JobFailure.from_dict(COMMIT_FAILED))
        self.assertEqual(proxy.running_jobs(), [])

    def test_fail_source_refused_is_an_error(self):
        """A worker that cannot fail the source errbacks (the admin holds the file as stuck)."""
        c = Cluster()
        w = c.login()
        d = c.proxy().fail_source(worker_spec("J1"), JobFailure.from_dict(SYSTEM))
        w.mind.named("fail_source")[0].deferred.errback(
            pb.RemoteError("builtins.PermissionError", "[Errno 13] Permission denied", None)
        )
        self.assertIn("Permission denied", str(self.failureResultOf(d, RemoteError).value))


def test_a_commit_undone_on_a_worker_process_says_so_on_the_wire():
    """committed False reaches the admin through a worker process's acknowledgement."""
    from transcoder_admin.worker.daemon import committed_changes

    report = {
        **build_report(
            JobSpec.from_wire(
                {
                    "job_id": "J",
                    "attempt": 1,
                    "customer": "c",
                    "profile": "p",
                    "relpath": "x.mov",
                    "source": "default:/in/x.mov",
                    "failed": "default:/failed/x.mov",
                    "report_failed": "default:/reports/x.mov.J.yaml",
                    "report_done": "default:/r/x",
                }
            ),
            "w",
            Clock(),
            JobFailure.from_dict(COMMIT_FAILED),
        ),
        "committed": False,
    }
    sent = committed_changes(report)
    assert sent["committed"] is False and sent["failure"]["reason"] == COMMIT_FAILED["reason"]


class GoneWorker(FakeWorker):
    """A worker still listed whose every fail_source finds it gone."""

    def fail_source(self, spec, failure):
        """Gone (a spinning caller ends the test instead of hanging it)."""
        self.failed_sources.append((spec, failure))
        if len(self.failed_sources) > 5:
            return defer.fail(AssertionError("fail_source asked again and again"))
        return defer.fail(WorkerGone(self.name))


def test_failing_a_source_on_a_gone_worker_waits_for_another_instead_of_spinning():
    """WorkerGone from a listed worker: no busy loop; the next worker to come fails it."""
    t = make(max_attempts=1)
    w = GoneWorker("w", 1)
    t.add_worker(w)
    d = t.run(QueueItem(("c", "p", "x.mov"), 1, 0.0))
    w.outcome(lost=True)
    assert len(w.failed_sources) == 1 and not d.called
    t.remove_worker("w")
    other = FakeWorker("v", 1)
    t.add_worker(other)
    assert ended(d).outcome == "failed" and len(other.failed_sources) == 1


def test_a_running_job_without_progress_yet_is_described_as_the_api_promises():
    """Before ffmpeg reports (or while a post-process runs) the worker knows no progress:
    the task still has every progress field, null, as GET tasks documents (a generated
    client would refuse an empty object); a partial progress keeps what is known."""
    import jsonschema

    from transcoder_admin.api import schemas

    t = make()
    w = FakeWorker("w", 1)
    t.add_worker(w)
    t.run(ITEM)
    [task] = t.describe()
    assert task["progress"] == {"percent": None, "speed": None, "eta": None, "target": None}
    jsonschema.validate(task, schemas.TASK)
    w.job_progress = lambda job_id: {"percent": 12.5, "target": "web"}
    [task] = t.describe()
    assert task["progress"] == {"percent": 12.5, "speed": None, "eta": None, "target": "web"}
    jsonschema.validate(task, schemas.TASK)
