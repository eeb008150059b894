"""The scheduler as a hypothesis state machine, plus plain ordering tests."""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule
from twisted.internet import defer
from twisted.internet.task import Clock

from transcoder_admin.errors import NotQueued
from transcoder_admin.prognosis import SOURCE, JobFailure
from transcoder_admin.records import Report
from transcoder_admin.scheduler import JobAbandoned, Scheduler, SourceStuck


class FakeTranscoder:
    """Stands in for the transcoding part: jobs end when the test says so."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.jobs: dict[tuple, defer.Deferred] = {}
        self.started: list[tuple] = []
        self.over_capacity: list[tuple] = []

    def free_slots(self, backend: str | None = None) -> int:
        """Slots left (one kind of worker)."""
        return self.capacity - len(self.jobs)

    def run(self, item):
        """Start a job that ends when finish() is called."""
        d = defer.Deferred()
        if self.free_slots() <= 0:
            self.over_capacity.append(item.key)
        self.jobs[item.key] = d
        self.started.append(item.key)
        return d

    def finish(self, key, outcome: str) -> None:
        """End a job with an outcome; "stuck" and "bug" end it with an exception."""
        d = self.jobs.pop(key)
        if outcome == "stuck":
            d.errback(SourceStuck("cannot move the source to failed"))
        elif outcome == "bug":
            d.errback(ZeroDivisionError("a bug"))
        else:
            failure = JobFailure(SOURCE, "not a media file") if outcome == "failed" else None
            customer, profile, relpath = key
            d.callback(
                Report(
                    job_id="j",
                    attempt=1,
                    outcome=outcome,
                    failure=failure,
                    customer=customer,
                    profile=profile,
                    relpath=relpath,
                )
            )


def make(capacity=1):
    """A started scheduler over a fake transcoder, with its ended files counted."""
    clock = Clock()
    transcoder = FakeTranscoder(capacity)
    scheduler = Scheduler(transcoder, clock)
    ended: Counter = Counter()
    scheduler.transcoding_done.subscribe(lambda f: ended.update([f.item.key]))
    scheduler.transcoding_failed.subscribe(lambda f: ended.update([f.item.key]))
    scheduler.transcoding_stuck.subscribe(lambda s: ended.update([s.item.key]))
    scheduler.start()
    return clock, transcoder, scheduler, ended


def test_higher_priority_first_then_oldest():
    """Order: customer priority × 1000 + profile priority, then detection time."""
    clock, transcoder, scheduler, _ = make(capacity=0)
    scheduler.enqueue(("c", "p", "old-low"), 1_000_050, detected_at=1)
    scheduler.enqueue(("c", "p", "new-high"), 2_000_001, detected_at=5)
    scheduler.enqueue(("c", "p", "old-high"), 2_000_001, detected_at=2)
    assert [i.relpath for i in scheduler.queue()] == ["old-high", "new-high", "old-low"]
    transcoder.capacity = 3
    scheduler.dispatch()
    assert [k[2] for k in transcoder.started] == ["old-high", "new-high", "old-low"]


def test_an_operators_priority_reorders_the_queue_and_outlasts_a_profiles_change():
    """A file given priority moves ahead; the profile's new priority leaves it be."""
    _, transcoder, scheduler, _ = make(capacity=0)
    for index, name in enumerate(["a", "b", "c"]):
        scheduler.enqueue(("c", "p", name), 100, detected_at=index)
    scheduler.set_priority(("c", "p", "c"), 500)
    assert [i.relpath for i in scheduler.queue()] == ["c", "a", "b"]
    assert [scheduler.position(("c", "p", n)) for n in "cab"] == [0, 1, 2]
    scheduler.reprioritize("c", "p", 900)  # a reload raised the profile above it
    assert [(i.relpath, i.priority) for i in scheduler.queue()] == [
        ("a", 900),
        ("b", 900),
        ("c", 500),
    ]
    transcoder.capacity = 1
    scheduler.dispatch()
    assert transcoder.started == [("c", "p", "a")]


