"""The client's rules (fallback, timeouts, polling), through both drivers, on fake time.

Every scenario runs twice: with the Twisted client on a ``task.Clock`` and with the
blocking client on a ``FakeTime``; both drive the same steps against ``FakeQmaster``.
"""

from __future__ import annotations

from typing import Any

import pytest
from twisted.internet import defer
from twisted.internet.task import Clock
from twisted.python.failure import Failure

from transcoder_admin.qmaster import (
    BatchJob,
    BatchRef,
    BlockingClient,
    QmasterBatchTimeoutError,
    QmasterClient,
    QmasterClusterNotFound,
    QmasterJobCancelled,
    QmasterJobFailed,
    QmasterNoOutputError,
    QmasterSettings,
    QmasterStatusTimeoutError,
    QmasterSubmissionError,
    QmasterSubmissionTimeoutError,
)
from transcoder_admin.qmaster.testing import FakeQmaster, FakeTime

JOBS = [BatchJob("/in/clip.mov", "/s/hd.setting", "/out/clip.mov")]
SETTINGS = QmasterSettings(
    compressor="/Compressor",
    batch_monitor="/Batch Monitor",
    check_paths=False,
    submission_timeout=30,
    status_timeout=10,
    poll_interval=5,
    status_grace=60,
)


class TwistedDriver:
    """QmasterClient on a task.Clock; each call advances the clock until its Deferred fires."""

    def __init__(self, settings: QmasterSettings, fake: FakeQmaster) -> None:
        self.clock = Clock()
        self.logs: list[tuple[str, str]] = []
        self.client = QmasterClient(
            settings,
            self.clock,
            runner=fake.twisted_runner(self.clock),
            log_sink=lambda level, message: self.logs.append((level, message)),
        )

    def now(self) -> float:
        """The fake time."""
        return self.clock.seconds()

    def call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        """Call ``method`` and run the clock until it answers; its value, or raise its error."""
        d = getattr(self.client, method)(*args, **kwargs)
        results: list[Any] = []
        d.addBoth(results.append)
        while not results:
            pending = self.clock.getDelayedCalls()
            assert pending, "the client waits for nothing"
            self.clock.advance(min(c.getTime() for c in pending) - self.clock.seconds())
        if isinstance(results[0], Failure):
            results[0].raiseException()
        return results[0]


class BlockingDriver:
    """BlockingClient on a FakeTime."""

    def __init__(self, settings: QmasterSettings, fake: FakeQmaster) -> None:
        self.time = FakeTime()
        self.logs: list[tuple[str, str]] = []
        self.client = BlockingClient(
            settings,
            runner=fake.blocking_runner(self.time),
            sleep=self.time.sleep,
            now=self.time.now,
            log=lambda level, message: self.logs.append((level, message)),
        )

    def now(self) -> float:
        """The fake time."""
        return self.time.now()

    def call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        """Call ``method``; its value, or raise its error."""
        return getattr(self.client, method)(*args, **kwargs)


@pytest.fixture(params=[TwistedDriver, BlockingDriver], ids=["twisted", "blocking"])
def make(request):
    """Build (driver, fake) for some settings, with either driver."""

    def build(settings: QmasterSettings = SETTINGS, clusters=("This Computer",)):
        fake = FakeQmaster(settings, clusters)
        return request.param(settings, fake), fake

    return build


def test_no_cluster_means_this_computer_and_priority_is_always_given(make):
    """Without cluster or priority, the batch goes to This Computer at the default priority."""
    driver, fake = make()
    submission = driver.call("submit", JOBS)
    assert submission.cluster == "This Computer" and not submission.fell_back
    assert fake.calls[0][:7] == [
        "/Compressor",
        "-clustername",
        "This Computer",
        "-batchname",
        "transcoder-admin clip.mov",
        "-priority",
        "medium",
    ]
    assert submission.batch_id in fake.batches


def test_unknown_cluster_falls_back_once_and_says_so(make):
    """An unknown cluster: one more submission to This Computer, with a warning."""
    driver, fake = make()
    submission = driver.call("submit", JOBS, cluster="FCS Cluster", priority=3)
    assert (submission.requested_cluster, submission.cluster) == ("FCS Cluster", "This Computer")
    assert submission.fell_back
    assert [c[2] for c in fake.calls] == ["FCS Cluster", "This Computer"]
    assert fake.calls[0][6] == "3"
    warnings = [m for level, m in driver.logs if level == "warning"]
    assert any("not found" in m and "This Computer" in m for m in warnings)


