"""The Twisted runner: one command as the leader of a new process group, on the reactor.

``run_command`` returns a Deferred that fires with the CommandResult. After the timeout
the whole group is killed (SIGKILL) and the result says ``timed_out``; cancelling the
Deferred kills the group too. Nothing blocks the reactor.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Mapping, Sequence
from typing import Any

from twisted.internet import defer, error, protocol
from twisted.python.failure import Failure

from ..reactors import IFarmReactor
from .groups import kill_group
from .model import CommandResult

# A program whose descendants left its group may hold the pipes open after the kill.
FORCE_END_SECONDS = 5.0
_TRAMPOLINE = "import os, sys; os.setsid(); os.execvp(sys.argv[1], sys.argv[1:])"


def session_argv(argv: Sequence[str]) -> list[str]:
    """``argv`` started in a new session (and process group), by ``setsid`` or Python."""
    setsid = shutil.which("setsid")
    if setsid:
        return [setsid, *argv]
    return [sys.executable, "-c", _TRAMPOLINE, *argv]


def _append(buffer: bytearray, data: bytes, limit: int) -> None:
    buffer += data
    if len(buffer) > limit * 2:
        del buffer[: len(buffer) - limit]


class _Collector(protocol.ProcessProtocol):
    """Keeps both streams and turns the end of the process into a CommandResult."""

    def __init__(self, argv: tuple[str, ...], clock: Any, limit: int) -> None:
        self.argv = argv
        self.clock = clock
        self.limit = limit
        self.stdout = bytearray()
        self.stderr = bytearray()
        self.started = clock.seconds()
        self.pid: int | None = None
        self.timed_out = False
        self.timers: list[Any] = []
        self.deferred: defer.Deferred[CommandResult] = defer.Deferred(self._cancelled)

    def connectionMade(self) -> None:  # noqa: N802 (Twisted API)
        transport: Any = self.transport
        self.pid = transport.pid
        transport.closeStdin()

    def outReceived(self, data: bytes) -> None:  # noqa: N802
        _append(self.stdout, data, self.limit)

    def errReceived(self, data: bytes) -> None:  # noqa: N802
        _append(self.stderr, data, self.limit)

    def expire(self) -> None:
        """The timeout: kill the group; end anyway if the pipes stay open."""
        self.timed_out = True
        kill_group(self.pid)
        self.timers.append(self.clock.callLater(FORCE_END_SECONDS, self._force_end))

    def _force_end(self) -> None:
        transport: Any = self.transport
        if transport is not None:
            transport.loseConnection()
        self._finish(None, None)

    def _cancelled(self, _: defer.Deferred[CommandResult]) -> None:
        kill_group(self.pid)
        self._stop_timers()

    def _stop_timers(self) -> None:
        for timer in self.timers:
            if timer.active():
                timer.cancel()
        self.timers.clear()

    def processEnded(self, reason: Failure) -> None:  # noqa: N802
        kill_group(self.pid)  # the leader is gone: so is anything it left behind
        value = reason.value
        if isinstance(value, error.ProcessDone):
            self._finish(0, None)
        elif isinstance(value, error.ProcessTerminated):
            self._finish(value.exitCode, value.signal)
        else:
            self._finish(None, None)

    def _finish(self, exit_code: int | None, sig: int | None) -> None:
        self._stop_timers()
        if self.deferred.called:
            return
        limit = self.limit
        self.deferred.callback(
            CommandResult(
                argv=self.argv,
                stdout=bytes(self.stdout[-limit:]).decode("utf-8", "replace"),
                stderr=bytes(self.stderr[-limit:]).decode("utf-8", "replace"),
                exit_code=exit_code,
                signal=sig,
                timed_out=self.timed_out,
                elapsed=self.clock.seconds() - self.started,
            )
        )


def run_command(
    reactor: IFarmReactor,
    argv: Sequence[str],
    timeout: float,
    *,
    env: Mapping[str, str] | None = None,
    max_output: int = 256 * 1024,
) -> defer.Deferred[CommandResult]:
    """Start ``argv`` (no shell) in a new process group; fire with how it ended."""
    args = tuple(str(a) for a in argv)
    proto = _Collector(args, reactor, max_output)
    full = session_argv(args)
    environment = dict(os.environ if env is None else env)
    try:
        reactor.spawnProcess(proto, full[0], full, env=environment)
    except OSError as e:
        return defer.succeed(CommandResult(args, "", f"cannot run {args[0]!r}: {e}", 127))
    proto.timers.append(reactor.callLater(timeout, proto.expire))
    return proto.deferred


__all__ = ["run_command", "session_argv"]