def test_only_a_queued_file_gets_a_priority():
    """Unknown or running: NotQueued, naming the file; the queue is unchanged."""
    _, transcoder, scheduler, _ = make(capacity=1)
    scheduler.enqueue(("c", "p", "running"), 1, 0)
    scheduler.enqueue(("c", "p", "waiting"), 1, 1)
    for name in ("running", "never-seen"):
        with pytest.raises(NotQueued, match=name):
            scheduler.set_priority(("c", "p", name), 5)
    assert [(i.relpath, i.priority) for i in scheduler.queue()] == [("waiting", 1)]


def test_a_priority_that_frees_a_slot_dispatches_at_once():
    """With a free slot (capacity just grown), the re-prioritized file starts."""
    _, transcoder, scheduler, _ = make(capacity=0)
    scheduler.enqueue(("c", "p", "a"), 1, 0)
    transcoder.capacity = 1
    scheduler.set_priority(("c", "p", "a"), 7)
    assert transcoder.started == [("c", "p", "a")]
    assert scheduler.state_of(("c", "p", "a")) == "transcoding"


def test_pause_stops_new_jobs_but_not_running_ones():
    """While paused nothing starts; a running job still finishes; resume starts the next."""
    _, transcoder, scheduler, ended = make(capacity=1)
    scheduler.enqueue(("c", "p", "a"), 1, 0)
    scheduler.pause()
    scheduler.enqueue(("c", "p", "b"), 1, 1)
    transcoder.finish(("c", "p", "a"), "done")
    assert ended[("c", "p", "a")] == 1
    assert transcoder.started == [("c", "p", "a")]
    scheduler.resume()
    assert transcoder.started[-1] == ("c", "p", "b")


def test_dequeued_file_never_starts_and_duplicates_are_ignored():
    """A vanished file is removed from the queue; queueing a queued file is a no-op."""
    _, transcoder, scheduler, _ = make(capacity=0)
    assert scheduler.enqueue(("c", "p", "a"), 1, 0) is not None
    assert scheduler.enqueue(("c", "p", "a"), 1, 0) is None
    assert scheduler.dequeue(("c", "p", "a"))
    transcoder.capacity = 1
    scheduler.dispatch()
    assert transcoder.started == []


def test_a_job_that_raises_ends_stuck_with_its_reason_never_abandoned():
    """SourceStuck and unexpected errors end the file as stuck once; it is not re-offered."""
    clock, transcoder, scheduler, ended = make(capacity=2)
    stuck, abandoned = [], []
    scheduler.transcoding_stuck.subscribe(stuck.append)
    scheduler.transcoding_abandoned.subscribe(abandoned.append)
    scheduler.enqueue(("c", "p", "a"), 1, 0.0)
    scheduler.enqueue(("c", "p", "b"), 1, 0.0)
    transcoder.finish(("c", "p", "a"), "stuck")
    transcoder.finish(("c", "p", "b"), "bug")
    assert [(s.item.relpath, s.reason) for s in stuck] == [
        ("a", "cannot move the source to failed"),
        ("b", "unexpected error: a bug"),
    ]
    assert abandoned == [] and not scheduler.running()


def test_an_abandoned_job_is_not_stuck():
    """JobAbandoned (shutdown) keeps its meaning: abandoned, the file stays in incoming."""
    clock, transcoder, scheduler, ended = make()
    abandoned, stuck = [], []
    scheduler.transcoding_abandoned.subscribe(abandoned.append)
    scheduler.transcoding_stuck.subscribe(stuck.append)
    scheduler.enqueue(("c", "p", "a"), 1, 0.0)
    transcoder.jobs.pop(("c", "p", "a")).errback(JobAbandoned("a"))
    assert [i.relpath for i in abandoned] == ["a"] and stuck == [] and not ended


