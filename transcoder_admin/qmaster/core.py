"""What the Qmaster client does, written once and without doing any I/O itself.

Each operation is a generator that yields steps, :class:`Run` (a command and its
timeout) or :class:`Sleep`, and receives the :class:`CommandResult` of each Run. Two
drivers execute the steps: the Twisted client (``client.py``, processes on the reactor)
and the blocking one (``blocking.py``, for scripts). The fallback rule, the timeouts and
the polling rules therefore exist in one place whichever way the module is used.

Times come from ``now`` (the reactor's clock, or ``time.monotonic``) so that tests can
drive them.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from .commands import cancel_argv, check_job, check_tool, status_argv, submit_argv
from .errors import (
    QmasterBatchTimeoutError,
    QmasterClusterNotFound,
    QmasterCommandNotFound,
    QmasterJobCancelled,
    QmasterJobFailed,
    QmasterStatusError,
    QmasterSubmissionTimeoutError,
)
from .model import (
    CANCELLED,
    FAILED,
    SUCCESSFUL,
    BatchJob,
    BatchRef,
    BatchStatus,
    CommandResult,
    Submission,
)
from .parser import parse_status_result, parse_submission
from .settings import QmasterSettings

T = TypeVar("T")

# Log levels are the seed's: debug, normal, warning, error.
Log = Callable[[str, str], None]
Progress = Callable[[BatchStatus], Any]


@dataclass(frozen=True)
class Run:
    """Run ``argv`` (no shell) in its own process group; kill the group after ``timeout``."""

    argv: tuple[str, ...]
    timeout: float
    what: str


@dataclass(frozen=True)
class Sleep:
    """Wait ``seconds`` before the next step."""

    seconds: float


Step = Run | Sleep
Steps = Generator[Step, Any, T]


def _quiet(level: str, message: str) -> None:
    """A log sink that drops everything."""


def _run(argv: Sequence[str], timeout: float, what: str) -> Steps[CommandResult]:
    result = yield Run(tuple(argv), timeout, what)
    if not isinstance(result, CommandResult):
        raise TypeError(f"the driver answered {result!r} to a Run step")
    return result


def _remaining(deadline: float | None, now: Callable[[], float]) -> float | None:
    return None if deadline is None else deadline - now()


def submit(
    settings: QmasterSettings,
    jobs: Sequence[BatchJob],
    *,
    batch_name: str = "",
    cluster: str | None = None,
    priority: str | int | None = None,
    log: Log = _quiet,
    now: Callable[[], float] | None = None,
    deadline: float | None = None,
) -> Steps[Submission]:
    """Submit one batch; on an unknown cluster, once more to the local cluster if allowed.

    Each attempt has its own submission timeout (capped by ``deadline``, the overall
    batch deadline, when given); the fallback is logged, so a doubled wait never goes
    unexplained. Raises the typed errors of ``errors.py``.
    """
    if not jobs:
        raise ValueError("a batch needs at least one job")
    checked = tuple(check_job(settings, job) for job in jobs)
    check_tool(settings, settings.compressor, "Compressor", "compressor")
    requested = cluster or settings.cluster or settings.local_cluster
    prio = str(priority) if priority not in (None, "") else settings.priority
    name = batch_name or _default_batch_name(checked)
    clusters = [requested]
    if settings.fallback_to_local and requested != settings.local_cluster:
        clusters.append(settings.local_cluster)
    for attempt, target in enumerate(clusters):
        limit = settings.submission_timeout
        remaining = _remaining(deadline, now) if now is not None else None
        if remaining is not None:
            if remaining <= 0:
                raise QmasterBatchTimeoutError("the batch timeout ran out before submission")
            limit = min(limit, remaining)
        argv = submit_argv(settings, target, name, prio, checked)
        log("debug", f"submitting batch {name!r} to cluster {target!r}")
        result = yield from _run(argv, limit, "submission")
        if result.timed_out:
            if limit < settings.submission_timeout:
                raise QmasterBatchTimeoutError(
                    f"the batch timeout ran out while submitting to cluster {target!r}; "
                    "Compressor was killed"
                )
            raise QmasterSubmissionTimeoutError(
                f"Compressor did not answer within {settings.submission_timeout:g} s "
                f"(cluster {target!r}); it was killed",
                text=result.tail(),
            )
        try:
            batch_id, job_ids = parse_submission(result, target)
        except QmasterClusterNotFound:
            if attempt + 1 < len(clusters):
                log(
                    "warning",
                    f"cluster {target!r} not found; submitting again to "
                    f"{settings.local_cluster!r} (a second submission, up to "
                    f"{settings.submission_timeout:g} s more)",
                )
                continue
            raise
        submission = Submission(
            batch_id=batch_id,
            job_ids=job_ids,
            cluster=target,
            requested_cluster=requested,
            batch_name=name,
            priority=prio,
            jobs=checked,
            argv=tuple(argv),
        )
        log("normal", f"batch {batch_id} ({name!r}) submitted to cluster {target!r}")
        return submission
    raise AssertionError("unreachable: the last attempt returns or raises")


def _default_batch_name(jobs: Sequence[BatchJob]) -> str:
    return f"transcoder-admin {os.path.basename(jobs[0].source.rstrip('/'))}"


def status(settings: QmasterSettings, ref: BatchRef, *, log: Log = _quiet) -> Steps[BatchStatus]:
    """Ask Batch Monitor once; QmasterStatusError (or its timeout) when it cannot tell."""
    check_tool(settings, settings.batch_monitor, "Batch Monitor", "batch-monitor")
    argv = status_argv(settings, ref.cluster, ref.batch_id)
    result = yield from _run(argv, settings.status_timeout, "status query")
    batch_status = parse_status_result(result)
    log("debug", f"batch {ref.batch_id}: {batch_status.text}")
    return batch_status


def wait(
    settings: QmasterSettings,
    ref: BatchRef,
    *,
    now: Callable[[], float],
    timeout: float | None = None,
    on_progress: Progress | None = None,
    log: Log = _quiet,
) -> Steps[BatchStatus]:
    """Poll until the batch ends: its Successful status, or QmasterJobCancelled/Failed.

    A status query that fails, times out or prints something unreadable is retried;
    when no readable status came for ``settings.status_grace`` seconds the batch is
    failed with the last text seen. ``timeout`` (default ``settings.batch_timeout``)
    bounds the whole wait: then QmasterBatchTimeoutError, after a best-effort cancel
    when ``settings.cancel_on_timeout``.
    """
    check_tool(settings, settings.batch_monitor, "Batch Monitor", "batch-monitor")
    timeout = settings.batch_timeout if timeout is None else timeout
    deadline = None if timeout is None else now() + timeout
    return (yield from _poll(settings, ref, now, deadline, timeout, on_progress, log))


def _poll(
    settings: QmasterSettings,
    ref: BatchRef,
    now: Callable[[], float],
    deadline: float | None,
    timeout: float | None,
    on_progress: Progress | None,
    log: Log,
) -> Steps[BatchStatus]:
    unreadable_since: float | None = None
    last_text = ""
    while True:
        remaining = _remaining(deadline, now)
        if remaining is not None and remaining <= 0:
            yield from _give_up(settings, ref, timeout, last_text, log)
        limit = (
            settings.status_timeout
            if remaining is None
            else min(settings.status_timeout, remaining)
        )
        argv = status_argv(settings, ref.cluster, ref.batch_id)
        result = yield from _run(argv, limit, "status query")
        try:
            current = parse_status_result(result)
            if not current.known:
                raise QmasterStatusError(f"unknown status {current.text!r}", text=current.text)
        except QmasterStatusError as e:
            last_text = e.text.strip()[-300:] or str(e)
            if unreadable_since is None:
                unreadable_since = now()
            unreadable_for = now() - unreadable_since
            if unreadable_for >= settings.status_grace:
                message = (
                    f"batch {ref.batch_id}: no readable status for {unreadable_for:.0f} s "
                    f"(last: {e})"
                )
                raise QmasterJobFailed(message, status=last_text, batch_id=ref.batch_id) from e
            log("warning", f"batch {ref.batch_id}: {e}; asking again")
        else:
            unreadable_since = None
            last_text = current.text
            _report(on_progress, current, log)
            if current.state == SUCCESSFUL:
                log("normal", f"batch {ref.batch_id} successful")
                return current
            if current.state == CANCELLED:
                raise QmasterJobCancelled(
                    f"batch {ref.batch_id} was cancelled",
                    status=current.text,
                    batch_id=ref.batch_id,
                )
            if current.state == FAILED:
                raise QmasterJobFailed(
                    f"batch {ref.batch_id} failed: status {current.text!r}",
                    status=current.text,
                    batch_id=ref.batch_id,
                )
        pause = settings.poll_interval
        remaining = _remaining(deadline, now)
        if remaining is not None:
            pause = max(0.0, min(pause, remaining))
        yield Sleep(pause)


def _report(on_progress: Progress | None, current: BatchStatus, log: Log) -> None:
    if on_progress is None:
        return
    try:
        on_progress(current)
    except Exception as e:  # a broken progress callback must not end the wait
        log("warning", f"progress callback failed: {e!r}")


def _give_up(
    settings: QmasterSettings,
    ref: BatchRef,
    timeout: float | None,
    last_text: str,
    log: Log,
) -> Steps[None]:
    message = f"batch {ref.batch_id} did not end within {timeout:g} s (last status: " + (
        f"{last_text!r})" if last_text else "none)"
    )
    if settings.cancel_on_timeout:
        log("warning", f"{message}; cancelling it")
        yield from cancel(settings, ref, log=log)
    raise QmasterBatchTimeoutError(message, status=last_text, batch_id=ref.batch_id)


def cancel(settings: QmasterSettings, ref: BatchRef, *, log: Log = _quiet) -> Steps[bool]:
    """Ask Batch Monitor to cancel the batch; True when it said nothing wrong (best effort)."""
    try:
        check_tool(settings, settings.batch_monitor, "Batch Monitor", "batch-monitor")
    except QmasterCommandNotFound as e:
        log("warning", f"batch {ref.batch_id}: cannot cancel: {e}")
        return False
    argv = cancel_argv(settings, ref.cluster, ref.batch_id)
    result = yield from _run(argv, settings.status_timeout, "cancel")
    if result.exit_code == 0 and not result.timed_out:
        log("normal", f"batch {ref.batch_id}: cancel requested")
        return True
    log(
        "warning", f"batch {ref.batch_id}: cancel failed ({result.how_it_ended()}): {result.tail()}"
    )
    return False


def submit_and_wait(
    settings: QmasterSettings,
    jobs: Sequence[BatchJob],
    *,
    now: Callable[[], float],
    batch_name: str = "",
    cluster: str | None = None,
    priority: str | int | None = None,
    timeout: float | None = None,
    on_submitted: Callable[[Submission], Any] | None = None,
    on_progress: Progress | None = None,
    log: Log = _quiet,
) -> Steps[tuple[Submission, BatchStatus]]:
    """Submit, then wait; ``timeout`` (default ``settings.batch_timeout``) bounds both."""
    check_tool(settings, settings.batch_monitor, "Batch Monitor", "batch-monitor")
    timeout = settings.batch_timeout if timeout is None else timeout
    deadline = None if timeout is None else now() + timeout
    submission = yield from submit(
        settings,
        jobs,
        batch_name=batch_name,
        cluster=cluster,
        priority=priority,
        log=log,
        now=now,
        deadline=deadline,
    )
    if on_submitted is not None:
        on_submitted(submission)
    final = yield from _poll(settings, submission.ref, now, deadline, timeout, on_progress, log)
    return submission, final


__all__ = [
    "Log",
    "Run",
    "Sleep",
    "Step",
    "Steps",
    "cancel",
    "status",
    "submit",
    "submit_and_wait",
    "wait",
]
