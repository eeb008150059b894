"""A worker with valid credentials is not trusted with the admin's files.

Its hello facts are checked (a bad one refuses it), a bad heartbeat is ignored, an
outcome or a row that is not the started job's own becomes a system failure of that
attempt, and an adopted job's spec comes from the admin's configuration and journal,
never from the worker.  The real :class:`Manager` relays; workers are mind doubles
(:mod:`tests.unit.test_workers`); the clock is a ``task.Clock``.
"""

from __future__ import annotations

import math
from typing import Any

import pytest
from twisted.internet import defer
from twisted.logger import capturedLogs, formatEvent

from tests.unit.pbpairs import job_spec
from tests.unit.test_admin_held import KEY, admin_with_a_held_job
from tests.unit.test_workers import LOST_TIMEOUT, Cluster, Worker, row
from transcoder_admin.prognosis import SYSTEM, JobFailure
from transcoder_admin.proxy import COMPLAIN_EVERY
from transcoder_admin.proxy.checks import BadFacts, facts, heartbeat, jobs, outcome_mismatch
from transcoder_admin.records import Report
from transcoder_admin.reports.files import row_from_report
from transcoder_admin.scheduler import QueueItem
from transcoder_admin.transcoding import Transcoding
from transcoder_admin.wire import decode

GOOD = {"host": "encoder", "roots": {"default": "/srv"}, "max_jobs": 2}


def logged(events: Any) -> str:
    """The captured log, one event a line."""
    return "\n".join(formatEvent(e) for e in events)


def hello(c: Cluster, name: str, info: dict, jobs: list | None = None) -> Worker:
    """A worker logs in and says hello with exactly these facts."""
    from tests.unit.test_workers import BrokerDouble, MindDouble

    mind, broker = MindDouble(), BrokerDouble()
    link = c.manager.worker_login(name, mind, broker)
    c.manager.worker_hello(link, info, list(jobs or []))
    return Worker(link, mind, broker)


BAD_HELLOS = [
    ("max_jobs", {"max_jobs": "x"}),
    ("max_jobs", {"max_jobs": 0}),
    ("max_jobs", {"max_jobs": 65}),
    ("max_jobs", {"max_jobs": True}),
    ("max_jobs", {"max_jobs": 2.5}),
    ("roots", {"roots": ["default", "/srv"]}),
    ("roots", {"roots": {"default": 7}}),
    ("roots", {"roots": {"../x": "/srv"}}),
    ("heartbeat_interval", {"heartbeat_interval": -1}),
    ("heartbeat_interval", {"heartbeat_interval": "5"}),
    ("heartbeat_interval", {"heartbeat_interval": math.nan}),
    ("host", {"host": ["a"]}),
    ("pid", {"pid": "1"}),
    ("components", {"components": {"monitors": "acme"}}),
]


@pytest.mark.parametrize(("field", "bad"), BAD_HELLOS)
def test_a_worker_with_bad_facts_is_refused_with_one_log_line(field, bad):
    """Not in the pool, its login dropped, one error naming the worker and the field."""
    c = Cluster()
    transcoding = Transcoding(lambda *a: {}, c.clock)
    c.workers.link_up.subscribe(transcoding.add_worker)
    good = c.login("w0")
    with capturedLogs() as events:
        w = hello(c, "w1", {**GOOD, **bad})
    assert "w1" not in c.workers.proxies and c.added == ["w0"]
    assert w.broker.transport.disconnecting, "its login is dropped"
    assert not good.broker.transport.disconnecting
    lines = [line for line in logged(events).splitlines() if "refused" in line]
    assert len(lines) == 1 and "w1" in lines[0] and field in lines[0], lines
    # The farm goes on: capacity and free slots are the good worker's.
    assert (transcoding.capacity(), transcoding.free_slots()) == (2, 2)


