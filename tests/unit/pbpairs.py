"""In-memory doubles for the distributed farm's unit tests: no sockets, no threads.

A :class:`FakeReactor` is a ``MemoryReactorClock`` whose thread pool runs calls on the
test's thread (or holds them until the test releases them); a :class:`Network` joins
the outgoing TCP connections a ``PBLink`` asks the reactor for to a real PB server
factory through ``twisted.test.iosim`` pumps, and runs the clock and the pumps in step.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from typing import Any

from twisted.internet import defer, error
from twisted.internet.address import IPv4Address
from twisted.internet.testing import MemoryReactorClock
from twisted.python.failure import Failure
from twisted.test import iosim

from transcoder_admin.records import JobSpec

#: The address a worker seems to connect from (what refused logins are logged with).
PEER = IPv4Address("TCP", "192.0.2.7", 50123)
#: The manager's endpoint string; the memory reactor records the connection attempt.
MANAGER = "tcp:host=127.0.0.1:port=7632"


class RecordingManager:
    """The manager as a WorkerSet calls it, without PB: records every call to a worker."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, tuple[Any, ...]]] = []

    def call_worker(self, name: str, method: str, *args: Any) -> defer.Deferred[Any]:
        self.calls.append((name, method, args))
        return defer.succeed(True)

    def drop_worker(self, name: str) -> None:
        pass


class HeldPool:
    """A thread pool that runs each call on the caller's thread, or holds it if paused."""

    def __init__(self) -> None:
        self.paused = False
        self.held: list[tuple[Callable[..., Any], Callable[..., Any], tuple, dict]] = []

    def callInThreadWithCallback(self, on_result, f, *args, **kwargs):  # noqa: N802
        """Run ``f`` now (or when resumed) and report like twisted's ThreadPool."""
        if self.paused:
            self.held.append((on_result, f, args, kwargs))
            return
        try:
            result = f(*args, **kwargs)
        except Exception:
            on_result(False, Failure())
        else:
            on_result(True, result)

    def resume(self) -> None:
        """Run every held call, in order, and stop holding."""
        self.paused = False
        held, self.held = self.held, []
        for on_result, f, args, kwargs in held:
            self.callInThreadWithCallback(on_result, f, *args, **kwargs)


