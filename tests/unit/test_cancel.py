"""An operator cancels a running job: killed, cleaned, then failed or offered again."""

from __future__ import annotations

import pytest
from twisted.internet import defer
from twisted.python.failure import Failure

from transcoder_admin.errors import InvalidStateError, NotRunning
from transcoder_admin.proxy import RemoteError
from transcoder_admin.scheduler import JobAbandoned, QueueItem, SourceStuck

from .test_transcoding import SYSTEM, FakeWorker, make


def result_of(d: defer.Deferred) -> object:
    """What a Deferred fired with (a Failure unwrapped into its exception)."""
    box: list[object] = []
    d.addBoth(box.append)
    assert box, "the Deferred has not fired"
    value = box[0]
    return value.value if isinstance(value, Failure) else value


def running(max_attempts=2):
    t = make(max_attempts=max_attempts)
    w = FakeWorker("w", 1)
    t.add_worker(w)
    item = QueueItem(("c", "p", "in/clip.mov"), 1, 0.0)
    task_end = t.run(item)
    return t, w, item, task_end


def test_cancel_then_fail_kills_the_job_and_fails_the_source_naming_who_asked():
    """The job is cancelled on its worker, then the source fails "cancelled by alice"."""
    t, w, item, task_end = running()
    job_id = w.started[0].job_id
    answer = t.cancel(item.key, "alice", "fail")
    assert w.cancelled[0] == job_id
    report = result_of(answer)
    assert report.outcome == "failed"
    assert (report.failure.kind, report.failure.reason) == ("cancelled", "cancelled by alice")
    [(spec, failure)] = w.failed_sources
    assert spec.job_id == job_id and failure.reason == "cancelled by alice"
    assert result_of(task_end) is report  # the scheduler sees the failed report
    assert t.load == {"w": 0} and t.tasks == {}
    assert w.acked == []  # nothing committed: no output reaches outgoing


def test_cancel_then_incoming_gives_the_file_back_without_counting_the_attempt():
    """The source stays in incoming; the task ends abandoned and the attempt is not counted."""
    t, w, item, task_end = running()
    answer = t.cancel(item.key, "bob", "incoming")
    assert isinstance(result_of(answer), JobAbandoned)
    assert isinstance(result_of(task_end), JobAbandoned)
    assert item.attempts == 0 and w.failed_sources == []
    assert t.load == {"w": 0} and t.tasks == {}


def test_a_job_waiting_for_its_next_attempt_can_be_cancelled():
    """Between attempts (its worker busy), a cancel ends the task at once, with no new job."""
    t, w, item, task_end = running(max_attempts=3)
    other_end = t.run(QueueItem(("c", "p", "other.mov"), 1, 0.0))  # waits for the slot
    w.outcome(SYSTEM)  # the first file's attempt 1 fails; the slot goes to the other
    assert len(w.started) == 2 and w.started[1].relpath == "other.mov"
    answer = t.cancel(item.key, "carol", "fail")
    t.clock.advance(0)
    report = result_of(answer)
    assert report.failure.reason == "cancelled by carol"
    assert len(w.started) == 2  # the cancelled file never got a second attempt
    assert not other_end.called


def test_unknown_committing_and_twice_cancelled_jobs_are_refused():
    """No task → NotRunning; a second cancel or one during the commit → InvalidStateError."""
    t, w, item, task_end = running()
    with pytest.raises(NotRunning):
        t.cancel(("c", "p", "nope.mov"), "alice", "fail")
    w.ack_script = []
    t.tasks[item.key].committing = True
    with pytest.raises(InvalidStateError, match="being committed"):
        t.cancel(item.key, "alice", "fail")
    t.tasks[item.key].committing = False
    answer = t.cancel(item.key, "alice", "incoming")
    assert isinstance(result_of(answer), JobAbandoned)
    assert isinstance(result_of(task_end), JobAbandoned)
    assert t.tasks == {}
    with pytest.raises(NotRunning):
        t.cancel(item.key, "alice", "fail")


def test_a_bad_choice_is_a_value_error():
    """The choice is checked (the API answers 400)."""
    t, _w, item, _ = running()
    with pytest.raises(ValueError, match="fail, incoming"):
        t.cancel(item.key, "alice", "elsewhere")
    assert item.key in t.tasks  # nothing happened to the job