@pytest.mark.parametrize(
    ("field", "bad_job"),
    [
        ("job_id", {"job_id": 7, "attempt": 1}),
        ("job_id", {"job_id": "../../x", "attempt": 1}),
        ("attempt", {"job_id": "J1", "attempt": "1"}),
        ("progress", {"job_id": "J1", "attempt": 1, "progress": {"percent": math.inf}}),
        ("key", {"job_id": "J1", "attempt": 1, "key": "c/p/x.mov"}),
        ("jobs[0]", "J1"),
    ],
)
def test_a_worker_reporting_bad_jobs_at_hello_is_refused(field, bad_job):
    """Jobs in a hello must be dicts with a str job id, an int attempt, finite progress."""
    c = Cluster()
    adopted: list = []
    c.workers.on_unknown_job = lambda p, j: adopted.append(j) or True
    with capturedLogs() as events:
        hello(c, "w1", GOOD, [bad_job])
    assert c.workers.proxies == {} and adopted == []
    assert field in logged(events)


def test_a_refused_worker_logging_in_again_is_logged_once_a_minute():
    """Its reconnections do not flood the log: one line per worker a minute."""
    c = Cluster()
    with capturedLogs() as events:
        for _ in range(5):
            hello(c, "w1", {**GOOD, "max_jobs": "x"})
            c.clock.advance(5)
        c.clock.advance(COMPLAIN_EVERY)
        hello(c, "w1", {**GOOD, "max_jobs": "x"})
    assert logged(events).count("worker w1 refused") == 2


def test_a_known_worker_sending_bad_facts_leaves_the_pool():
    """Attached before, now a hello with bad facts: it is lost, its jobs fail over."""
    c = Cluster()
    c.login("w1")
    outcome = c.proxy().start_job(job_spec("J1", 1))
    hello(c, "w1", {**GOOD, "max_jobs": "x"})
    assert c.removed == ["w1"] and "w1" not in c.workers.proxies
    assert outcome.called


BAD_BEATS = [
    ("jobs", {"jobs": "J1"}),
    ("attempt", {"jobs": [{"job_id": "J1", "attempt": None}]}),
    ("progress", {"jobs": [{"job_id": "J1", "attempt": 1, "progress": {"percent": math.nan}}]}),
    ("pending", {"pending": [{"customer": "c", "profile": "p", "relpath": "x"}]}),
    ("pending", {"pending": [{}] * 5000}),
    ("components", {"components": {"failed": [{"job_id": None}]}}),
]


@pytest.mark.parametrize(("field", "state"), BAD_BEATS)
def test_a_bad_heartbeat_is_ignored_with_a_warning(field, state):
    """Nothing of it is taken (jobs, pending files, components); /workers still answers."""
    c = Cluster()
    w = c.login("w1")
    proxy = c.proxy()
    outcome = proxy.start_job(job_spec("J1", 1))
    c.beat(w, [row("J1", "running")])
    before = (proxy.job_progress("J1"), proxy.pending, proxy.reported_jobs)
    with capturedLogs() as events:
        c.manager.heartbeat(w.link, state)
        c.manager.heartbeat(w.link, state)
    text = logged(events)
    assert text.count("heartbeat of worker w1 ignored") == 1 and field in text
    assert (proxy.job_progress("J1"), proxy.pending, proxy.reported_jobs) == before
    assert proxy.info()["max_jobs"] == 2
    assert not outcome.called


def test_check_functions_return_the_values_they_accept():
    """What a real worker sends passes unchanged (name from the login)."""
    info = {**GOOD, "pid": 12, "heartbeat_interval": 0.5, "components": None}
    assert facts("w1", info) == {**info, "name": "w1"}
    listed = [dict(row("J1"), key=["c", "p", "x.mov"], spec={"work": "default:/"})]
    assert jobs(listed) == listed
    beat = {
        "jobs": listed,
        "pending": [{"customer": "c", "profile": "p", "relpath": "x", "detected": 5.0, "size": 3}],
        "time": 1.0,
    }
    assert heartbeat(beat) == beat
    with pytest.raises(BadFacts):
        facts("../w1", GOOD)