def test_no_fallback_when_disabled(make):
    """With fallback off, an unknown cluster is QmasterClusterNotFound after one call."""
    driver, fake = make(SETTINGS.replace(fallback_to_local=False))
    with pytest.raises(QmasterClusterNotFound) as caught:
        driver.call("submit", JOBS, cluster="FCS Cluster")
    assert caught.value.cluster == "FCS Cluster"
    assert len(fake.calls) == 1


def test_fallback_is_not_recursive(make):
    """When This Computer is unknown too, the error comes after exactly two calls."""
    driver, fake = make(clusters=())
    with pytest.raises(QmasterClusterNotFound) as caught:
        driver.call("submit", JOBS, cluster="FCS Cluster")
    assert caught.value.cluster == "This Computer"
    assert len(fake.calls) == 2


def test_submission_timeout(make):
    """A hung submission fails after the submission timeout, without a fallback."""
    driver, fake = make()
    fake.submit_answers = ["hang"]
    with pytest.raises(QmasterSubmissionTimeoutError, match="30 s"):
        driver.call("submit", JOBS, cluster="This Computer")
    assert driver.now() == pytest.approx(30)
    assert len(fake.calls) == 1


def test_submission_errors(make):
    """Submission Error text, exit codes and silence become their typed errors."""
    driver, fake = make()
    fake.submit_answers = [("error", "bad setting"), ("exit", 5, "boom"), "silent"]
    with pytest.raises(QmasterSubmissionError) as caught:
        driver.call("submit", JOBS)
    assert caught.value.text == "bad setting"
    with pytest.raises(QmasterSubmissionError) as caught:
        driver.call("submit", JOBS)
    assert caught.value.exit_code == 5 and "boom" in str(caught.value)
    with pytest.raises(QmasterNoOutputError):
        driver.call("submit", JOBS)


def test_wait_polls_until_successful_and_reports_progress(make):
    """Waiting, Processing, then Successful: each read reaches on_progress, poll by poll."""
    driver, fake = make()
    submission = driver.call("submit", JOBS)
    seen: list[str | None] = []
    final = driver.call("wait", submission.ref, on_progress=lambda s: seen.append(s.state))
    assert final.successful
    assert seen == ["Waiting", "Processing", "Successful"]
    assert driver.now() == pytest.approx(2 * SETTINGS.poll_interval)


@pytest.mark.parametrize(
    ("outcome", "error"), [("Failed", QmasterJobFailed), ("Cancelled", QmasterJobCancelled)]
)
def test_failed_and_cancelled_batches(make, outcome, error):
    """A Failed or Cancelled batch ends the wait with its exception and status text."""
    driver, fake = make()
    fake.outcome = outcome
    submission = driver.call("submit", JOBS)
    with pytest.raises(error) as caught:
        driver.call("wait", submission.ref)
    assert caught.value.status == outcome
    assert caught.value.batch_id == submission.batch_id


def test_unreadable_status_for_longer_than_the_grace_fails(make):
    """Garbage from Batch Monitor is retried, then the batch fails after status_grace."""
    driver, fake = make()
    fake.statuses = ["garbage"] * 100
    submission = driver.call("submit", JOBS)
    with pytest.raises(QmasterJobFailed, match="no readable status") as caught:
        driver.call("wait", submission.ref)
    assert "internal error" in caught.value.status
    assert SETTINGS.status_grace <= driver.now() <= SETTINGS.status_grace + SETTINGS.poll_interval


def test_one_unreadable_answer_is_forgiven(make):
    """An empty or unknown answer between good ones does not fail the batch."""
    driver, fake = make()
    fake.statuses = ["Waiting", "empty", "Exploding", "Processing"]
    submission = driver.call("submit", JOBS)
    assert driver.call("wait", submission.ref).successful
    assert any("unknown status 'Exploding'" in m for _, m in driver.logs)


def test_hung_status_queries_are_killed_and_retried(make):
    """A hung Batch Monitor costs one status timeout per query, then counts as unreadable."""
    driver, fake = make()
    fake.statuses = ["hang", "Processing"]
    submission = driver.call("submit", JOBS)
    assert driver.call("wait", submission.ref).successful
    assert driver.now() == pytest.approx(SETTINGS.status_timeout + 2 * SETTINGS.poll_interval)
    fake.statuses = ["hang"] * 100
    again = driver.call("submit", JOBS)
    with pytest.raises(QmasterJobFailed, match="did not answer"):
        driver.call("wait", again.ref)


