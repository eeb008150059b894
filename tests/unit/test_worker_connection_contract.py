"""One contract, three worker connections: the in-process one, the one over PB, and the
scripted fake other tests use in their place.

Transcoding talks to every worker through ``IWorkerConnection``; these tests hold every
implementation to the same answers for the same calls, the real ones on real jobs (a
source that is not media ends its job at once with a source failure) and real folders.
The PB side is the admin's ``WorkerProxy`` through the embedded manager to a real
``WorkerDaemon`` over an in-memory transport.  The scripted fake moves nothing on disk:
only its answers are checked.
"""

from __future__ import annotations

import os
from typing import Any

from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from transcoder_admin.context.paths import Roots
from transcoder_admin.prognosis import SOURCE, SYSTEM, JobFailure
from transcoder_admin.records import Report
from transcoder_admin.worker.interfaces import IWorkerConnection, UnknownJob
from transcoder_admin.worker.local import InProcessWorkerConnection, JobHost
from transcoder_admin.worker.testing import ScriptedWorker

from .pbpairs import FakeReactor, job_spec, report_files, scratch, write_source
from .test_pb_manager import Farm


class WorkerConnectionContract:
    """What every ``IWorkerConnection`` does; a subclass builds one and settles calls."""

    media: str
    temp: str
    connection: Any
    #: Whether the connection's jobs work on disk (the scripted fake's do not: only the
    #: answers are held to the contract then).
    on_disk = True

    def assertOnDisk(self, path: str, there: bool) -> None:  # noqa: N802 (unittest style)
        """``path`` exists (or not), for a connection whose jobs work on disk; a folder
        that should hold one file holds only it."""
        if self.on_disk:
            self.assertEqual(os.path.exists(path), there, path)
            if there:
                others = report_files(os.path.dirname(path))  # a diagnosis may sit beside
                self.assertEqual(others, [os.path.basename(path)])

    def settle(self) -> None:
        """Let the calls made so far reach the worker and their answers come back."""
        raise NotImplementedError

    def call(self, d: Any) -> Any:
        """The result of a call, once settled."""
        self.settle()
        return self.successResultOf(d)

    def failed(self, d: Any, *errors: type[BaseException]) -> Any:
        """The failure of a call, once settled."""
        self.settle()
        return self.failureResultOf(d, *errors)

    def path(self, relpath: str) -> str:
        """A file under the media root."""
        return os.path.join(self.media, relpath)

    def test_it_provides_the_interface_and_names_its_worker(self) -> None:
        """The connection is an IWorkerConnection with the worker's name and slots."""
        self.assertTrue(verifyObject(IWorkerConnection, self.connection))
        info = self.connection.info()
        self.assertEqual((info["name"], info["max_jobs"]), ("w1", 2))
        self.assertEqual(self.connection.max_jobs, 2)

    def test_an_outcome_moves_nothing_until_it_is_acknowledged(self) -> None:
        """start_job fires with the outcome; the source moves only on acknowledge."""
        source = write_source(self.media)
        outcome = self.call(self.connection.start_job(job_spec("J1", 1)))
        self.assertEqual((outcome.outcome, outcome.failure.kind), ("failed", "source"))
        self.assertOnDisk(source, True)
        self.assertIn("J1", self.connection.running_jobs())
        report = self.call(self.connection.acknowledge("J1"))
        self.assertEqual((report.outcome, report.committed), ("failed", True))
        self.assertOnDisk(source, False)
        self.assertOnDisk(self.path("failed/clip.mov"), True)
        self.assertOnDisk(self.path("reports/failed/clip.mov.J1.yaml"), True)
        self.assertNotIn("J1", self.connection.running_jobs())

    def test_an_acknowledgement_repeated_gets_the_same_report(self) -> None:
        """Acknowledging twice (a reply lost on the way) commits once, answers twice."""
        write_source(self.media)
        self.call(self.connection.start_job(job_spec("J1", 1)))
        first = self.call(self.connection.acknowledge("J1"))
        self.assertOnDisk(self.path("failed/clip.mov"), True)
        host_report = self.call(self.host_acknowledge("J1"))
        self.assertEqual(host_report.job_id, first.job_id)
        self.assertOnDisk(self.path("failed/clip.mov"), True)

    def test_acknowledging_a_job_it_does_not_have_fails_with_unknown_job(self) -> None:
        """No such job: UnknownJob, and nothing moves."""
        source = write_source(self.media)
        self.failed(self.connection.acknowledge("nope"), UnknownJob)
        self.assertOnDisk(source, True)

    def test_failing_a_source_moves_it_to_failed_with_the_reason(self) -> None:
        """A dead job's source goes to failed, its report saying why."""
        source = write_source(self.media)
        failure = JobFailure(SYSTEM, "worker w9 was lost")
        report = self.call(self.connection.fail_source(job_spec("J2", 3), failure))
        self.assertEqual((report.outcome, report.attempt), ("failed", 3))
        self.assertEqual(report.failure.reason, "worker w9 was lost")
        self.assertOnDisk(source, False)
        self.assertOnDisk(self.path("failed/clip.mov"), True)

    def test_cancelling_a_finished_job_moves_nothing_and_forgets_it(self) -> None:
        """Cancel: the source stays in incoming; the job is gone from the worker."""
        source = write_source(self.media)
        self.call(self.connection.start_job(job_spec("J1", 1)))
        self.call(self.connection.cancel_job("J1"))
        self.assertOnDisk(source, True)
        self.assertNotIn("J1", self.connection.running_jobs())
        self.assertOnDisk(self.path("failed/clip.mov"), False)

    def test_cleaning_a_dead_attempt_removes_its_work_folder(self) -> None:
        """clean_job removes what an attempt left in its work folder."""
        work = os.path.join(self.temp, "work", "J7")
        os.makedirs(work)
        with open(os.path.join(work, "00-out.mp4"), "wb") as f:
            f.write(b"half an output")
        self.call(self.connection.clean_job(job_spec("J7", 1)))
        self.assertOnDisk(work, False)

    def host_acknowledge(self, job_id: str) -> Any:
        """The acknowledgement again, as it reaches the worker a second time."""
        raise NotImplementedError


