"""The cluster part of the admin: its manager, its workers and the jobs they outlive.

:class:`Cluster` starts the embedded manager (or attaches to a standalone one), the
admin's local worker processes, and the journal of running jobs.  After a crash, the
jobs the journal lists as running are *held*: their files are not queued again until
their worker reports them (the admin adopts them) or until ``workers.lost-timeout``
passes (that attempt failed for a system reason; the file is queued with the attempts
already made).  The admin wires the events; this part decides nothing about files.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from twisted.internet import defer, endpoints, threads
from twisted.logger import Logger

from ..config.loader import Configuration
from ..credentials import (
    ADMIN_USER,
    group_or_world_readable,
    load_credentials,
    local_secret,
    read_secret_file,
)
from ..events import Event
from ..manager import Manager, ManagerService
from ..reactors import IFarmReactor
from ..transcoding.journal import Journal
from ..worker.spawner import LocalWorkers, worker_argv
from .components import ComponentSet
from .managers import ManagerSet
from .worker import WorkerProxy
from .workers import WorkerSet

FileKey = tuple[str, str, str]


@dataclass
class HeldJob:
    """A job the previous admin started that may still run on a worker."""

    job_id: str
    key: FileKey
    attempt: int
    worker: str
    priority: int
    detected_at: float
    #: The source as it was offered (``FileOffer.identity``), if the journal has it.
    identity: dict[str, Any] | None = None


class Cluster:
    """Manager, worker sets, local workers and the job journal."""

    log = Logger()

    def __init__(self, config: Configuration, reactor: IFarmReactor) -> None:
        self.config = config
        self.reactor = reactor
        workers = config.admin.workers
        self.workers = WorkerSet(reactor, workers.lost_timeout)
        self.managers = ManagerSet(self.workers, reactor)
        self.components = ComponentSet(self.workers)
        self.manager: Manager | None = None
        self.service: ManagerService | None = None
        self.local: LocalWorkers | None = None
        self.journal = Journal(config.state_dir())
        self.held: dict[FileKey, HeldJob] = {}
        self.released: Event[HeldJob] = Event("held-job-released")
        self._release_call: Any = None
        name = config.admin.admin.name
        self.local_names = [f"{name}-local-{i + 1}" for i in range(workers.local)]

    # -- start

    async def open_journal(self) -> None:
        """Read the jobs the previous admin left running; they are held from now on."""
        pool = self.reactor.getThreadPool()
        running = await threads.deferToThreadPool(self.reactor, pool, self.journal.open)
        for entry in running.values():
            try:
                held = HeldJob(
                    job_id=str(entry["job_id"]),
                    key=(str(entry["key"][0]), str(entry["key"][1]), str(entry["key"][2])),
                    attempt=int(entry["attempt"]),
                    worker=str(entry["worker"]),
                    priority=int(entry.get("priority", 0)),
                    detected_at=float(entry.get("detected_at", 0.0)),
                    identity=entry["identity"] if isinstance(entry.get("identity"), dict) else None,
                )
            except (KeyError, IndexError, TypeError, ValueError):
                continue
            self.held[held.key] = held
        if self.held:
            self.log.info(
                "{count} jobs were running when the admin last stopped; waiting up to "
                "{timeout:g} s for their workers to report them",
                count=len(self.held),
                timeout=self.workers.lost_timeout,
            )

    async def start_manager(self) -> None:
        """Listen as the embedded manager, or attach to the standalone one."""
        admin = self.config.admin.manager
        credentials = self.config.manager_credentials()
        if credentials and group_or_world_readable(credentials):
            self.log.warn(
                "credentials file {path} is readable by others; chmod 600 it", path=credentials
            )
        if admin.connect:
            if not credentials:
                raise ValueError("manager.connect needs manager.credentials with an admin line")
            password = read_secret_file(credentials, ADMIN_USER)
            self.managers.use_remote(admin.connect, password)
            await self.managers.start()
            return
        users = load_credentials(credentials) if credentials else {}
        self.manager = Manager()
        self.service = ManagerService(self.manager, admin.listen, users, self.reactor)
        if self.local_names:
            secret = await threads.deferToThreadPool(
                self.reactor, self.reactor.getThreadPool(), local_secret, self.config.state_dir()
            )
            for name in self.local_names:
                self.service.add_user(name, secret)
        await self.service.start(also=self._local_listen())
        self.managers.use_embedded(self.manager)
        await self.managers.start()

    async def start_local_workers(self) -> None:
        """Start (or adopt) the local worker processes and wait until they attach."""
        if not self.local_names:
            return
        assert self.service is not None and self.service.port is not None
        endpoint = self._local_endpoint(self.service.port)
        state = self.config.state_dir()
        credentials = os.path.join(state, "local.credentials")
        secret = self.service.users[self.local_names[0]]
        await threads.deferToThreadPool(
            self.reactor,
            self.reactor.getThreadPool(),
            _write_credentials,
            credentials,
            {n: secret for n in self.local_names},
        )
        workers = self.config.admin.workers
        argv = worker_argv(
            endpoint,
            self.config.roots(),
            workers.max_jobs,
            credentials,
            workers.heartbeat_interval,
            lost_timeout=workers.lost_timeout,
        )
        self.local = LocalWorkers(self.local_names, state, argv, self.reactor)
        await self.local.start()
        waiting = set(self.local_names) - {n for n, p in self.workers.proxies.items() if p.attached}
        if waiting:
            done: defer.Deferred[None] = defer.Deferred()

            def up(proxy: WorkerProxy) -> None:
                waiting.discard(proxy.name)
                if not waiting and not done.called:
                    done.callback(None)

            sub = self.workers.link_up.subscribe(up)
            try:
                await done
            finally:
                sub.unsubscribe()

    def _socket_path(self) -> str:
        return os.path.join(self.config.state_dir(), "manager.sock")

    def _local_listen(self) -> str | None:
        """Local workers log in over plain TCP on loopback when the manager listens on
        ``tcp:``; otherwise (TLS) over a Unix socket of the admin's own (mode 0600)."""
        if not self.local_names or self.config.admin.manager.listen.startswith("tcp:"):
            return None
        path = endpoints.quoteStringArgument(self._socket_path())
        return f"unix:address={path}:mode=600:lockfile=1"

    def _local_endpoint(self, port: Any) -> str:
        """The client endpoint the local workers connect to (stable across restarts)."""
        if self._local_listen() is not None:
            return f"unix:path={endpoints.quoteStringArgument(self._socket_path())}"
        host = port.getHost()
        address = "127.0.0.1" if host.host in ("0.0.0.0", "", "::") else host.host
        return f"tcp:host={address}:port={host.port}"

    def start_liveness(self) -> None:
        """Begin declaring silent workers lost, and held jobs whose worker stays silent.

        Called once attached to the manager: before that, no worker could report.
        """
        self.workers.start()
        if self.held and self._release_call is None:
            self._release_call = self.reactor.callLater(
                self.workers.lost_timeout, self._release_all, "its worker did not come back"
            )

    # -- held jobs

    def held_job(self, key: FileKey) -> HeldJob | None:
        """The held job of a file, if any."""
        return self.held.get(key)

    def take(self, key: FileKey) -> HeldJob | None:
        """Stop holding a file (its job was adopted)."""
        held = self.held.pop(key, None)
        self._maybe_stop_timer()
        return held

    def release(self, key: FileKey, reason: str) -> None:
        """Stop holding a file whose job is not adopted: that attempt counts as failed."""
        held = self.held.get(key)
        if held is not None:
            self._release(held, reason)

    def release_missing(self, proxy: WorkerProxy, reported: set[str]) -> None:
        """A worker attached without some jobs the journal says it ran: they are lost."""
        for held in [h for h in self.held.values() if h.worker == proxy.name]:
            if held.job_id not in reported:
                self._release(held, f"worker {proxy.name} came back without it")

    def _release(self, held: HeldJob, reason: str) -> None:
        if self.held.pop(held.key, None) is None:
            return
        self.log.warn(
            "job {job_id} (attempt {attempt}) for {relpath}: {reason}; it counts as failed",
            job_id=held.job_id,
            attempt=held.attempt,
            relpath=held.key[2],
            reason=reason,
        )
        self._maybe_stop_timer()
        self.released.fire(held)

    def _release_all(self, reason: str) -> None:
        self._release_call = None
        for held in list(self.held.values()):
            self._release(held, reason)

    def _maybe_stop_timer(self) -> None:
        if not self.held and self._release_call is not None and self._release_call.active():
            self._release_call.cancel()
            self._release_call = None

    # -- stop

    async def stop(self) -> None:
        """Stop local workers (orderly stop), detach, stop listening, close the journal."""
        if self._release_call is not None and self._release_call.active():
            self._release_call.cancel()
        if self.local is not None:
            await self.local.stop()
        self.workers.stop()
        self.managers.stop()
        if self.service is not None:
            await defer.maybeDeferred(self.service.stopService)
        self.journal.close()

    def on_unknown_job(self, handler: Callable[[WorkerProxy, dict[str, Any]], Any]) -> None:
        """Who decides about jobs a worker reports that this admin did not start."""
        self.workers.on_unknown_job = handler


def _write_credentials(path: str, users: dict[str, bytes]) -> None:
    tmp = path + ".tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        for name, secret in users.items():
            f.write(f"{name}:{secret.decode()}\n")
    os.replace(tmp, path)