class FakeReactor(MemoryReactorClock):
    """Clock, TCP connection recorder and a thread pool on the test's thread."""

    def __init__(self) -> None:
        super().__init__()
        self.pool = HeldPool()

    def getThreadPool(self):  # noqa: N802
        """The pool on the test's thread."""
        return self.pool

    def callFromThread(self, f, *args, **kwargs):  # noqa: N802
        """Everything already runs on the test's thread."""
        f(*args, **kwargs)

    def spawnProcess(  # noqa: N802 (IReactorProcess)
        self, protocol, executable, args=(), env=None, path=None, **_kwargs
    ):
        """Run the real program to its end at once, then hand its protocol what Twisted's
        process transport would: the connection, its output by file descriptor, its end
        (ProcessDone on exit 0, ProcessTerminated otherwise)."""
        program = subprocess.Popen(
            list(args),
            executable=executable,
            env=env,
            cwd=path,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        out, err = program.communicate(timeout=120)
        transport = _EndedProcess(program.pid)
        protocol.makeConnection(transport)
        for fd, data in ((1, out), (2, err)):
            if data:
                protocol.childDataReceived(fd, data)
        code = program.returncode
        if code == 0:
            reason = Failure(error.ProcessDone(0))
        elif code < 0:
            reason = Failure(error.ProcessTerminated(signal=-code))
        else:
            reason = Failure(error.ProcessTerminated(exitCode=code))
        protocol.processExited(reason)
        protocol.processEnded(reason)
        return transport


class _EndedProcess:
    """The process transport of a program that has already ended."""

    def __init__(self, pid: int) -> None:
        self.pid = pid

    def closeStdin(self) -> None:  # noqa: N802
        """Its input was closed when it started."""

    def signalProcess(self, signal: Any) -> None:  # noqa: N802
        """It has ended: as Twisted says of a process no longer there."""
        raise error.ProcessExitedAlready()


class Network:
    """PB connections between a reactor's clients and one server factory, pumped in step."""

    def __init__(self, reactor: FakeReactor, server_factory: Any) -> None:
        self.reactor = reactor
        self.server_factory = server_factory
        self.pumps: list[iosim.IOPump] = []
        self.frozen: set[int] = set()

    def accept(self, peer: IPv4Address = PEER) -> iosim.IOPump:
        """Join the oldest pending outgoing connection to the server; returns its pump."""
        assert self.reactor.tcpClients, "nobody is connecting"
        host, port, factory, _timeout, _bind = self.reactor.tcpClients.pop(0)
        server_address = IPv4Address("TCP", host, port)
        _client, _server, pump = iosim.connectedServerAndClient(
            lambda: self.server_factory.buildProtocol(peer),
            lambda: factory.buildProtocol(server_address),
            clientTransportFactory=lambda p: iosim.FakeTransport(
                p, isServer=False, hostAddress=peer, peerAddress=server_address
            ),
            serverTransportFactory=lambda p: iosim.FakeTransport(
                p, isServer=True, hostAddress=server_address, peerAddress=peer
            ),
            greet=False,
            clock=self.reactor,
        )
        self.pumps.append(pump)
        self.flush()
        return pump

    def freeze(self, pump: iosim.IOPump) -> None:
        """Stop moving this connection's bytes (a SIGSTOPped peer, a dead cable)."""
        self.frozen.add(id(pump))

    def thaw(self, pump: iosim.IOPump) -> None:
        """Move this connection's bytes again."""
        self.frozen.discard(id(pump))

    def cut(self, pump: iosim.IOPump) -> None:
        """Break a connection: bytes in flight are lost and both ends see it close."""
        pump.serverIO.getOutBuffer()
        pump.clientIO.getOutBuffer()
        pump.serverIO.loseConnection()
        pump.clientIO.loseConnection()
        self.thaw(pump)
        self.flush()

    def flush(self) -> None:
        """Move bytes on every connection that is not frozen until all are quiet."""
        for _ in range(1000):
            moved = False
            for pump in list(self.pumps):
                if id(pump) not in self.frozen:
                    moved = pump.flush() or moved
            if not moved:
                return
        raise AssertionError("the connections never went quiet")

    def run(self, seconds: float, step: float = 0.5) -> None:
        """Advance the clock by ``seconds`` in small steps, moving bytes after each."""
        self.flush()
        steps = round(seconds / step)
        for _ in range(steps):
            self.reactor.advance(step)
            self.flush()


def write_source(root: str, relpath: str = "in/clip.mov") -> str:
    """A source file that is not media (its job ends at once with a source failure)."""
    path = os.path.join(root, relpath)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write("this is not a video\n" * 20)
    return path


def job_spec(job_id: str, attempt: int, relpath: str = "in/clip.mov", **extra: Any) -> JobSpec:
    """A job configuration of the kind the admin sends (basic types only)."""
    name = os.path.basename(relpath)
    spec = {
        "job_id": job_id,
        "attempt": attempt,
        "max_attempts": 3,
        "key": ["c", "p", name],
        "customer": "c",
        "profile": "p",
        "relpath": name,
        "source": f"default:/{relpath}",
        "done": f"default:/done/{name}",
        "failed": f"default:/failed/{name}",
        "report_done": f"default:/reports/done/{name}.{job_id}.yaml",
        "report_failed": f"default:/reports/failed/{name}.{job_id}.yaml",
        "work": f"temp:/work/{job_id}",
        "transcoding_timeout": 60,
        "targets": [],
    }
    spec.update(extra)
    return JobSpec.from_wire(spec)


def scratch(test: Any) -> str:
    """A fresh folder for one test, removed after it (trial's mktemp() writes into cwd)."""
    import shutil
    import tempfile

    folder = tempfile.mkdtemp(prefix="transcoder-test-")
    test.addCleanup(shutil.rmtree, folder, True)
    return folder


def report_files(folder: str) -> list[str]:
    """The report files in a folder, by name (a failed job's diagnosis beside its report
    is not one)."""
    return sorted(n for n in os.listdir(folder) if not n.endswith(".diagnosis.yaml"))
