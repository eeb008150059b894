"""The transcoding balancer as a hypothesis state machine over fake workers.

Random files start; jobs end (done, system failure, source failure); workers detach
(their jobs go on), are lost (their jobs fail over) and come back.  Whatever happens:
no worker runs more jobs than its slots, no file runs on two workers at once, and
every file's run ends exactly once with exactly one committing action (an
acknowledgement or a failed source).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule
from twisted.internet import defer
from twisted.internet.task import Clock

from tests.unit.test_transcoding import FakeWorker, item_spec
from transcoder_admin.records import JobSpec, Report
from transcoder_admin.scheduler import QueueItem
from transcoder_admin.transcoding import Transcoding

SLOTS = {"a": 1, "b": 2, "c": 3}
MAX_ATTEMPTS = 3
SYSTEM = {"kind": "system", "reason": "ffmpeg crashed"}
SOURCE = {"kind": "source", "reason": "not a media file"}


class Worker(FakeWorker):
    """A fake worker that checks, at each start, the invariants the balancer promises."""

    def __init__(self, name: str, max_jobs: int, machine: BalancerMachine) -> None:
        super().__init__(name, max_jobs)
        self.machine = machine
        self.specs: dict[str, dict] = {}

    def start_job(self, spec: dict) -> defer.Deferred:
        """Start, noting a start beyond the slots or of a file that runs elsewhere."""
        key = tuple(spec.key)
        if len(self.running()) >= self.max_jobs:
            self.machine.violations.append(f"{self.name} over its {self.max_jobs} slots")
        for other in self.machine.workers.values():
            if key in [tuple(s.key) for s in other.specs.values()]:
                self.machine.violations.append(f"{key} on {other.name} and {self.name}")
        self.specs[spec.job_id] = spec
        self.machine.job_keys[spec.job_id] = key
        return super().start_job(spec)

    def end(self, job_id: str, failure: dict | None = None) -> None:
        """End one job with an outcome."""
        self.specs.pop(job_id)
        self.finish(job_id, failure)

    def lose_all(self) -> None:
        """The worker is lost: every job it ran fails with WorkerGone."""
        for job_id in self.running():
            self.specs.pop(job_id)
            self.finish(job_id, lost=True)

    def acknowledge(self, job_id: str) -> defer.Deferred:
        """Commit: count it for the job's file."""
        self.machine.commits[self.machine.job_keys[job_id]] += 1
        return super().acknowledge(job_id)

    def fail_source(self, spec: dict, failure: dict) -> defer.Deferred:
        """Fail the source of a dead job: count it for the file."""
        self.machine.commits[tuple(spec.key)] += 1
        return super().fail_source(spec, failure)


