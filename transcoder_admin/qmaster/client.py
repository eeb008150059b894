"""The Twisted-native Qmaster client: submit, status, wait and cancel return Deferreds.

It runs the steps of ``core.py`` with processes on the reactor (``process.py``) and
``deferLater``; time comes from the reactor, so tests drive it with ``task.Clock`` and
a fake runner. Cancelling a Deferred it returned kills the command that is running
for it (its whole process group) and stops the polling; it does not cancel the batch
on the cluster: :meth:`QmasterClient.cancel` does that.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TypeVar

from twisted.internet import defer, task
from twisted.logger import Logger, LogLevel

from ..reactors import IFarmReactor, default_reactor
from . import core
from .model import BatchJob, BatchRef, BatchStatus, CommandResult, Submission
from .process import run_command
from .settings import QmasterSettings

T = TypeVar("T")
Runner = Callable[[Sequence[str], float], "defer.Deferred[CommandResult]"]
_LEVELS = {
    "debug": LogLevel.debug,
    "normal": LogLevel.info,
    "warning": LogLevel.warn,
    "error": LogLevel.error,
}


class QmasterClient:
    """Compressor batches from Twisted code.

    ``reactor`` provides IReactorProcess and IReactorTime (default: the global one);
    ``runner(argv, timeout)`` replaces the real processes in tests; ``env`` is the
    environment of the commands (default: ours); ``log_sink(level, message)`` also
    receives every log line (levels: debug, normal, warning, error).
    """

    log = Logger()

    def __init__(
        self,
        settings: QmasterSettings,
        reactor: IFarmReactor | None = None,
        *,
        env: Mapping[str, str] | None = None,
        runner: Runner | None = None,
        log_sink: core.Log | None = None,
    ) -> None:
        self.settings = settings
        self._reactor = reactor or default_reactor()
        self._env = env
        self._runner = runner
        self._log_sink = log_sink

    def _log(self, level: str, message: str) -> None:
        self.log.emit(_LEVELS.get(level, LogLevel.info), "{message}", message=message)
        if self._log_sink is not None:
            self._log_sink(level, message)

    def _run(self, argv: Sequence[str], timeout: float) -> defer.Deferred[CommandResult]:
        if self._runner is not None:
            return self._runner(argv, timeout)
        return run_command(
            self._reactor, argv, timeout, env=self._env, max_output=self.settings.max_output
        )

    def _drive(self, steps: core.Steps[T]) -> defer.Deferred[T]:
        return defer.Deferred.fromCoroutine(self._steps(steps))

    async def _steps(self, steps: core.Steps[T]) -> T:
        try:
            step = next(steps)
            while True:
                value: CommandResult | None = None
                if isinstance(step, core.Run):
                    value = await self._run(step.argv, step.timeout)
                else:
                    await task.deferLater(self._reactor, step.seconds, lambda: None)
                step = steps.send(value)
        except StopIteration as stop:
            return stop.value  # type: ignore[no-any-return]
        finally:
            steps.close()

    def submit(
        self,
        jobs: Sequence[BatchJob],
        *,
        batch_name: str = "",
        cluster: str | None = None,
        priority: str | int | None = None,
    ) -> defer.Deferred[Submission]:
        """Submit one batch of jobs (source, setting, destination); fires with its Submission.

        No cluster → ``settings.cluster``; an unknown cluster falls back once to
        "This Computer" when ``settings.fallback_to_local`` (``Submission.fell_back``).
        """
        return self._drive(
            core.submit(
                self.settings,
                jobs,
                batch_name=batch_name,
                cluster=cluster,
                priority=priority,
                log=self._log,
            )
        )

    def status(self, ref: BatchRef) -> defer.Deferred[BatchStatus]:
        """Ask Batch Monitor once; errbacks with QmasterStatusError when it cannot tell."""
        return self._drive(core.status(self.settings, ref, log=self._log))

    def wait(
        self,
        ref: BatchRef,
        timeout: float | None = None,
        on_progress: core.Progress | None = None,
    ) -> defer.Deferred[BatchStatus]:
        """Poll until the batch ends; fires with its Successful status.

        Errbacks with QmasterJobCancelled, QmasterJobFailed or (after ``timeout``,
        default ``settings.batch_timeout``) QmasterBatchTimeoutError. ``on_progress``
        gets every status read (``percent`` when Batch Monitor gives one).
        """
        return self._drive(
            core.wait(
                self.settings,
                ref,
                now=self._reactor.seconds,
                timeout=timeout,
                on_progress=on_progress,
                log=self._log,
            )
        )

    def cancel(self, ref: BatchRef) -> defer.Deferred[bool]:
        """Ask Batch Monitor to cancel the batch; True when it did not complain."""
        return self._drive(core.cancel(self.settings, ref, log=self._log))

    def submit_and_wait(
        self,
        jobs: Sequence[BatchJob],
        *,
        batch_name: str = "",
        cluster: str | None = None,
        priority: str | int | None = None,
        timeout: float | None = None,
        on_submitted: Callable[[Submission], object] | None = None,
        on_progress: core.Progress | None = None,
    ) -> defer.Deferred[tuple[Submission, BatchStatus]]:
        """Submit and wait, ``timeout`` bounding both; fires with (Submission, final status)."""
        return self._drive(
            core.submit_and_wait(
                self.settings,
                jobs,
                now=self._reactor.seconds,
                batch_name=batch_name,
                cluster=cluster,
                priority=priority,
                timeout=timeout,
                on_submitted=on_submitted,
                on_progress=on_progress,
                log=self._log,
            )
        )


__all__ = ["QmasterClient"]