# -- outcomes and rows


def started(c: Cluster) -> tuple[Worker, Any, dict]:
    """w1 runs J1 (attempt 1) with a full spec; returns the worker, the outcome, the spec."""
    w = c.login("w1")
    spec = job_spec("J1", 1, max_attempts=1)
    outcome = c.proxy().start_job(spec)
    w.mind.named("start_job")[0].deferred.callback(True)
    return w, outcome, spec


def own_outcome(spec: dict, **changes: Any) -> dict:
    """What an honest worker pushes for its job, with some fields changed."""
    base = {
        "job_id": spec.job_id,
        "attempt": spec.attempt,
        "outcome": "done",
        "failure": None,
        "report_path": spec.report_done,
    }
    return {**base, **changes}


FORGED = [
    ("job_id", {"job_id": "J2"}),
    ("attempt", {"attempt": 2}),
    ("outcome", {"outcome": "committed"}),
    ("failure.kind", {"outcome": "failed", "failure": {"kind": "bogus", "reason": "x"}}),
    ("failure", {"outcome": "failed", "failure": None}),
    ("report_path", {"report_path": "default:/../var/admin.secret"}),
    ("report_path", {"report_path": "default:/reports/done/other.J2.yaml"}),
]


@pytest.mark.parametrize(("field", "changes"), FORGED)
def test_a_pushed_outcome_that_is_not_the_jobs_own_is_a_system_failure(field, changes):
    """The attempt fails for a system reason naming the field; the error names the worker."""
    c = Cluster()
    w, outcome, spec = started(c)
    with capturedLogs() as events:
        c.manager.job_finished(w.link, "J1", own_outcome(spec, **changes))
    got = outcome.result
    assert got.outcome == "failed" and got.failure.kind == "system"
    reason = f"worker sent an outcome that does not match job J1: {field}"
    assert got.failure.reason == reason
    assert (got.job_id, got.attempt, got.relpath) == ("J1", 1, "clip.mov")
    errors = [e for e in events if e["log_level"].name == "error"]
    assert len(errors) == 1 and "worker w1" in formatEvent(errors[0])


def test_a_fetched_outcome_is_checked_too():
    """An outcome the admin fetches (after a finished heartbeat) must be the job's own."""
    c = Cluster()
    w, outcome, spec = started(c)
    c.beat(w, [row("J1", "finished")])
    w.mind.named("outcome")[0].deferred.callback(own_outcome(spec, job_id="J9"))
    assert outcome.result.failure.reason.endswith("J1: job_id")


def test_a_rejected_outcome_is_never_committed_and_the_source_fails_with_the_admins_spec():
    """The last attempt's bad outcome: the job is cancelled (moves nothing), and the source
    goes to failed with the admin's own paths and the reason."""
    c = Cluster()
    w, outcome, spec = started(c)
    c.manager.job_finished(w.link, "J1", own_outcome(spec, report_path="default:/etc/x"))
    report = c.proxy().acknowledge("J1")
    assert w.mind.named("acknowledge") == []
    assert [call.args for call in w.mind.named("cancel_job")] == [("J1",)]
    w.mind.named("cancel_job")[0].deferred.callback(True)
    (fail,) = w.mind.named("fail_source")
    sent, failure = decode(fail.args[0]), fail.args[1]
    assert sent["report_failed"] == spec.report_failed and sent["failed"] == spec.failed
    assert failure["reason"].endswith("J1: report_path")
    fail.deferred.callback(
        own_report(spec, outcome="failed", failure=failure, report_path=spec.report_failed)
    )
    assert report.result.report_path == spec.report_failed


def own_report(spec: dict, **changes: Any) -> dict:
    """A committed report as a worker sends it: the job's own, with some fields changed."""
    base = {
        **own_outcome(spec),
        "customer": spec.customer,
        "profile": spec.profile,
        "relpath": spec.relpath,
    }
    return {**base, **changes}