def test_a_cancelled_source_that_cannot_be_failed_is_stuck():
    """When the failed folder is not writable, the cancel ends the file stuck, with why."""
    t, w, item, task_end = running()
    w.fail_source_error = RemoteError("[Errno 13] Permission denied: '/m/failed/clip.mov'")
    error = result_of(t.cancel(item.key, "alice", "fail"))
    assert isinstance(error, SourceStuck)
    assert "Permission denied" in str(error) and "cancelled by alice" in str(error)
    assert isinstance(result_of(task_end), SourceStuck)
    assert t.load == {"w": 0}


def test_a_job_whose_commit_was_undone_can_be_cancelled_on_its_next_attempt():
    """Attempt 1's commit is undone (a system failure): attempt 2 runs and, no longer
    committing, can be cancelled."""
    t, w, item, task_end = running(max_attempts=2)
    w.ack_script = ["uncommitted"]
    w.outcome(None)  # attempt 1 ends; its commit is undone; attempt 2 starts
    assert [s.attempt for s in w.started] == [1, 2]
    report = result_of(t.cancel(item.key, "alice", "fail"))
    assert report.failure.reason == "cancelled by alice"
    assert result_of(task_end) is report


def away_job():
    """A job on a real worker proxy (one slot) whose link then drops; returns the
    cluster, the Transcoding part, the item, its task's end and the job id."""
    from transcoder_admin.transcoding import Transcoding

    from .test_transcoding import item_spec
    from .test_workers import Cluster

    c = Cluster()
    w = c.login(max_jobs=1)
    t = Transcoding(lambda item, job_id, attempt: item_spec(item, job_id, attempt, 2), c.clock)
    t.add_worker(c.proxy())
    item = QueueItem(("c", "p", "in/clip.mov"), 1, 0.0)
    task_end = t.run(item)
    w.mind.named("start_job")[0].deferred.callback(True)
    job_id = t.tasks[item.key].job_id
    c.logout(w)
    return c, t, item, task_end, job_id


def test_a_job_on_a_worker_whose_link_is_down_is_given_back_only_once_it_is_killed():
    """The worker's link drops while its job runs (it may still be running there): a
    cancel "incoming" holds the file until the worker is back and has killed the job, so
    that a new job cannot run beside the old one; then the file is given back."""
    from .test_workers import row

    c, t, item, task_end, job_id = away_job()
    answer = t.cancel(item.key, "alice", "incoming")
    c.wait(5)
    assert not answer.called and not task_end.called, "given back while it may still run"
    assert item.key in t.tasks
    back = c.login(jobs=[row(job_id, "running")], max_jobs=1)
    c.clock.advance(0)
    cancels = back.mind.named("cancel_job")
    assert cancels and {call.args for call in cancels} == {(job_id,)}
    assert not answer.called, "given back before the worker said the job is dead"
    for call in cancels:
        call.deferred.callback(True)
    c.clock.advance(0)
    assert isinstance(result_of(answer), JobAbandoned)
    assert isinstance(result_of(task_end), JobAbandoned)
    assert item.attempts == 0 and t.tasks == {}


def test_a_stop_does_not_wait_for_a_cancel_whose_worker_is_away():
    """The admin stops while an operator's cancel waits for a worker whose link is down:
    the file stays in incoming (as every running file at a stop) and the stop is quick."""
    c, t, item, task_end, _job_id = away_job()
    answer = t.cancel(item.key, "alice", "fail")
    c.wait(1)
    assert not answer.called
    stopped = t.cancel_all()
    c.clock.advance(0)
    assert isinstance(result_of(task_end), JobAbandoned)
    assert isinstance(result_of(answer), JobAbandoned)
    assert t.tasks == {}
    c.wait(11)
    assert result_of(stopped) is None


def test_a_stopping_admin_waits_for_its_workers_kills_a_bounded_time():
    """Shutdown cancels every job; a worker that does not answer (its link is down) does
    not hold the stop longer than STOP_GRACE seconds."""
    from transcoder_admin.transcoding import STOP_GRACE

    t, w, item, task_end = running()
    w.cancel_job = lambda job_id: defer.Deferred()  # never answers
    stopped = t.cancel_all()
    t.clock.advance(STOP_GRACE - 0.5)
    assert not stopped.called
    t.clock.advance(1)
    assert result_of(stopped) is None
