"""``workers.local``: the admin's own worker processes on this host.

Each local worker is a ``transcoder-admin worker`` process in a session of its own, so
it outlives an admin that is killed outright and keeps its jobs running; the restarted
admin adopts it (its pid file names it, its kernel start time proves it is the same
process) instead of starting another, so there are never more than N.  A worker that
dies is started again after a short, growing delay.  An orderly admin stop stops them.
Workers log to ``<state>/workers/<name>.log``.

An admin that never comes back must not leave them running for ever: each is started
with ``--orphan-timeout`` of :data:`ORPHAN_FACTOR` times ``workers.lost-timeout``, so it
exits by itself once it has been that long without its manager and without a job.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass

from twisted.internet import defer, task, threads
from twisted.logger import Logger

from ..janitor import process_start_time
from ..reactors import IFarmReactor

CHECK_INTERVAL = 1.0
MAX_RESTART_DELAY = 30.0
#: A local worker alone this many lost-timeouts (no admin, no job) exits by itself.
ORPHAN_FACTOR = 10


@dataclass
class LocalWorker:
    """One local worker process (ours, or adopted from a previous admin)."""

    name: str
    pid: int = 0
    start_time: str | None = None
    process: subprocess.Popen[bytes] | None = None
    restarts: int = 0
    next_start: float = 0.0

    def alive(self) -> bool:
        """Whether the process still runs (and is the one we started)."""
        if not self.pid:
            return False
        if self.process is not None:
            return self.process.poll() is None
        return self.start_time is not None and process_start_time(self.pid) == self.start_time


class LocalWorkers:
    """Starts, adopts, watches and stops the local worker processes."""

    log = Logger()

    def __init__(
        self,
        names: list[str],
        state_dir: str,
        argv: list[str],
        reactor: IFarmReactor,
    ) -> None:
        self.workers = {name: LocalWorker(name) for name in names}
        self.folder = os.path.join(state_dir, "workers")
        self.argv = argv
        self.reactor = reactor
        self._check: task.LoopingCall | None = None
        self._stopping = False

    def start(self) -> defer.Deferred[None]:
        """Adopt the survivors, start the missing; then watch them."""
        return threads.deferToThreadPool(
            self.reactor, self.reactor.getThreadPool(), self._start_all
        ).addCallback(lambda _: self._watch())

    def _watch(self) -> None:
        self._check = task.LoopingCall(self.check)
        self._check.clock = self.reactor
        self._check.start(CHECK_INTERVAL, now=False)

    def _start_all(self) -> None:
        os.makedirs(self.folder, mode=0o700, exist_ok=True)
        for worker in self.workers.values():
            if self._adopt(worker):
                self.log.info(
                    "local worker {name} (pid {pid}) survived the last admin: adopted",
                    name=worker.name,
                    pid=worker.pid,
                )
            else:
                self._spawn(worker)

    def _pidfile(self, name: str) -> str:
        return os.path.join(self.folder, f"{name}.pid")

    def _adopt(self, worker: LocalWorker) -> bool:
        try:
            with open(self._pidfile(worker.name), encoding="ascii") as f:
                pid_text, start = f.read().split()
            pid = int(pid_text)
        except (OSError, ValueError):
            return False
        if process_start_time(pid) != start or not _is_worker(pid, worker.name):
            return False
        worker.pid, worker.start_time, worker.process = pid, start, None
        return True

    def _spawn(self, worker: LocalWorker) -> None:
        argv = [*self.argv, "--name", worker.name]
        log_path = os.path.join(self.folder, f"{worker.name}.log")
        with open(log_path, "ab") as log, open(os.devnull, "rb") as null:
            process = subprocess.Popen(
                argv,
                stdin=null,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # survives an admin killed outright
                close_fds=True,
                env=worker_environment(os.environ),
            )
        worker.process, worker.pid = process, process.pid
        worker.start_time = process_start_time(process.pid)
        tmp = self._pidfile(worker.name) + ".tmp"
        with open(tmp, "w", encoding="ascii") as f:
            f.write(f"{worker.pid} {worker.start_time}\n")
        os.replace(tmp, self._pidfile(worker.name))
        self.log.info(
            "local worker {name} started (pid {pid}), log in {log}",
            name=worker.name,
            pid=worker.pid,
            log=log_path,
        )

    def check(self) -> None:
        """Restart a worker that died (after a growing delay)."""
        if self._stopping:
            return
        now = self.reactor.seconds()
        for worker in self.workers.values():
            if worker.alive():
                continue
            if worker.pid:
                code = worker.process.returncode if worker.process is not None else "?"
                worker.restarts += 1
                delay = min(MAX_RESTART_DELAY, 0.5 * 2 ** min(worker.restarts, 6))
                worker.next_start = now + delay
                self.log.warn(
                    "local worker {name} (pid {pid}) ended (exit {code}); restarting in {d:g} s",
                    name=worker.name,
                    pid=worker.pid,
                    code=code,
                    d=delay,
                )
                worker.pid, worker.process = 0, None
            if now >= worker.next_start:
                try:
                    self._spawn(worker)
                except OSError as e:
                    self.log.error(
                        "cannot start local worker {name}: {error}", name=worker.name, error=e
                    )
                    worker.next_start = now + MAX_RESTART_DELAY

    def pids(self) -> dict[str, int]:
        """Name → pid of the local workers running now."""
        return {w.name: w.pid for w in self.workers.values() if w.alive()}

    def stop(self, timeout: float = 15.0) -> defer.Deferred[None]:
        """Ask every local worker to stop (SIGTERM), SIGKILL those still there later."""
        self._stopping = True
        if self._check is not None and self._check.running:
            self._check.stop()
        targets = [w for w in self.workers.values() if w.alive()]
        for w in targets:
            with contextlib.suppress(OSError):
                os.kill(w.pid, signal.SIGTERM)

        async def wait() -> None:
            deadline = self.reactor.seconds() + timeout
            while any(w.alive() for w in targets) and self.reactor.seconds() < deadline:
                await task.deferLater(self.reactor, 0.1)
            for w in targets:
                if w.alive():
                    self.log.warn("local worker {name} did not stop: killed", name=w.name)
                    with contextlib.suppress(OSError):
                        os.kill(w.pid, signal.SIGKILL)
                with contextlib.suppress(OSError):
                    os.unlink(self._pidfile(w.name))

        return defer.Deferred.fromCoroutine(wait())


def _is_worker(pid: int, name: str) -> bool:
    """Whether the process's command line is a transcoder-admin worker named ``name``."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            args = f.read().split(b"\0")
    except OSError:
        return False
    return b"worker" in args and name.encode() in args