@pytest.mark.parametrize(
    "changes",
    [
        {"job_id": "J2"},
        {"attempt": 3},
        {"customer": "bob"},
        {"profile": "other"},
        {"relpath": "bobs/clip.mov"},
        {"outcome": "failed"},
        {"report_path": "default:/reports/done/x.yaml"},
    ],
)
def test_an_acknowledgement_reply_with_the_report_of_another_job_writes_only_the_jobs_own(
    changes,
):
    """The reply names another job: the report is a system failure of J1's own."""
    c = Cluster()
    w, outcome, spec = started(c)
    c.manager.job_finished(w.link, "J1", own_outcome(spec))
    report = c.proxy().acknowledge("J1")
    with capturedLogs() as events:
        w.mind.named("acknowledge")[0].deferred.callback(own_report(spec, **changes))
    got = report.result
    field = next(iter(changes))
    if changes.get("outcome") == "failed":
        field = "failure"  # a failed outcome without its failure: the first wrong field
    assert got.failure.reason == f"worker sent an outcome that does not match job J1: {field}"
    db_row = row_from_report(got)
    assert (db_row["job_id"], db_row["customer"], db_row["relative_path"]) == (
        "J1",
        "c",
        "clip.mov",
    )
    assert db_row["outcome"] == "failed"
    assert "worker w1" in logged(events)


def test_an_honest_acknowledgement_reply_passes_unchanged():
    """The job's own committed report: the admin keeps the worker's."""
    c = Cluster()
    w, outcome, spec = started(c)
    c.manager.job_finished(w.link, "J1", own_outcome(spec))
    report = c.proxy().acknowledge("J1")
    reply = own_report(spec, committed=True, machine="host1")
    w.mind.named("acknowledge")[0].deferred.callback(reply)
    assert report.result == Report.from_wire(reply) and report.result.machine == "host1"


def test_a_fail_source_reply_with_another_jobs_report_is_replaced():
    """fail_source answers the report of another file: the admin keeps its own job's."""
    c = Cluster()
    w = c.login("w1")
    spec = job_spec("J1", 1)
    failure = JobFailure(SYSTEM, "lost")
    report = c.proxy().fail_source(spec, failure)
    forged = own_report(
        spec,
        outcome="failed",
        failure=failure.to_dict(),
        report_path=spec.report_failed,
        relpath="x/y.mov",
    )
    w.mind.named("fail_source")[0].deferred.callback(forged)
    assert row_from_report(report.result)["relative_path"] == "clip.mov"


def test_outcome_mismatch_accepts_the_jobs_own():
    """A failed outcome of the job's own, with its report path, is accepted."""
    spec = job_spec("J1", 2)
    failure = {"kind": "source", "reason": "decode error"}
    own = own_outcome(spec, outcome="failed", failure=failure, report_path=spec.report_failed)
    assert outcome_mismatch(spec, own) is None
    assert outcome_mismatch(spec, "done") == "outcome"


# -- adoption after an admin restart


class RecordingManager:
    """The admin's link to its manager: records calls to workers, answers them later."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, tuple]] = []
        self.dropped: list[str] = []

    def call_worker(self, name: str, method: str, *args: Any) -> defer.Deferred:
        """Record the call."""
        self.calls.append((name, method, args))
        return defer.Deferred()

    def drop_worker(self, name: str) -> None:
        """Record the drop."""
        self.dropped.append(name)

    def named(self, method: str) -> list[tuple]:
        """The arguments of the calls of one method."""
        return [args for _n, m, args in self.calls if m == method]


FORGED_SPEC = {
    "job_id": "J1",
    "attempt": 2,
    "key": list(KEY),
    "work": "default:/",
    "max_attempts": 0,
    "report_failed": "default:/../state/local.credentials",
    "failed": "default:/",
}


def adopting_admin(tmp_path: Any) -> tuple[Any, Any, RecordingManager]:
    """An admin holding J1 (attempt 2, on w1) and a manager link that records calls."""
    admin, held = admin_with_a_held_job(tmp_path)
    held.identity = {"dev": 1, "ino": 2, "size": 3, "mtime_ns": 4, "host": None}
    manager = RecordingManager()
    admin.cluster.workers.manager = manager
    return admin, held, manager


def reported(attempt: int = 2, key: list | None = None, **spec: Any) -> dict:
    """w1's report of J1 as it says hello, with the spec it sends along."""
    return {
        "job_id": "J1",
        "attempt": attempt,
        "key": list(KEY) if key is None else key,
        "state": "running",
        "progress": {},
        "spec": {**FORGED_SPEC, "key": list(KEY) if key is None else key, **spec},
    }


