"""The blocking driver: the steps of ``core.py`` run with ``subprocess`` and ``time.sleep``.

This is what scripts (``QmasterBatch``) and the ``transcoder-admin qmaster`` command
use: no reactor, no thread, no signal handler, no SIGALRM. Each command starts a new
session (``start_new_session``), so a timeout kills its whole process group.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TypeVar

from . import core
from .groups import kill_group
from .model import BatchJob, BatchRef, BatchStatus, CommandResult, Submission
from .settings import QmasterSettings

T = TypeVar("T")
Runner = Callable[[Sequence[str], float], CommandResult]
DRAIN_SECONDS = 5.0


def _text(data: bytes | None, limit: int) -> str:
    return (data or b"")[-limit:].decode("utf-8", "replace")


def run_command(
    argv: Sequence[str],
    timeout: float,
    *,
    env: Mapping[str, str] | None = None,
    max_output: int = 256 * 1024,
) -> CommandResult:
    """Run ``argv`` as the leader of a new process group; kill the group after ``timeout``."""
    args = [str(a) for a in argv]
    started = time.monotonic()
    try:
        proc = subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
            env=None if env is None else dict(env),
        )
    except OSError as e:
        return CommandResult(tuple(args), "", f"cannot run {args[0]!r}: {e}", 127)
    timed_out = False
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        timed_out = True
        kill_group(proc.pid)
        out, err = _drain(proc)
    except BaseException:
        # KeyboardInterrupt and the like: leave nothing running behind us.
        kill_group(proc.pid)
        proc.kill()
        proc.wait()
        raise
    finally:
        kill_group(proc.pid)  # whatever the leader left behind
    code = proc.returncode
    return CommandResult(
        argv=tuple(args),
        stdout=_text(out, max_output),
        stderr=_text(err, max_output),
        exit_code=code if code is not None and code >= 0 else None,
        signal=-code if code is not None and code < 0 else None,
        timed_out=timed_out,
        elapsed=time.monotonic() - started,
    )


def _drain(proc: subprocess.Popen[bytes]) -> tuple[bytes, bytes]:
    try:
        return proc.communicate(timeout=DRAIN_SECONDS)
    except subprocess.TimeoutExpired:
        # A descendant that left the group still holds the pipes: stop reading.
        for pipe in (proc.stdout, proc.stderr):
            if pipe is not None:
                pipe.close()
        proc.wait()
        return b"", b""


def drive(
    steps: core.Steps[T],
    runner: Runner,
    sleep: Callable[[float], object] = time.sleep,
) -> T:
    """Execute ``steps`` to the end and return their value (or raise their error)."""
    try:
        step = next(steps)
        while True:
            if isinstance(step, core.Run):
                value: CommandResult | None = runner(step.argv, step.timeout)
            else:
                sleep(step.seconds)
                value = None
            step = steps.send(value)
    except StopIteration as stop:
        return stop.value  # type: ignore[no-any-return]
    finally:
        steps.close()


class BlockingClient:
    """The Qmaster client for code without a reactor: every call blocks until it is done.

    ``log(level, message)`` receives what the client has to say (levels: debug,
    normal, warning, error); ``env`` is the environment of the commands (default: ours).
    """

    def __init__(
        self,
        settings: QmasterSettings,
        *,
        log: core.Log | None = None,
        env: Mapping[str, str] | None = None,
        runner: Runner | None = None,
        sleep: Callable[[float], object] = time.sleep,
        now: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self._log: core.Log = log or (lambda level, message: None)
        self._runner: Runner = runner or (
            lambda argv, timeout: run_command(
                argv, timeout, env=env, max_output=settings.max_output
            )
        )
        self._sleep = sleep
        self._now = now

    def _drive(self, steps: core.Steps[T]) -> T:
        return drive(steps, self._runner, self._sleep)

    def submit(
        self,
        jobs: Sequence[BatchJob],
        *,
        batch_name: str = "",
        cluster: str | None = None,
        priority: str | int | None = None,
    ) -> Submission:
        """Submit one batch (see core.submit); its Submission."""
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

    def status(self, ref: BatchRef) -> BatchStatus:
        """Ask Batch Monitor once."""
        return self._drive(core.status(self.settings, ref, log=self._log))

    def wait(
        self,
        ref: BatchRef,
        timeout: float | None = None,
        on_progress: core.Progress | None = None,
    ) -> BatchStatus:
        """Poll until the batch ends (see core.wait)."""
        return self._drive(
            core.wait(
                self.settings,
                ref,
                now=self._now,
                timeout=timeout,
                on_progress=on_progress,
                log=self._log,
            )
        )

    def cancel(self, ref: BatchRef) -> bool:
        """Ask Batch Monitor to cancel the batch (best effort)."""
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
    ) -> tuple[Submission, BatchStatus]:
        """Submit, then wait; ``timeout`` bounds both (see core.submit_and_wait)."""
        return self._drive(
            core.submit_and_wait(
                self.settings,
                jobs,
                now=self._now,
                batch_name=batch_name,
                cluster=cluster,
                priority=priority,
                timeout=timeout,
                on_submitted=on_submitted,
                on_progress=on_progress,
                log=self._log,
            )
        )


__all__ = ["BlockingClient", "drive", "run_command"]