class InProcessConnectionTests(WorkerConnectionContract, SynchronousTestCase):
    """The in-process connection (local jobs, the Qmaster backend's host)."""

    def setUp(self) -> None:
        base = scratch(self)
        self.media, self.temp = os.path.join(base, "media"), os.path.join(base, "temp")
        self.reactor = FakeReactor()
        roots = Roots({"default": self.media, "temp": self.temp})
        self.host = JobHost("w1", roots, 2, self.reactor)
        self.connection = InProcessWorkerConnection(self.host)

    def settle(self) -> None:
        """Everything runs on the test's thread: the clock only."""
        self.reactor.advance(0)

    def host_acknowledge(self, job_id: str) -> Any:
        """A second acknowledgement of the same job."""
        return self.connection.acknowledge(job_id)


class PBConnectionTests(WorkerConnectionContract, SynchronousTestCase):
    """The admin's WorkerProxy, through the embedded manager, to a WorkerDaemon."""

    def setUp(self) -> None:
        self.farm = Farm(self)
        self.farm.embedded()
        self.media, self.temp = self.farm.media, os.path.join(self.farm.base, "temp")
        self.daemon, _pump = self.farm.worker("w1")
        self.connection = self.farm.workers.proxies["w1"]

    def settle(self) -> None:
        """Pump the PB connection both ways until it is quiet."""
        self.farm.net.flush()

    def host_acknowledge(self, job_id: str) -> Any:
        """The worker's own answer to an acknowledgement it already committed."""
        return self.daemon.host.acknowledge(job_id).addCallback(Report.from_document)


class ScriptedConnectionTests(WorkerConnectionContract, SynchronousTestCase):
    """The scripted fake the transcoding tests use (``worker/testing.py``): its answers."""

    on_disk = False

    def setUp(self) -> None:
        base = scratch(self)
        self.media, self.temp = os.path.join(base, "media"), os.path.join(base, "temp")
        self.connection = ScriptedWorker("w1", 2)

    def settle(self) -> None:
        """Every running job ends as a real one does on a source that is not media."""
        for job_id in self.connection.running():
            self.connection.finish(job_id, JobFailure(SOURCE, "not a media file"))

    def host_acknowledge(self, job_id: str) -> Any:
        """A second acknowledgement of the same job."""
        return self.connection.acknowledge(job_id)