#: glibc's malloc arenas for a local worker: its few threads (the reactor, the pool that
#: probes and commits) contend little, and each arena more keeps its own freed memory
#: (one arena: about 5 MiB less resident memory once it runs jobs, in a short B7 run).
MALLOC_ARENAS = "1"


def worker_environment(environ: Mapping[str, str]) -> dict[str, str]:
    """The environment a local worker starts with: the admin's, with MALLOC_ARENA_MAX
    set unless the operator set it."""
    return {"MALLOC_ARENA_MAX": MALLOC_ARENAS, **environ}


def worker_argv(
    manager: str,
    roots: dict[str, str],
    max_jobs: int,
    credentials_file: str,
    heartbeat_interval: float,
    log_level: str = "info",
    lost_timeout: float | None = None,
) -> list[str]:
    """The command line of a local worker (its ``--name`` is added per worker).

    With ``lost_timeout`` the worker gets ``--orphan-timeout`` of :data:`ORPHAN_FACTOR`
    times it; without, it keeps reconnecting for ever.
    """
    argv = [sys.executable, "-m", "transcoder_admin", "worker", "--manager", manager]
    for name, path in sorted(roots.items()):
        argv += ["--root", f"{name}={path}"]
    argv += [
        "--max-jobs",
        str(max_jobs),
        "--credentials-file",
        credentials_file,
        "--heartbeat-interval",
        f"{heartbeat_interval:g}",
        "--log-level",
        log_level,
    ]
    if lost_timeout is not None:
        argv += ["--orphan-timeout", repr(float(ORPHAN_FACTOR * lost_timeout))]
    return argv
