"""A worker's job lease: a job is held until the admin acknowledges its current attempt.

Real :class:`JobHost` and :class:`Job` objects on a memory reactor whose thread pool
runs on the test's thread (and can hold calls, to keep a job running).  The sources
are text files, so each job ends at once with a source failure: committing it moves
the source to failed and writes a failure report, which is what fencing must prevent
for an attempt that is not the admin's current one.
"""

from __future__ import annotations

import os

from twisted.trial.unittest import SynchronousTestCase

from tests.unit.pbpairs import MANAGER, FakeReactor, job_spec, scratch, write_source
from transcoder_admin.context.paths import Roots
from transcoder_admin.reports.files import read_report
from transcoder_admin.wire import decode, encode
from transcoder_admin.worker import local
from transcoder_admin.worker.daemon import RemoteUnknownJob, WorkerDaemon
from transcoder_admin.worker.interfaces import UnknownJob
from transcoder_admin.worker.local import InProcessWorkerConnection, JobHost


class Host:
    """A job host on a tmp media root and work root."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.media = os.path.join(base, "media")
        self.temp = os.path.join(base, "temp")
        self.reactor = FakeReactor()
        self.roots = Roots({"default": self.media, "temp": self.temp})
        self.host = JobHost("w1", self.roots, 2, self.reactor)

    def source(self, name: str = "clip.mov") -> str:
        """Drop a source into incoming."""
        return write_source(self.media, f"in/{name}")

    def path(self, *parts: str) -> str:
        """A path below the media root."""
        return os.path.join(self.media, *parts)

    def reports(self) -> list[str]:
        """Every report file written (done or failed)."""
        found = []
        for folder, _dirs, files in os.walk(self.path("reports")):
            found += [os.path.join(folder, f) for f in files if not f.endswith(".diagnosis.yaml")]
        return sorted(found)


class JobLeaseTests(SynchronousTestCase):
    """Acknowledge commits only the current attempt, once; cancel ends the lease."""

    def setUp(self) -> None:
        self.h = Host(scratch(self))
        self.source = self.h.source()

    def finished(self, job_id: str = "J1", attempt: int = 1, name: str = "clip.mov") -> dict:
        """Start a job and return its outcome (it ends at once)."""
        outcome = self.successResultOf(
            self.h.host.start_job(job_spec(job_id, attempt, f"in/{name}"))
        )
        self.assertEqual(outcome["failure"]["kind"], "source")
        return outcome

    def test_a_running_job_cannot_be_acknowledged(self):
        """No outcome yet: the acknowledgement is refused and the job runs on."""
        self.h.reactor.pool.paused = True
        outcome = self.h.host.start_job(job_spec("J1", 1))
        self.failureResultOf(self.h.host.acknowledge("J1", 1), UnknownJob)
        self.assertIsNone(self.h.host.outcome("J1"))
        [row] = self.h.host.describe_jobs()
        self.assertEqual((row["job_id"], row["state"], row["attempt"]), ("J1", "running", 1))
        self.h.reactor.pool.resume()
        self.assertEqual(self.successResultOf(outcome)["outcome"], "failed")
        self.assertEqual(self.h.host.describe_jobs()[0]["state"], "finished")
        self.assertTrue(os.path.exists(self.source), "nothing moves before the acknowledgement")

    def test_acknowledge_of_another_attempt_is_refused_and_moves_nothing(self):
        """A stale attempt's acknowledgement is refused; the current one commits."""
        self.finished("J1", attempt=2)
        failure = self.failureResultOf(self.h.host.acknowledge("J1", 1), UnknownJob)
        self.assertIn("attempt 2", str(failure.value))
        self.failureResultOf(self.h.host.acknowledge("J1", 3), UnknownJob)
        self.assertTrue(os.path.exists(self.source))
        self.assertEqual(self.h.reports(), [])
        self.assertEqual([r["job_id"] for r in self.h.host.describe_jobs()], ["J1"])
        report = self.successResultOf(self.h.host.acknowledge("J1", 2))
        self.assertEqual((report["outcome"], report["attempt"]), ("failed", 2))
        self.assertFalse(os.path.exists(self.source))
        self.assertTrue(os.path.exists(self.h.path("failed", "clip.mov")))
        [saved] = self.h.reports()
        self.assertEqual(read_report(saved)["attempt"], 2)

    def test_repeated_acknowledge_returns_the_same_committed_report(self):
        """An acknowledgement repeated after a lost answer gets the same report, moves nothing."""
        self.finished("J1", attempt=1)
        first = self.successResultOf(self.h.host.acknowledge("J1", 1))
        self.assertEqual(self.h.host.describe_jobs(), [], "a committed job is forgotten")
        self.h.source()  # a new file of the same name arrives in incoming
        again = self.successResultOf(self.h.host.acknowledge("J1", 1))
        self.assertEqual(again, first)
        self.assertTrue(os.path.exists(self.source), "the new file is not moved")
        self.assertEqual(len(self.h.reports()), 1)

    def test_cancel_then_acknowledge_is_refused(self):
        """A cancelled job is gone: its acknowledgement is refused, its source stays."""
        self.finished("J1", attempt=1)
        work = self.h.roots.local("temp:/work/J1")
        self.assertTrue(os.path.isdir(work))
        self.successResultOf(self.h.host.cancel_job("J1"))
        self.failureResultOf(self.h.host.acknowledge("J1", 1), UnknownJob)
        self.failureResultOf(self.h.host.acknowledge("J1"), UnknownJob)
        self.assertFalse(os.path.exists(work), "its work files are removed")
        self.assertTrue(os.path.exists(self.source))
        self.assertEqual(self.h.reports(), [])
        self.assertRaises(UnknownJob, self.h.host.outcome, "J1")

    def test_cancel_of_a_running_job_ends_it_as_cancelled(self):
        """Cancelled while running: it ends as cancelled, nothing to acknowledge."""
        self.h.reactor.pool.paused = True
        outcome = self.h.host.start_job(job_spec("J1", 1))
        done = self.h.host.cancel_job("J1")
        self.h.reactor.pool.resume()
        self.successResultOf(done)
        self.assertEqual(self.successResultOf(outcome)["failure"]["kind"], "cancelled")
        self.failureResultOf(self.h.host.acknowledge("J1", 1), UnknownJob)
        self.assertTrue(os.path.exists(self.source))
        self.assertEqual(self.h.reports(), [])

    def test_the_committed_cache_is_bounded(self):
        """Only the last COMMITTED_KEPT reports are remembered for repeats."""
        self.patch(local, "COMMITTED_KEPT", 2)
        for n in range(3):
            self.h.source(f"c{n}.mov")
            self.finished(f"J{n}", 1, f"c{n}.mov")
            self.successResultOf(self.h.host.acknowledge(f"J{n}", 1))
        self.assertEqual(list(self.h.host.committed), ["J1", "J2"])
        self.failureResultOf(self.h.host.acknowledge("J0", 1), UnknownJob)
        self.successResultOf(self.h.host.acknowledge("J2", 1))

    def test_a_job_id_runs_once(self):
        """Starting a job id the host already holds is refused."""
        self.finished("J1")
        self.assertRaises(ValueError, self.h.host.start_job, job_spec("J1", 1))

    def test_describe_jobs_lists_attempt_key_and_optionally_the_spec(self):
        """What a hello reports: each job's attempt and key; with specs for adoption."""
        self.finished("J1", attempt=3)
        [row] = self.h.host.describe_jobs()
        self.assertEqual(row["attempt"], 3)
        self.assertEqual(row["key"], ["c", "p", "clip.mov"])
        self.assertNotIn("spec", row)
        [full] = self.h.host.describe_jobs(with_specs=True)
        self.assertEqual(full["spec"]["job_id"], "J1")

    def test_clean_job_spares_a_live_job_and_removes_a_dead_attempts_folder(self):
        """Cleaning never touches a job the host holds; a dead attempt's folder goes."""
        self.finished("J1")
        live = self.h.roots.local("temp:/work/J1")
        self.assertEqual(self.successResultOf(self.h.host.clean_job(job_spec("J1", 1))), 0)
        self.assertTrue(os.path.isdir(live))
        dead = self.h.roots.local("temp:/work/J0")
        os.makedirs(dead)
        self.successResultOf(self.h.host.clean_job(job_spec("J0", 1)))
        self.assertFalse(os.path.exists(dead))

    def test_stop_aborts_every_job_and_leaves_the_sources(self):
        """Shutdown: jobs are aborted, sources stay in incoming for the next run."""
        self.finished("J1")
        self.successResultOf(self.h.host.stop())
        self.assertEqual(self.h.host.jobs, {})
        self.assertTrue(os.path.exists(self.source))

    def test_in_process_connection_commits_without_an_attempt(self):
        """The embedded farm's connection acknowledges by job id alone."""
        conn = InProcessWorkerConnection(self.h.host)
        outcome = self.successResultOf(conn.start_job(job_spec("J1", 1)))
        self.assertEqual(outcome.outcome, "failed")
        report = self.successResultOf(conn.acknowledge("J1"))
        self.assertEqual(report.job_id, "J1")
        self.assertTrue(os.path.exists(self.h.path("failed", "clip.mov")))


