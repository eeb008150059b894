"""Running an external program (ffmpeg, a post-process command) as an argv list.

Each program runs in its own process group (started through ``setsid``) at the job's
nice level, so a timeout or a cancel kills the program *and* everything it started.
Standard output can be parsed as ffmpeg ``-progress`` blocks; the head of standard
error is kept for ffmpeg's description of its input (``media.dump``), its tail for the
report.
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from twisted.internet import defer, error, protocol
from twisted.logger import Logger
from twisted.python.failure import Failure

from ..media.progress import Progress, ProgressParser
from ..reactors import IFarmReactor

TAIL_BYTES = 4096
#: How much of the beginning of standard error is kept: ffmpeg describes its input there,
#: metadata first (a file's tags, such as an MP3's lyrics, can take hundreds of lines).
HEAD_BYTES = 1 << 20
_SETSID = shutil.which("setsid")
#: Looked up once (a PATH walk per program would cost a stat per folder).
_NICE = shutil.which("nice")
log = Logger()
_PY_SETSID = "import os, sys; os.setsid(); os.execvp(sys.argv[1], sys.argv[1:])"


@dataclass(frozen=True)
class ProcessResult:
    """How a program ended."""

    argv: list[str]
    exit_code: int | None
    signal: int | None
    stderr_tail: str
    timed_out: bool
    cancelled: bool
    elapsed: float
    #: CPU seconds (user + system) the program used, from its own rusage; None if unknown.
    cpu_time: float | None = None
    #: The first HEAD_BYTES of standard error.
    stderr_head: bytes = b""

    @property
    def ok(self) -> bool:
        """True when it exited 0 on its own."""
        return self.exit_code == 0 and not self.timed_out and not self.cancelled


def group_argv(argv: Sequence[str], nice: int = 0) -> list[str]:
    """The argv that runs ``argv`` in a new session (and process group) at ``nice``."""
    inner = list(argv)
    if nice and _NICE:
        inner = [_NICE, "-n", str(nice), *inner]
    if _SETSID:
        return [_SETSID, *inner]
    return [sys.executable, "-c", _PY_SETSID, *inner]


class _GroupProcess(protocol.ProcessProtocol):
    log = Logger()

    def __init__(
        self,
        argv: list[str],
        on_progress: Callable[[Progress], Any] | None,
        clock: Any,
    ) -> None:
        self.argv = argv
        self.on_progress = on_progress
        self.clock = clock
        self.parser = ProgressParser() if on_progress else None
        self.stderr = bytearray()
        self.head = bytearray()
        self.started = clock.seconds()
        self.finished: defer.Deferred[ProcessResult] = defer.Deferred()
        self.timed_out = False
        self.cancelled = False
        self.pid: int | None = None
        self.cpu_time: float | None = None

    def connectionMade(self) -> None:  # noqa: N802 (Twisted API)
        transport: Any = self.transport
        self.pid = transport.pid
        transport.closeStdin()

    def outReceived(self, data: bytes) -> None:  # noqa: N802
        if self.parser is None or self.on_progress is None:
            return
        for progress in self.parser.feed(data):
            try:
                self.on_progress(progress)
            except Exception:
                self.log.failure("progress callback failed")

    def errReceived(self, data: bytes) -> None:  # noqa: N802
        if len(self.head) < HEAD_BYTES:
            self.head += data[: HEAD_BYTES - len(self.head)]
        self.stderr += data
        if len(self.stderr) > TAIL_BYTES * 2:
            del self.stderr[: len(self.stderr) - TAIL_BYTES]

    def kill_group(self) -> None:
        """SIGKILL the whole process group (the program and its children)."""
        if self.pid is None:
            return
        try:
            os.killpg(self.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass

    def processEnded(self, reason: Failure) -> None:  # noqa: N802
        # The leader is gone; make sure nothing it started lives on.
        self.kill_group()
        exit_code: int | None = None
        sig: int | None = None
        value = reason.value
        if isinstance(value, error.ProcessDone):
            exit_code = 0
        elif isinstance(value, error.ProcessTerminated):
            exit_code = value.exitCode
            sig = value.signal
        tail = bytes(self.stderr[-TAIL_BYTES:]).decode("utf-8", "replace").strip()
        self.finished.callback(
            ProcessResult(
                argv=self.argv,
                exit_code=exit_code,
                signal=sig,
                stderr_tail=tail,
                timed_out=self.timed_out,
                cancelled=self.cancelled,
                elapsed=self.clock.seconds() - self.started,
                cpu_time=self.cpu_time,
                stderr_head=bytes(self.head),
            )
        )


class RunningProcess:
    """A started program: wait for ``result``, or ``cancel()`` it."""

    def __init__(self, proto: _GroupProcess, timeout_call: Any) -> None:
        self._proto = proto
        self._timeout_call = timeout_call
        self.result = proto.finished

    @property
    def stderr_head(self) -> bytes:
        """The beginning of the program's standard error so far."""
        return bytes(self._proto.head)

    @property
    def pid(self) -> int | None:
        """The process id (also the process group id)."""
        return self._proto.pid

    def cancel(self) -> None:
        """Kill the program's whole process group; ``result`` fires with cancelled=True."""
        self._proto.cancelled = True
        self._proto.kill_group()


def _reap_with_rusage(transport: Any, proto: _GroupProcess) -> None:
    """Reap the program with ``wait4`` so that its own CPU time is known.

    Twisted reaps with ``waitpid``, which drops the child's resource usage, and
    ``RUSAGE_CHILDREN`` mixes every job's programs when a worker runs several jobs.
    This replaces the transport's ``reapProcess`` with the same steps around ``wait4``.
    The program's pid is ffmpeg's own: ``setsid`` and ``nice`` exec in place.
    """
    from twisted.internet.process import unregisterReapProcessHandler

    if not hasattr(transport, "reapProcess") or not hasattr(os, "wait4"):
        return  # not a POSIX process transport: CPU time stays unknown

    def reap() -> None:
        try:
            pid, status, usage = os.wait4(transport.pid, os.WNOHANG)
        except ChildProcessError:
            pid = 0
        except OSError:
            log.failure("failed to reap process {pid}", pid=transport.pid)
            pid = 0
        if pid:
            proto.cpu_time = usage.ru_utime + usage.ru_stime
            unregisterReapProcessHandler(pid, transport)
            transport.processEnded(status)

    transport.reapProcess = reap


def spawn(
    reactor: IFarmReactor,
    argv: Sequence[str],
    *,
    timeout: float | None = None,
    nice: int = 0,
    on_progress: Callable[[Progress], Any] | None = None,
    env: dict[str, str] | None = None,
    path: str | None = None,
) -> RunningProcess:
    """Start ``argv`` (a list, never a shell string) in its own process group."""
    argv = [str(a) for a in argv]
    proto = _GroupProcess(argv, on_progress, reactor)
    full = group_argv(argv, nice)
    environment = dict(os.environ if env is None else env)
    transport = reactor.spawnProcess(proto, full[0], full, env=environment, path=path)
    _reap_with_rusage(transport, proto)
    timeout_call = None
    if timeout is not None:

        def expire() -> None:
            proto.timed_out = True
            proto.kill_group()

        timeout_call = reactor.callLater(timeout, expire)

        def cancel_timer(result: ProcessResult) -> ProcessResult:
            if timeout_call.active():
                timeout_call.cancel()
            return result

        proto.finished.addBoth(cancel_timer)
    return RunningProcess(proto, timeout_call)
