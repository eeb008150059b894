"""The Twisted Qmaster client against the emulated Compressor and Batch Monitor.

Real processes on the real reactor: every exception and every timeout of the client,
real outputs written with ffmpeg, hostile file names, the command prefix. After each
test no process of any command's process group may be left.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from collections.abc import Callable, Coroutine
from functools import wraps
from typing import Any

from twisted.internet import defer, reactor, task
from twisted.trial import unittest

from tests.clips import make_clip
from tests.qmaster_emulator import Emulator, write_setting
from transcoder_admin.media import probe
from transcoder_admin.qmaster import (
    BatchJob,
    BatchRef,
    QmasterBatchTimeoutError,
    QmasterClient,
    QmasterClusterNotFound,
    QmasterCommandNotFound,
    QmasterJobCancelled,
    QmasterJobFailed,
    QmasterNoOutputError,
    QmasterSettings,
    QmasterStatusError,
    QmasterStatusTimeoutError,
    QmasterSubmissionError,
    QmasterSubmissionTimeoutError,
)

HOSTILE = 'it\'s a "clip" $(touch pwned); rm -rf x\nline é'
_CLIPS: dict[str, str] = {}


def clip() -> str:
    """A 2-second clip, made once per test run."""
    if "av" not in _CLIPS:
        folder = tempfile.mkdtemp(prefix="qmaster-clips-")
        atexit.register(shutil.rmtree, folder, True)
        _CLIPS["av"] = make_clip(os.path.join(folder, "av.mp4"), duration=2.0)
    return _CLIPS["av"]


def async_test(
    f: Callable[..., Coroutine[Any, Any, None]],
) -> Callable[..., defer.Deferred[None]]:
    """Run an ``async def`` test method as a Deferred on trial's reactor."""

    @wraps(f)
    def wrapper(self: Any) -> defer.Deferred[None]:
        return defer.ensureDeferred(f(self))

    return wrapper