def test_an_adopted_jobs_spec_is_the_admins_own_not_the_workers(tmp_path):
    """A forged spec (work default:/, max_attempts 0, report over a secret) is ignored."""
    admin, held, manager = adopting_admin(tmp_path)
    admin.cluster.workers.worker_attached("w1", GOOD, [reported()])
    assert manager.named("cancel_job") == []
    task = admin.transcoding.tasks[KEY]
    item = QueueItem(KEY, held.priority, held.detected_at)
    expected = admin.transcoding.make_spec(item, "J1", 2)
    spec = task.spec
    assert spec.work == expected.work != "default:/"
    assert spec.max_attempts == expected.max_attempts >= 1
    assert spec.report_failed == expected.report_failed
    assert spec.source_identity == held.identity
    assert admin.cluster.held == {}
    # Its outcome is checked against that spec: the forged report path is refused, and
    # the attempt fails for a system reason (cancelled on the worker, tried again).
    proxy = admin.cluster.workers.proxies["w1"]
    with capturedLogs() as events:
        proxy.finished(
            "J1",
            {
                "job_id": "J1",
                "attempt": 2,
                "outcome": "failed",
                "failure": {"kind": "system", "reason": "x"},
                "report_path": FORGED_SPEC["report_failed"],
            },
        )
    assert "does not match job J1: report_path" in logged(events)
    assert manager.named("cancel_job") == [("J1",)]
    assert manager.named("acknowledge") == []


@pytest.mark.parametrize(
    ("report", "field"),
    [
        (reported(attempt=1), "attempt"),
        (reported(key=["ACME Corp", "web", "other.mov"]), "key"),
        (reported(attempt=2, job_id="J7"), "job_id"),
        (reported(attempt=2, key=["bob", "web", "news/clip.mov"]), "key"),
    ],
)
def test_a_job_report_that_contradicts_the_journal_is_not_adopted(tmp_path, report, field):
    """Cancelled on the worker; the held file is released at once (that attempt failed)."""
    admin, held, manager = adopting_admin(tmp_path)
    with capturedLogs() as events:
        admin.cluster.workers.worker_attached("w1", GOOD, [report])
    assert manager.named("cancel_job") == [("J1",)]
    assert KEY not in admin.transcoding.tasks and admin.cluster.held == {}
    assert f"another {field}" in logged(events)
    assert admin.files.attempts_made[KEY] == 2


def test_another_worker_claiming_a_held_job_does_not_get_it(tmp_path):
    """The journal says w1 runs J1: w2 reporting it has it cancelled; J1 stays held for w1."""
    admin, held, manager = adopting_admin(tmp_path)
    admin.cluster.workers.worker_attached("w2", GOOD, [reported()])
    assert manager.named("cancel_job") == [("J1",)]
    assert admin.cluster.held == {KEY: held}