class WorkerMindTests(SynchronousTestCase):
    """The worker's remote methods: local errors become PB errors the admin can match."""

    def setUp(self) -> None:
        self.h = Host(scratch(self))
        self.h.source()
        self.daemon = WorkerDaemon("w1", MANAGER, b"secret", self.h.roots, 2, self.h.reactor)

    def test_refused_acknowledge_is_a_remote_unknown_job(self):
        """Wrong attempt or no job: RemoteUnknownJob, a pb.Error that crosses the wire."""
        self.assertTrue(self.daemon.mind.remote_start_job(encode(job_spec("J1", 2).to_wire())))
        self.failureResultOf(self.daemon.mind.remote_acknowledge("J1", 1), RemoteUnknownJob)
        self.failureResultOf(self.daemon.mind.remote_acknowledge("J9", 1), RemoteUnknownJob)
        self.assertRaises(RemoteUnknownJob, self.daemon.mind.remote_outcome, "J9")
        self.assertEqual(decode(self.daemon.mind.remote_outcome("J1"))["attempt"], 2)

    def test_repeated_start_after_a_lost_answer_runs_the_job_once(self):
        """A start request sent again (its answer was lost) does not start a second job."""
        self.h.reactor.pool.paused = True
        self.assertTrue(self.daemon.start_job(job_spec("J1", 1)))
        self.assertTrue(self.daemon.start_job(job_spec("J1", 1)))
        self.assertEqual(list(self.daemon.host.jobs), ["J1"])
        self.h.reactor.pool.resume()
        self.assertEqual(self.daemon.host.describe_jobs()[0]["state"], "finished")