class SchedulerMachine(RuleBasedStateMachine):
    """Random drops, removals, completions, pauses and capacity changes."""

    def __init__(self) -> None:
        super().__init__()
        self.clock, self.transcoder, self.scheduler, self.ended = make(capacity=2)
        self.names = 0
        self.removed: set[tuple] = set()
        self.offered: set[tuple] = set()
        self.priority: dict[tuple, tuple] = {}
        self.order_violations: list[tuple] = []
        self.scheduler.transcoding_started.subscribe(self._check_order)

    def _check_order(self, item) -> None:
        best = self.scheduler.queue()
        if best and best[0].sort_key() < item.sort_key():
            self.order_violations.append((item.key, best[0].key))

    @rule(priority=st.integers(0, 3))
    def drop_file(self, priority):
        """A new complete file is queued."""
        self.names += 1
        self.clock.advance(1)
        key = ("c", "p", f"f{self.names}")
        self.offered.add(key)
        self.scheduler.enqueue(key, priority, self.clock.seconds())

    @precondition(lambda self: self.scheduler.queue())
    @rule(index=st.integers(0, 100))
    def file_vanishes(self, index):
        """A queued file is removed before it started."""
        queued = self.scheduler.queue()
        key = queued[index % len(queued)].key
        assert self.scheduler.dequeue(key)
        self.removed.add(key)

    @precondition(lambda self: self.transcoder.jobs)
    @rule(index=st.integers(0, 100), outcome=st.sampled_from(["done", "failed", "stuck", "bug"]))
    def job_ends(self, index, outcome):
        """A running job ends with an outcome."""
        keys = sorted(self.transcoder.jobs)
        self.transcoder.finish(keys[index % len(keys)], outcome)

    @rule()
    def pause(self):
        """The operator pauses."""
        self.scheduler.pause()

    @rule()
    def resume(self):
        """The operator resumes."""
        self.scheduler.resume()

    @rule(capacity=st.integers(0, 4))
    def capacity_changes(self, capacity):
        """Workers come and go."""
        self.transcoder.capacity = capacity
        self.scheduler.dispatch()

    @invariant()
    def never_over_capacity_never_twice(self):
        """No job starts while no slot is free."""
        assert self.transcoder.over_capacity == []
        assert len(set(self.transcoder.started)) == len(self.transcoder.started)  # never twice

    @invariant()
    def each_file_ends_at_most_once_and_priority_holds(self):
        """No file ends twice; every start took the best queued file."""
        assert all(count == 1 for count in self.ended.values())
        assert not self.order_violations

    def teardown(self):
        """Drain: resume with room and finish everything; every file ends exactly once."""
        self.transcoder.capacity = 10**6
        self.scheduler.resume()
        while self.transcoder.jobs:
            for key in list(self.transcoder.jobs):
                self.transcoder.finish(key, "done")
        expected = self.offered - self.removed
        assert set(self.ended) == expected
        assert all(count == 1 for count in self.ended.values())
        assert not self.scheduler.queue() and not self.scheduler.running()


SchedulerMachine.TestCase.settings = settings(
    max_examples=60, stateful_step_count=40, deadline=None
)
TestScheduler = SchedulerMachine.TestCase


@given(st.lists(st.tuples(st.integers(0, 3), st.integers(0, 5)), max_size=40), st.integers(0, 45))
def test_first_page_of_the_queue_is_the_start_of_the_whole_queue(files, first):
    """queue(first) gives the first files of the dispatch order without sorting them all."""
    scheduler = Scheduler(FakeTranscoder(0), Clock())
    scheduler.start()
    for n, (priority, detected) in enumerate(files):
        scheduler.enqueue(("c", "p", f"f{n}"), priority, float(detected))
    assert scheduler.queue(first) == scheduler.queue()[:first]
    assert scheduler.queued_count() == len(files)