def test_status_query_timeout(make):
    """A single status query that hangs is QmasterStatusTimeoutError."""
    driver, fake = make()
    fake.statuses = ["hang"]
    submission = driver.call("submit", JOBS)
    with pytest.raises(QmasterStatusTimeoutError):
        driver.call("status", submission.ref)


def test_batch_timeout_bounds_the_wait_and_cancels_the_batch(make):
    """The batch timeout ends the wait, cancels the batch, and keeps close to its bound."""
    driver, fake = make()
    fake.statuses = ["Processing"] * 1000
    submission = driver.call("submit", JOBS)
    start = driver.now()
    with pytest.raises(QmasterBatchTimeoutError, match="within 22 s") as caught:
        driver.call("wait", submission.ref, timeout=22)
    assert isinstance(caught.value, QmasterJobFailed)
    assert caught.value.status == "Processing"
    assert driver.now() - start <= 22 + SETTINGS.status_timeout
    assert fake.batches[submission.batch_id].state == "Cancelled"


def test_batch_timeout_caps_status_queries(make):
    """A hung status query never runs past the batch deadline."""
    driver, fake = make(SETTINGS.replace(cancel_on_timeout=False))
    fake.statuses = ["hang"] * 100
    submission = driver.call("submit", JOBS)
    start = driver.now()
    with pytest.raises(QmasterBatchTimeoutError):
        driver.call("wait", submission.ref, timeout=4)
    assert driver.now() - start == pytest.approx(4)


def test_batch_timeout_covers_the_submission(make):
    """submit_and_wait: a submission hung past the batch timeout is a batch timeout."""
    driver, fake = make()
    fake.submit_answers = ["hang"]
    with pytest.raises(QmasterBatchTimeoutError, match="while submitting"):
        driver.call("submit_and_wait", JOBS, timeout=12)
    assert driver.now() == pytest.approx(12)


def test_submit_and_wait(make):
    """submit_and_wait gives the submission to on_submitted, then the final status."""
    driver, fake = make()
    submitted = []
    submission, final = driver.call("submit_and_wait", JOBS, on_submitted=submitted.append)
    assert submitted == [submission] and final.successful


def test_a_broken_progress_callback_does_not_end_the_wait(make):
    """An exception in on_progress is logged and the wait goes on."""
    driver, fake = make()
    submission = driver.call("submit", JOBS)

    def broken(status):
        raise RuntimeError("oops")

    assert driver.call("wait", submission.ref, on_progress=broken).successful
    assert any("progress callback failed" in m for _, m in driver.logs)


def test_cancel(make):
    """cancel() asks Batch Monitor; the next wait sees Cancelled."""
    driver, fake = make()
    submission = driver.call("submit", JOBS)
    assert driver.call("cancel", submission.ref) is True
    assert fake.calls[-1][-1] == "-cancel"
    with pytest.raises(QmasterJobCancelled):
        driver.call("wait", submission.ref)
    fake.cancel_exit_code = 1
    assert driver.call("cancel", BatchRef("This Computer", submission.batch_id)) is False


def test_cancelling_the_wait_deferred_stops_everything():
    """Cancelling a Twisted wait stops the polling and leaves no timer behind."""
    fake = FakeQmaster(SETTINGS)
    fake.statuses = ["Processing"] * 10 + ["hang"]
    driver = TwistedDriver(SETTINGS, fake)
    submission = driver.call("submit", JOBS)
    d = driver.client.wait(submission.ref)
    driver.clock.advance(SETTINGS.poll_interval * 3)
    calls = len(fake.calls)
    d.cancel()
    failures: list[Failure] = []
    d.addErrback(failures.append)
    assert failures and failures[0].check(defer.CancelledError)
    driver.clock.advance(1000)
    assert len(fake.calls) == calls
    assert driver.clock.getDelayedCalls() == []
    hung = driver.client.wait(submission.ref)
    driver.clock.advance(SETTINGS.poll_interval * 20)
    hung.cancel()
    hung.addErrback(lambda f: f.trap(defer.CancelledError))
    assert driver.clock.getDelayedCalls() == []


def test_nothing_runs_synchronously_in_twisted_submit():
    """Bad input errbacks the Deferred instead of raising from submit()."""
    clock = Clock()
    client = QmasterClient(SETTINGS.replace(check_paths=True), clock, runner=lambda a, t: None)
    d = client.submit([BatchJob("/no/such/file.mov", "/s", "/out/x.mov")])
    failures: list[Failure] = []
    d.addErrback(failures.append)
    assert failures and "does not exist" in str(failures[0].value)
