"""Real jobs on the real reactor, with real ffmpeg.

A big source's checksum is made while the job's programs read it, not before them: on
a clip counted as big, the checksum may start only once one of the job's programs runs.
Were it made in the analysis, as for small files, no program would start before it
ended and the job would fail here.

A source whose tags fill a quarter of a megabyte of ffmpeg's description is still
described by its decode check (the description is read from the program's standard
error, tags first).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import time

from twisted.internet import defer, reactor
from twisted.trial import unittest

from tests.clips import FFMPEG, make_clip
from tests.unit.pbpairs import job_spec, scratch
from transcoder_admin.context.paths import Roots
from transcoder_admin.job import job as job_module
from transcoder_admin.job import source as source_module
from transcoder_admin.job.job import Job

WAIT = 10.0  # seconds the checksum waits for a program of the job to run


class RealJobTests(unittest.TestCase):
    timeout = 60

    def setUp(self) -> None:
        folder = scratch(self)
        self.media = os.path.join(folder, "media")
        os.makedirs(os.path.join(self.media, "in"))
        os.makedirs(os.path.join(folder, "tmp"))
        self.source = make_clip(os.path.join(self.media, "in", "clip.mp4"), duration=1.0)
        self.roots = Roots({"default": self.media, "temp": os.path.join(folder, "tmp")})
        self.patch(source_module, "INLINE_CHECKSUM_BYTES", 0)  # every source is big
        self.seen: list[bool] = []

    def _job(self, ready=lambda job: job._process is not None, relpath="in/clip.mp4") -> Job:
        """The job; its checksum starts once ``ready(job)`` (by default: once one of its
        programs runs), or after WAIT seconds."""
        target = {
            "type": "identity",
            "name": "copy",
            "output_folder": "default:/out",
            "output_name": "clip.mp4",
        }
        spec = job_spec("J1", 1, relpath=relpath, targets=[target])
        job = Job(spec, self.roots, "w1", reactor)
        real = job_module.file_checksum

        def after_a_program_starts(path, stop=None):
            deadline = time.monotonic() + WAIT
            while not ready(job) and time.monotonic() < deadline:
                time.sleep(0.005)
            self.seen.append(ready(job))
            return real(path, stop)

        self.patch(job_module, "file_checksum", after_a_program_starts)
        return job

    @defer.inlineCallbacks
    def test_the_checksum_is_made_while_ffmpeg_checks_the_source(self):
        job = self._job()
        outcome = yield job.run()
        self.assertEqual(self.seen, [True])
        self.assertEqual(outcome["outcome"], "done", outcome.get("failure"))
        with open(self.source, "rb") as f:
            expected = "sha256:" + hashlib.sha256(f.read()).hexdigest()
        self.assertEqual(outcome["file"]["checksum"], expected)
        yield job.abort()

    @defer.inlineCallbacks
    def test_an_aborted_job_stops_its_checksum(self):
        job = self._job(ready=lambda job: job.aborted)
        ran = job.run()
        while job._process is None:
            yield deferLater(0.005)
        yield job.abort()
        outcome = yield ran
        self.assertEqual(outcome["outcome"], "failed")
        self.assertEqual(outcome["failure"]["reason"], "cancelled")
        self.assertEqual(self.seen, [True])
        self.assertIsNone(outcome["file"]["checksum"])  # abandoned at its first chunk

    @defer.inlineCallbacks
    def test_a_source_with_a_quarter_megabyte_of_tags_is_described_by_its_check(self):
        meta = os.path.join(self.media, "tags.txt")
        with open(meta, "w") as f:
            f.write(";FFMETADATA1\n" + "".join(f"tag{i}=" + "x" * 40 + "\n" for i in range(6000)))
        tagged = os.path.join(self.media, "in", "tagged.mkv")
        subprocess.run(
            [FFMPEG, "-v", "error", "-i", self.source, "-f", "ffmetadata", "-i", meta,
             "-map", "0", "-map_metadata", "1", "-c", "copy", tagged],
            check=True,
        )  # fmt: skip
        self.patch(source_module, "INLINE_CHECKSUM_BYTES", 4 << 20)
        job = self._job(relpath="in/tagged.mkv")
        outcome = yield job.run()
        self.assertEqual(outcome["outcome"], "done", outcome.get("failure"))
        info = outcome["source_info"]
        self.assertEqual((info["video"]["width"], info["audio"]["channels"]), (320, 1))
        yield job.abort()


def deferLater(seconds: float) -> defer.Deferred[None]:  # noqa: N802 (Twisted's name)
    from twisted.internet.task import deferLater as later

    return later(reactor, seconds, lambda: None)