class BalancerMachine(RuleBasedStateMachine):
    """Files, outcomes and worker losses in random order."""

    def __init__(self) -> None:
        super().__init__()
        self.transcoding = Transcoding(self._spec, Clock())
        self.workers = {n: Worker(n, slots, self) for n, slots in SLOTS.items()}
        self.state = dict.fromkeys(SLOTS, "attached")
        for worker in self.workers.values():
            self.transcoding.add_worker(worker)
        self.violations: list[str] = []
        self.job_keys: dict[str, tuple] = {}
        self.commits: Counter = Counter()
        self.ended: Counter = Counter()
        self.results: dict[tuple, Any] = {}
        self.files = 0

    @staticmethod
    def _spec(item: QueueItem, job_id: str, attempt: int) -> JobSpec:
        return item_spec(item, job_id, attempt, MAX_ATTEMPTS)

    def _running(self) -> list[tuple[str, str]]:
        # Job ids are random: order by worker and file so that examples replay exactly.
        jobs = [
            (w.name, tuple(s.key), s.attempt, job_id)
            for w in self.workers.values()
            for job_id, s in w.specs.items()
        ]
        return [(name, job_id) for name, _key, _attempt, job_id in sorted(jobs)]

    @rule()
    def file_arrives(self):
        """A file is handed to transcoding."""
        self.files += 1
        key = ("c", "p", f"f{self.files}.mov")

        def ended(result: Any) -> None:
            self.ended[key] += 1
            self.results[key] = result

        self.transcoding.run(QueueItem(key, 1, 0.0)).addBoth(ended)

    @precondition(lambda self: self._running())
    @rule(data=st.data(), failure=st.sampled_from([None, SYSTEM, SOURCE]))
    def job_ends(self, data, failure):
        """A running job ends: done, a system failure (retried) or a source failure."""
        name, job_id = data.draw(st.sampled_from(self._running()))
        self.workers[name].end(job_id, failure)

    @rule(name=st.sampled_from(sorted(SLOTS)))
    def worker_detaches(self, name):
        """A worker's link drops: no new jobs for it, its running ones go on."""
        if self.state[name] == "attached":
            self.transcoding.remove_worker(name)
            self.state[name] = "detached"

    @rule(name=st.sampled_from(sorted(SLOTS)))
    def worker_is_lost(self, name):
        """A worker is silent too long: its jobs fail over to the others."""
        if self.state[name] != "lost":
            self.transcoding.remove_worker(name)
            self.state[name] = "lost"
            self.workers[name].lose_all()

    @rule(name=st.sampled_from(sorted(SLOTS)))
    def worker_comes_back(self, name):
        """A detached or lost worker attaches again."""
        if self.state[name] != "attached":
            self.state[name] = "attached"
            self.transcoding.add_worker(self.workers[name])

    @rule(name=st.sampled_from(sorted(SLOTS)), slots=st.integers(1, 4))
    def lost_worker_restarts_with_other_slots(self, name, slots):
        """A lost worker (it has no jobs) comes back configured with more or fewer slots."""
        if self.state[name] == "lost":
            self.workers[name].max_jobs = slots
            self.worker_comes_back(name)

    @invariant()
    def free_slots_are_those_of_the_attached_workers(self):
        """The free slots counted as they change are those a walk over the workers finds."""
        walked = sum(
            max(0, w.max_jobs - self.transcoding.load.get(n, 0))
            for n, w in self.workers.items()
            if self.state[n] == "attached"
        )
        assert self.transcoding.free_slots() == walked
        assert self.transcoding.free_slots("ffmpeg") == walked
        assert self.transcoding.free_slots("qmaster") == 0
        if walked:
            picked = self.transcoding.pick_worker()
            assert picked is not None and self.state[picked.name] == "attached"
        else:
            assert self.transcoding.pick_worker() is None

    @invariant()
    def never_over_capacity_nor_one_file_on_two_workers(self):
        """The balancer's promises hold at every step."""
        assert self.violations == []
        for worker in self.workers.values():
            assert len(worker.running()) <= worker.max_jobs
            # The load may count a job that is being failed elsewhere, never fewer.
            assert self.transcoding.load.get(worker.name, 0) >= len(worker.running())
        keys = [tuple(s.key) for w in self.workers.values() for s in w.specs.values()]
        assert len(keys) == len(set(keys))

    @invariant()
    def every_ended_file_committed_exactly_once(self):
        """A file's run ends once, after exactly one acknowledgement or failed source."""
        assert all(count == 1 for count in self.ended.values())
        assert all(count == 1 for count in self.commits.values())
        assert set(self.ended) == set(self.commits)
        assert all(isinstance(r, Report) for r in self.results.values())

    def teardown(self):
        """Everyone comes back and every job succeeds: every file's run ends, once."""
        for name in SLOTS:
            self.worker_comes_back(name)
        for _ in range(10 * (self.files + 1) * MAX_ATTEMPTS):
            running = self._running()
            if not running:
                break
            self.workers[running[0][0]].end(running[0][1])
        assert self._running() == []
        assert self.ended == Counter({("c", "p", f"f{n}.mov"): 1 for n in range(1, self.files + 1)})
        assert self.transcoding.tasks == {}
        assert all(load == 0 for load in self.transcoding.load.values())
        self.every_ended_file_committed_exactly_once()


BalancerMachine.TestCase.settings = settings(
    max_examples=80,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestBalancer = BalancerMachine.TestCase