def test_a_held_job_whose_profile_is_gone_is_cancelled_and_released(tmp_path):
    """The admin cannot build the job's spec: not adopted, the file released as usual."""
    admin, held, manager = adopting_admin(tmp_path)
    gone = ("ACME Corp", "gone", "news/clip.mov")
    admin.cluster.held = {gone: held}
    held.key = gone
    with capturedLogs() as events:
        admin.cluster.workers.worker_attached("w1", GOOD, [reported(key=list(gone))])
    assert manager.named("cancel_job") == [("J1",)]
    assert admin.cluster.held == {} and admin.transcoding.tasks == {}
    assert "no longer exists" in logged(events)


def test_status_answers_with_a_refused_worker(tmp_path):
    """/status and /workers of the admin answer after a worker sent max_jobs 'x'."""
    admin, _held, manager = adopting_admin(tmp_path)
    admin.cluster.workers.worker_attached("w9", {**GOOD, "max_jobs": "x"}, [])
    assert manager.dropped == ["w9"]
    assert admin.operations.status()["capacity"] == 0
    assert admin.operations.workers() == []


def test_the_lost_timeout_clock_is_untouched_by_bad_heartbeats():
    """A worker sending only bad heartbeats is not heard: it is lost after lost-timeout."""
    c = Cluster()
    w = c.login("w1")
    for _ in range(int(LOST_TIMEOUT) + 2):
        c.manager.heartbeat(w.link, {"jobs": "bad"})
        c.clock.advance(1)
    assert c.removed == ["w1"]


@pytest.mark.parametrize(
    ("field", "changes"),
    [
        ("event.relpath", {"relpath": "../bob/files/incoming/web/x.mov"}),
        ("event.relpath", {"relpath": "/etc/passwd"}),
        ("event.relpath", {"relpath": ""}),
        ("event.profile", {"profile": ["web"]}),
        ("event.detected_at", {"detected_at": "now"}),
    ],
)
def test_a_monitor_event_with_a_path_outside_incoming_is_ignored(field, changes):
    """A worker's monitor cannot offer a file outside its incoming folder (a warning)."""
    c = Cluster()
    c.login("w1")
    heard: list = []
    c.workers.monitor_events.subscribe(heard.append)
    good = {
        "event": "added",
        "customer": "acme",
        "profile": "web",
        "relpath": "a/x.mov",
        "detected_at": 5.0,
        "sig": [1, 2, 3],
    }
    with capturedLogs() as events:
        c.workers.monitor_event("w1", {**good, **changes})
    assert heard == [] and field in logged(events)
    c.workers.monitor_event("w1", good)
    assert heard == [("w1", good)]


def test_a_report_name_the_worker_shortened_for_its_file_system_is_the_jobs_own():
    """A report name fitted to a smaller name limit (prefix, ~hash, ending) is accepted;
    the same folder's other names, and a forged hash, are not."""
    from transcoder_admin.context.paths import fit_name
    from transcoder_admin.proxy.checks import outcome_mismatch

    long_name = "視" * 60 + ".mov.J1.yaml"
    spec = job_spec(
        "J1",
        1,
        report_done="default:/reports/done/" + long_name,
        report_failed="default:/reports/failed/" + long_name,
    )
    short = fit_name(long_name, 143, ".J1.yaml")
    assert short != long_name
    honest = own_outcome(spec, report_path="default:/reports/done/" + short)
    assert outcome_mismatch(spec, honest) is None
    forged = short.replace("~", "~0", 1)
    assert outcome_mismatch(spec, own_outcome(spec, report_path="default:/reports/done/" + forged))
    elsewhere = own_outcome(spec, report_path="default:/reports/failed/" + short)
    assert outcome_mismatch(spec, elsewhere) == "report_path"


def test_an_outcome_from_an_unknown_worker_cannot_forge_a_log_line():
    """A job id with a newline from a worker the admin does not know stays on one log line."""
    c = Cluster()
    with capturedLogs() as events:
        c.workers.job_finished("ghost", "J1\nadmin: all files deleted", {})
    text = logged(events)
    assert "\nadmin: all files deleted" not in text
    assert "from unknown worker ghost ignored" in text