class QmasterClientTests(unittest.TestCase):
    """One emulator per test, in a folder of its own."""

    timeout = 120

    def setUp(self) -> None:
        self.folder = tempfile.mkdtemp(prefix="qmaster-test-")
        self.emulator = Emulator(self.folder)
        self.setting = write_setting(os.path.join(self.folder, "H.264 small.setting"))
        self.source = os.path.join(self.folder, "clip.mp4")
        shutil.copy(clip(), self.source)
        self.logs: list[tuple[str, str]] = []

    async def _no_leftovers(self) -> None:
        left = self.emulator.leftovers()
        for _ in range(100):
            if not left:
                break
            await task.deferLater(reactor, 0.05, lambda: None)
            left = self.emulator.leftovers()
        self.assertEqual(left, [], "processes outlived their command")

    def tearDown(self) -> defer.Deferred[None]:
        d = defer.ensureDeferred(self._no_leftovers())
        d.addBoth(lambda r: (shutil.rmtree(self.folder, True), r)[1])
        return d

    def client(self, **changes: Any) -> QmasterClient:
        """A client of the emulator with fast settings."""
        return QmasterClient(
            self.emulator.settings(**changes),
            reactor,
            env=self.emulator.env,
            log_sink=lambda level, message: self.logs.append((level, message)),
        )

    def job(self, name: str = "out.mov", setting: str | None = None) -> BatchJob:
        """The clip encoded with the setting into ``name`` in the test folder."""
        return BatchJob(self.source, setting or self.setting, os.path.join(self.folder, name))

    @async_test
    async def test_a_batch_writes_real_outputs(self) -> None:
        """Two targets in one batch: Successful, with both outputs decodable, 2 s long."""
        small = write_setting(
            os.path.join(self.folder, "small.setting"),
            ["-vf", "scale=160:-2", "-c:v", "libx264", "-preset", "ultrafast", "-an"],
        )
        client = self.client()
        submission = await client.submit(
            [self.job("big.mov"), self.job("small.mp4", small)], batch_name="news", priority=2
        )
        self.assertEqual(len(submission.job_ids), 2)
        seen: list[tuple[str | None, float | None]] = []
        final = await client.wait(
            submission.ref, on_progress=lambda s: seen.append((s.state, s.percent))
        )
        self.assertTrue(final.successful)
        self.assertEqual([s for s, _ in seen], ["Waiting", "Processing", "Successful"])
        self.assertEqual(seen[-1][1], 100.0)
        big = probe(os.path.join(self.folder, "big.mov"))
        small_info = probe(os.path.join(self.folder, "small.mp4"))
        self.assertAlmostEqual(big.duration or 0, 2.0, delta=0.2)
        self.assertIsNotNone(big.audio)
        self.assertEqual(small_info.video.width if small_info.video else 0, 160)
        record = self.emulator.batch(submission.batch_id)
        self.assertEqual((record["name"], record["priority"]), ("news", "2"))
        for call in self.emulator.call_records():
            self.assertEqual(call["pid"], call["pgid"], "each command leads its own group")
            self.assertEqual(call["pid"], call["sid"], "each command has its own session")

    @async_test
    async def test_cluster_gone_falls_back_to_this_computer(self) -> None:
        """An unknown cluster: the batch runs on This Computer, and the log says so."""
        client = self.client()
        submission = await client.submit([self.job()], cluster="FCS Cluster")
        self.assertEqual(submission.cluster, "This Computer")
        self.assertTrue(submission.fell_back)
        final = await client.wait(submission.ref)
        self.assertTrue(final.successful)
        self.assertTrue(os.path.getsize(os.path.join(self.folder, "out.mov")) > 0)
        self.assertIn("warning", [level for level, m in self.logs if "not found" in m])

    @async_test
    async def test_cluster_not_found_without_fallback(self) -> None:
        """Fallback off: QmasterClusterNotFound naming the cluster, one submission only."""
        client = self.client(fallback_to_local=False)
        with self.assertRaises(QmasterClusterNotFound) as caught:
            await client.submit([self.job()], cluster="FCS Cluster")
        self.assertEqual(caught.exception.cluster, "FCS Cluster")
        self.assertEqual(len(self.emulator.calls("Compressor")), 1)

    @async_test
    async def test_submission_errors(self) -> None:
        """Submission Error text, a non-zero exit and silence are their typed errors."""
        client = self.client()
        self.emulator.configure(submit_error="Unable to load setting 'H.264 small'")
        with self.assertRaises(QmasterSubmissionError) as caught:
            await client.submit([self.job()])
        self.assertEqual(caught.exception.text, "Unable to load setting 'H.264 small'")
        self.emulator.configure(
            submit_error=None, submit_exit_code=3, submit_stderr="qmasterd died"
        )
        with self.assertRaises(QmasterSubmissionError) as caught:
            await client.submit([self.job()])
        self.assertEqual(caught.exception.exit_code, 3)
        self.assertIn("qmasterd died", str(caught.exception))
        self.emulator.configure(submit_exit_code=0, submit_stderr="", submit_silent=True)
        with self.assertRaises(QmasterNoOutputError):
            await client.submit([self.job()])

    @async_test
    async def test_ids_on_either_stream_in_either_order(self) -> None:
        """Whatever stream, order and spacing Compressor uses, the batch id is read."""
        client = self.client()
        for stream, order, spacing in [
            ("stdout", "job-first", "normal"),
            ("split", "batch-first", "loose"),
            ("stderr", "batch-first", "loose"),
        ]:
            self.emulator.configure(ids_stream=stream, ids_order=order, ids_spacing=spacing)
            submission = await client.submit([self.job()])
            self.assertIn(submission.batch_id, self.emulator.batches())
            self.assertEqual(len(submission.job_ids), 1)

    @async_test
    async def test_submission_timeout_kills_the_process_group(self) -> None:
        """A hung Compressor (and the child it started) are killed at the timeout."""
        self.emulator.configure(submit_hang=True)
        client = self.client(submission_timeout=1.0)
        started = reactor.seconds()
        with self.assertRaises(QmasterSubmissionTimeoutError):
            await client.submit([self.job()], cluster="This Computer")
        self.assertLess(reactor.seconds() - started, 8)
        self.assertEqual(len(self.emulator.hung()), 1)
        await self._no_leftovers()

    @async_test
    async def test_status_timeout_kills_the_process_group(self) -> None:
        """A hung Batch Monitor is killed at the status timeout: QmasterStatusTimeoutError."""
        client = self.client(status_timeout=1.0)
        submission = await client.submit([self.job()])
        self.emulator.configure(status_hang=True)
        with self.assertRaises(QmasterStatusTimeoutError):
            await client.status(submission.ref)
        self.assertEqual([h["role"] for h in self.emulator.hung()], ["Batch Monitor"])
        await self._no_leftovers()

    @async_test
    async def test_wait_outlives_one_hung_query(self) -> None:
        """One hung status query is killed and the next one finds the batch Successful."""
        self.emulator.configure(status_sequence=["Waiting", "hang", "Processing"])
        client = self.client(status_timeout=3.0)
        submission = await client.submit([self.job()])
        final = await client.wait(submission.ref)
        self.assertTrue(final.successful)
        self.assertEqual(len(self.emulator.hung()), 1)

    @async_test
    async def test_hung_queries_fail_the_batch_after_the_grace(self) -> None:
        """Batch Monitor hanging every time: the wait fails after status_grace."""
        client = self.client(status_timeout=0.5, status_grace=1.0)
        submission = await client.submit([self.job()])
        self.emulator.configure(status_hang=True)
        with self.assertRaises(QmasterJobFailed) as caught:
            await client.wait(submission.ref)
        self.assertIn("did not answer", str(caught.exception))

    @async_test
    async def test_unreadable_status_fails_the_batch_after_the_grace(self) -> None:
        """Garbage from Batch Monitor for longer than status_grace: QmasterJobFailed."""
        self.emulator.configure(status_style="garbage")
        client = self.client(status_grace=0.5)
        submission = await client.submit([self.job()])
        with self.assertRaises(QmasterJobFailed) as caught:
            await client.wait(submission.ref)
        self.assertIn("internal error", caught.exception.status)
        self.emulator.configure(status_style="empty")
        with self.assertRaises(QmasterStatusError):
            await client.status(submission.ref)

    @async_test
    async def test_malformed_status_on_stderr_is_read(self) -> None:
        """Malformed tags, trailing spaces, unknown attributes on stderr: still Successful."""
        self.emulator.configure(status_style="malformed", status_stream="stderr")
        client = self.client()
        submission = await client.submit([self.job("a.mov"), self.job("b.mov")])
        states: list[str | None] = []
        final = await client.wait(submission.ref, on_progress=lambda s: states.append(s.state))
        self.assertTrue(final.successful)
        self.assertEqual(states, ["Waiting", "Processing", "Successful"])
        self.assertEqual(len(final.jobs), 2)

    @async_test
    async def test_failed_and_cancelled_batches(self) -> None:
        """Failed → QmasterJobFailed, Cancelled → QmasterJobCancelled, with the status text."""
        client = self.client()
        self.emulator.configure(outcome="Failed")
        submission = await client.submit([self.job()])
        with self.assertRaises(QmasterJobFailed) as failed:
            await client.wait(submission.ref)
        self.assertEqual(failed.exception.status, "Failed")
        self.emulator.configure(outcome="Cancelled")
        submission = await client.submit([self.job()])
        with self.assertRaises(QmasterJobCancelled) as cancelled:
            await client.wait(submission.ref)
        self.assertEqual(cancelled.exception.batch_id, submission.batch_id)

    @async_test
    async def test_a_source_that_is_not_media_fails_the_batch(self) -> None:
        """The emulator's ffmpeg fails on a text file: the batch ends Failed."""
        text = os.path.join(self.folder, "notes.mov")
        with open(text, "w") as f:
            f.write("not a video\n" * 20)
        client = self.client()
        submission = await client.submit([BatchJob(text, self.setting, text + ".out.mov")])
        with self.assertRaises(QmasterJobFailed):
            await client.wait(submission.ref)
        self.assertIn("error", self.emulator.batch(submission.batch_id))

    @async_test
    async def test_batch_timeout_cancels_the_batch(self) -> None:
        """A batch that never ends: QmasterBatchTimeoutError at the timeout, batch cancelled."""
        self.emulator.configure(status_sequence=["Processing"] * 10000)
        client = self.client()
        submission = await client.submit([self.job()])
        started = reactor.seconds()
        with self.assertRaises(QmasterBatchTimeoutError):
            await client.wait(submission.ref, timeout=1.0)
        self.assertLess(reactor.seconds() - started, 1.0 + 10.0)
        self.assertEqual(self.emulator.batch(submission.batch_id)["state"], "Cancelled")
        self.assertEqual(self.emulator.calls("Batch Monitor")[-1][-1], "-cancel")

    @async_test
    async def test_cancel(self) -> None:
        """cancel() cancels the batch on the cluster; the wait then ends Cancelled."""
        self.emulator.configure(status_sequence=["Processing"] * 10000)
        client = self.client()
        submission = await client.submit([self.job()])
        self.assertTrue(await client.cancel(submission.ref))
        with self.assertRaises(QmasterJobCancelled):
            await client.wait(submission.ref)
        self.assertFalse(await client.cancel(BatchRef("This Computer", "NO-SUCH-BATCH")))

    @async_test
    async def test_cancelling_a_wait_kills_the_hung_query(self) -> None:
        """Cancelling the wait's Deferred kills the status query that hangs for it."""
        client = self.client()
        submission = await client.submit([self.job()])
        self.emulator.configure(status_hang=True)
        d = client.wait(submission.ref)
        for _ in range(200):
            if self.emulator.hung():
                break
            await task.deferLater(reactor, 0.05, lambda: None)
        self.assertTrue(self.emulator.hung())
        d.cancel()
        with self.assertRaises(defer.CancelledError):
            await d
        await self._no_leftovers()

    @async_test
    async def test_hostile_names_are_plain_names(self) -> None:
        """Quotes, $(), ;, a newline and é in every name reach Compressor intact."""
        folder = os.path.join(self.folder, HOSTILE)
        os.makedirs(folder)
        source = os.path.join(folder, HOSTILE + ".mp4")
        shutil.copy(self.source, source)
        setting = write_setting(os.path.join(folder, HOSTILE + ".setting"))
        destination = os.path.join(folder, HOSTILE + " out.mov")
        client = self.client()
        submission = await client.submit(
            [BatchJob(source, setting, destination)], batch_name=HOSTILE, cluster=HOSTILE
        )
        await client.wait(submission.ref)
        self.assertTrue(os.path.getsize(destination) > 0)
        first = self.emulator.calls("Compressor")[0]
        self.assertEqual(first[first.index("-jobpath") + 1], source)
        self.assertEqual(first[first.index("-batchname") + 1], HOSTILE)
        self.assertEqual(first[first.index("-clustername") + 1], HOSTILE)
        self.assertFalse(os.path.exists("pwned") or os.path.exists(os.path.join(folder, "pwned")))

    @async_test
    async def test_command_prefix_quotes_for_the_remote_shell(self) -> None:
        """Through an ssh-like prefix (one command line for a shell) names stay intact."""
        fake_ssh = os.path.join(self.folder, "fake ssh")
        with open(fake_ssh, "w") as f:
            # like ssh HOST WORDS...: the words make one line for the remote shell
            f.write('#!/bin/sh\nshift\nexec /bin/sh -c "$*"\n')
        os.chmod(fake_ssh, 0o755)
        source = os.path.join(self.folder, HOSTILE + ".mp4")
        shutil.copy(self.source, source)
        destination = os.path.join(self.folder, HOSTILE + ".mov")
        client = self.client(command_prefix=(fake_ssh, "mac-encoder"), status_timeout=5.0)
        submission = await client.submit(
            [BatchJob(source, self.setting, destination)], cluster="FCS Cluster"
        )
        self.assertTrue(submission.fell_back)
        final = await client.wait(submission.ref)
        self.assertTrue(final.successful)
        self.assertTrue(os.path.getsize(destination) > 0)
        calls = self.emulator.calls("Compressor")
        self.assertEqual(calls[0][1], "FCS Cluster")
        self.assertEqual(calls[1][calls[1].index("-destinationpath") + 1], destination)

    @async_test
    async def test_missing_tools_are_named(self) -> None:
        """A Compressor path that is not an executable: QmasterCommandNotFound naming it."""
        client = QmasterClient(
            QmasterSettings(compressor=os.path.join(self.folder, "nope")), reactor
        )
        with self.assertRaises(QmasterCommandNotFound) as caught:
            await client.submit([self.job()])
        self.assertIn("qmaster.compressor", str(caught.exception))
