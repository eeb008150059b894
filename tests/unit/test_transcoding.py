"""Transcoding tasks: balancing, retries of system failures, fencing of lost workers."""

from __future__ import annotations

from twisted.internet import defer
from twisted.internet.task import Clock
from zope.interface import implementer
from zope.interface.verify import verifyObject

from transcoder_admin.context.paths import Roots
from transcoder_admin.job.runner import build_report, fail_source
from transcoder_admin.prognosis import Failure
from transcoder_admin.reports.files import read_report
from transcoder_admin.scheduler import QueueItem
from transcoder_admin.transcoding import Transcoding
from transcoder_admin.wire import TooBig
from transcoder_admin.worker.interfaces import IWorkerConnection, WorkerGone
from transcoder_admin.worker.local import InProcessWorkerConnection, JobHost


@implementer(IWorkerConnection)
class FakeWorker:
    """A worker whose jobs end when the test says; it honours IWorkerConnection."""

    def __init__(self, name: str, max_jobs: int = 1) -> None:
        self.name = name
        self.max_jobs = max_jobs
        self.started: list[dict] = []
        self.pending: dict[str, defer.Deferred] = {}
        self.acked: list[str] = []
        self.cancelled: list[str] = []
        self.failed_sources: list[tuple[dict, dict]] = []
        self.cleaned: list[str] = []

    def info(self):
        """Basic facts."""
        return {"name": self.name, "max_jobs": self.max_jobs}

    def running_jobs(self):
        """Job ids."""
        return list(self.pending)

    def start_job(self, spec):
        """Record the job; it ends via outcome()."""
        self.started.append(spec)
        d = defer.Deferred()
        self.pending[spec["job_id"]] = d
        return d

    def outcome(self, failure=None, lost=False):
        """End the oldest running job."""
        job_id, d = next(iter(self.pending.items()))
        del self.pending[job_id]
        if lost:
            d.errback(WorkerGone(self.name))
        else:
            d.callback(
                {"job_id": job_id, "outcome": "failed" if failure else "done", "failure": failure}
            )

    def job_outcome(self, job_id, attempt):
        """Adopt a running job: it ends via outcome()."""
        d = defer.Deferred()
        self.pending[job_id] = d
        return d

    def clean_job(self, spec):
        """Record."""
        self.cleaned.append(spec["job_id"])
        return defer.succeed(0)

    def acknowledge(self, job_id):
        """Commit."""
        self.acked.append(job_id)
        return defer.succeed({"job_id": job_id, "outcome": "committed"})

    def job_progress(self, job_id):
        """No progress."""
        return {}

    def cancel_job(self, job_id):
        """Forget."""
        self.cancelled.append(job_id)
        return defer.succeed(None)

    def fail_source(self, spec, failure):
        """Record."""
        self.failed_sources.append((spec, failure))
        return defer.succeed({"job_id": spec["job_id"], "outcome": "failed", "failure": failure})

    def when_disconnected(self):
        """Never."""
        return defer.Deferred()


def make(max_attempts=2):
    """A Transcoding part whose job specs record the attempt."""
    clock = Clock()

    def spec(item, job_id, attempt):
        return {"job_id": job_id, "attempt": attempt, "max_attempts": max_attempts}

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


def test_system_failure_retries_with_the_next_attempt_then_acknowledges():
    """Attempt 1 times out, attempt 2 succeeds; only the final outcome is committed."""
    t = make(max_attempts=2)
    w = FakeWorker("w", 1)
    t.add_worker(w)
    d = t.run(ITEM)
    w.outcome(SYSTEM)
    assert [s["attempt"] for s in w.started] == [1, 2]
    assert w.cancelled == [w.started[0]["job_id"]] and w.acked == []
    w.outcome(None)
    assert w.acked == [w.started[1]["job_id"]]
    assert d.called


def test_source_failure_is_final_at_once():
    """A source failure is acknowledged (source to failed) without another attempt."""
    t = make(max_attempts=3)
    w = FakeWorker("w", 1)
    t.add_worker(w)
    t.run(ITEM)
    w.outcome(SOURCE)
    assert len(w.started) == 1 and w.acked == [w.started[0]["job_id"]]


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
    assert [s["attempt"] for s in second.started] == [2]
    t.add_worker(first)  # it comes back; the last attempt is lost too
    second.outcome(lost=True)
    reports = []
    d.addCallback(reports.append)
    assert reports and reports[0]["outcome"] == "failed"
    failed = a.failed_sources + b.failed_sources
    assert len(failed) == 1 and "was lost" in failed[0][1]["reason"]
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
    assert [s["attempt"] for s in w.started] == [1, 2]
    assert reports and reports[0]["outcome"] == "failed"
    [(_spec, failure)] = w.failed_sources
    assert failure["kind"] == "system"
    assert failure["reason"].startswith("the job could not start on 'w': the job's config")
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
    report = build_report(spec, "w", Clock(), Failure.from_dict(SYSTEM))
    fail_source(roots, spec, report)
    assert report["outcome"] == "failed" and report["failure"]["reason"] == SYSTEM["reason"]
    assert (tmp_path / "m" / "failed" / "x.mov").read_bytes() == b"data"
    assert not src.exists()
    saved = read_report(str(tmp_path / "m" / "reports" / "x.mov.J.yaml"))
    assert saved["failure"]["kind"] == "system" and saved["attempt"] == 2
