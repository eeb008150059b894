"""A job's life on a worker, as the admin records it: one table, one path for the outcome."""

from __future__ import annotations

import pytest
from twisted.internet import defer

from transcoder_admin.proxy.jobs import (
    COMMITTING,
    EXPECTED,
    FINISHED,
    REJECTED,
    RUNNING,
    SETTLED,
    STARTING,
    TRANSITIONS,
    JobRecord,
)
from transcoder_admin.worker.interfaces import WorkerGone


def started(job_id: str = "J1") -> tuple[JobRecord, defer.Deferred]:
    waiter: defer.Deferred = defer.Deferred()
    return JobRecord(job_id, 1, STARTING, {"job_id": job_id}, waiter), waiter


def test_a_started_job_runs_finishes_settles_and_is_committed():
    """start → running → finished → settled (its waiter fired) → committing."""
    record, waiter = started()
    record.advance("started")
    assert record.state == RUNNING
    record.advance("finished")
    assert record.state == FINISHED
    record.settle({"outcome": "done"}, own=True)
    assert (record.state, record.outcome, record.waiting) == (SETTLED, {"outcome": "done"}, False)
    assert waiter.result == {"outcome": "done"}
    record.advance("acknowledge")
    assert record.state == COMMITTING


def test_an_outcome_pushed_before_the_start_was_answered_settles_all_the_same():
    """Outcomes take one path whichever way they come (push, fetch): straight to settled."""
    record, waiter = started()
    record.settle({"outcome": "failed"}, own=True)
    assert record.state == SETTLED and waiter.called


def test_an_outcome_not_its_own_is_rejected_and_still_answers_the_waiter():
    """A foreign outcome: the job is rejected (its source will be failed instead)."""
    record, waiter = started()
    record.advance("started")
    record.settle({"outcome": "failed", "comment": "not its own"}, own=False)
    assert record.state == REJECTED and waiter.called
    record.advance("acknowledge")
    assert record.state == COMMITTING


def test_an_adopted_job_begins_running_or_finished():
    """Adoption after a restart: the worker said whether it still runs."""
    running = JobRecord("J1", 2, EXPECTED)
    running.advance("adopt")
    finished = JobRecord("J2", 2, EXPECTED)
    finished.advance("adopt finished")
    assert (running.state, finished.state) == (RUNNING, FINISHED)


@pytest.mark.parametrize("state", [SETTLED, REJECTED, COMMITTING])
def test_news_after_the_outcome_changes_nothing(state):
    """A worker repeating 'finished' after the outcome is known moves no record back."""
    record = JobRecord("J1", 1, state)
    for event in ("started", "running", "finished", "adopt"):
        record.advance(event)
    assert record.state == state


def test_a_job_ended_without_outcome_fails_its_waiter_once():
    """Lost or cancelled: the waiter errbacks; a second end does nothing."""
    record, waiter = started()
    record.fail(WorkerGone("w1 was lost"))
    record.fail(WorkerGone("again"))
    assert isinstance(waiter.result.value, WorkerGone) and "w1" in str(waiter.result.value)
    waiter.addErrback(lambda _: None)


def test_every_state_of_the_table_can_be_reached_and_left():
    """No state in the table is a dead end except committing (the record then ends)."""
    sources = {state for state, _event in TRANSITIONS}
    targets = set(TRANSITIONS.values())
    assert targets - sources == {COMMITTING}
    assert sources - targets == {EXPECTED, STARTING}  # where records begin
