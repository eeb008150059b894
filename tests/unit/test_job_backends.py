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
    # It transcodes: ffmpeg describes the source before the first target runs.
    assert job.backend.describes_source(job) is False
    copies = replace(SPEC, targets=({"type": "identity", "name": "copy"},) * 2)
    only_copies = Job(copies, Roots({"default": "/m", "temp": "/t"}), "w1", Clock())
    assert only_copies.backend.describes_source(only_copies) is True  # its decode check does


def test_the_qmaster_backend_provides_the_interface_and_has_the_source_described():
    """Compressor reads the source itself; each qmaster job gets a backend of its own."""
    worker = qmaster_worker(QmasterSettings(), 1, Roots({"default": "/m", "temp": "/t"}), Clock())
    factory = worker.host.job_factory
    first = factory(SPEC, worker.host.roots, "qmaster", Clock())
    second = factory(replace(SPEC, job_id="J2"), worker.host.roots, "qmaster", Clock())
    assert isinstance(first.backend, QmasterBackend) and verifyObject(IJobBackend, first.backend)
    assert first.backend is not second.backend
    assert first.backend.describes_source(first) is False
    assert first.backend.name == "qmaster"
