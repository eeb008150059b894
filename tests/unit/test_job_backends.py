"""The job's backends honour one interface: the job runs the same stages whatever makes
its outputs."""

from __future__ import annotations

from dataclasses import replace

from twisted.internet.task import Clock
from zope.interface.verify import verifyObject

from transcoder_admin.context.paths import Roots
from transcoder_admin.job.backend import IJobBackend
from transcoder_admin.job.job import Job
from transcoder_admin.job.targets import FfmpegBackend
from transcoder_admin.qmaster.backend import QmasterBackend, qmaster_worker
from transcoder_admin.qmaster.settings import QmasterSettings
from transcoder_admin.records import JobSpec

SPEC = JobSpec(
    job_id="J1",
    attempt=1,
    customer="c",
    profile="p",
    relpath="x.mov",
    source="default:/in/x.mov",
    targets=({"type": "audio-video", "name": "hd"},),
)


def test_the_ffmpeg_backend_provides_the_interface_and_is_the_default():
    """A job without a backend named runs its targets with ffmpeg."""
    backend = FfmpegBackend()
    assert verifyObject(IJobBackend, backend)
    job = Job(SPEC, Roots({"default": "/m", "temp": "/t"}), "w1", Clock())
    assert isinstance(job.backend, FfmpegBackend)
    assert job.backend.needs_picture(job) is True  # it scales the picture


def test_the_qmaster_backend_provides_the_interface_and_reads_no_picture():
    """Compressor reads the source itself; each qmaster job gets a backend of its own."""
    worker = qmaster_worker(QmasterSettings(), 1, Roots({"default": "/m", "temp": "/t"}), Clock())
    factory = worker.host.job_factory
    first = factory(SPEC, worker.host.roots, "qmaster", Clock())
    second = factory(replace(SPEC, job_id="J2"), worker.host.roots, "qmaster", Clock())
    assert isinstance(first.backend, QmasterBackend) and verifyObject(IJobBackend, first.backend)
    assert first.backend is not second.backend
    assert first.backend.needs_picture(first) is False
    assert first.backend.name == "qmaster"
