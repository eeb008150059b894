"""The admin's link to its manager: the embedded one in this process, or a standalone
one over PB (the admin's mind is what that manager calls)."""

from __future__ import annotations

from typing import Any

from twisted.application.service import Service
from twisted.internet import defer
from twisted.logger import Logger
from twisted.spread import pb

from ..events import Event
from ..manager import ADMIN_USER, Manager
from ..pblink import PBLink
from ..reactors import IFarmReactor
from ..wire import decode
from .workers import WorkerSet


class _AdminMind(pb.Referenceable):
    """What a standalone manager calls on this admin."""

    def __init__(self, workers: WorkerSet) -> None:
        self.workers = workers

    def remote_worker_attached(self, name: str, info: Any, jobs: Any) -> None:  # noqa: D102
        self.workers.worker_attached(name, decode(info), decode(jobs))

    def remote_worker_detached(self, name: str) -> None:  # noqa: D102
        self.workers.worker_detached(name)

    def remote_worker_heartbeat(self, name: str, state: Any) -> None:  # noqa: D102
        self.workers.worker_heartbeat(name, decode(state))

    def remote_job_finished(self, name: str, job_id: str, outcome: Any) -> None:  # noqa: D102
        self.workers.job_finished(name, job_id, decode(outcome))

    def remote_monitor_event(self, name: str, event: Any) -> None:  # noqa: D102
        self.workers.monitor_event(name, decode(event))


class _EmbeddedLink:
    """The admin attached to a manager in its own process."""

    def __init__(self, manager: Manager, workers: WorkerSet) -> None:
        self.manager = manager
        self.workers = workers

    def attach(self) -> dict[str, dict[str, Any]]:
        return self.manager.attach(self.workers)

    def call_worker(self, name: str, method: str, *args: Any) -> defer.Deferred[Any]:
        return self.manager.call_worker(name, method, *args)

    def drop_worker(self, name: str) -> None:
        self.manager.drop_worker(name)


class _RemoteLink:
    """The admin attached to a standalone manager over PB."""

    def __init__(self, perspective: Any) -> None:
        self.perspective = perspective

    def call_worker(self, name: str, method: str, *args: Any) -> defer.Deferred[Any]:
        return self.perspective.callRemote("call_worker", name, method, *args)

    def drop_worker(self, name: str) -> None:
        self.perspective.callRemote("drop_worker", name).addErrback(lambda _: None)


class ManagerSet(Service):
    """The admin's link to its manager: ``attached`` and ``detached`` events."""

    log = Logger()

    def __init__(self, workers: WorkerSet, reactor: IFarmReactor) -> None:
        self.workers = workers
        self.reactor = reactor
        self.attached: Event[str] = Event("attached")
        self.detached: Event[str] = Event("detached")
        self.is_attached = False
        self._embedded: Manager | None = None
        self._link: PBLink | None = None
        self._first: defer.Deferred[None] = defer.Deferred()

    def use_embedded(self, manager: Manager) -> None:
        """Attach to the manager running in this process."""
        self._embedded = manager

    def use_remote(self, endpoint: str, password: bytes) -> None:
        """Attach to a standalone manager at ``endpoint`` as the ``admin`` user."""
        self._link = PBLink(
            self.reactor,
            endpoint,
            ADMIN_USER,
            password,
            _AdminMind(self.workers),
            on_login=self._logged_in,
            on_lost=self._lost,
            what="admin",
        )

    def start(self) -> defer.Deferred[None]:
        """Attach; fires when attached the first time."""
        if self._embedded is not None:
            link = _EmbeddedLink(self._embedded, self.workers)
            self.workers.manager = link
            self._attached("embedded", link.attach())
            return defer.succeed(None)
        assert self._link is not None, "use_embedded() or use_remote() first"
        self._link.start()
        return self._first

    async def _logged_in(self, perspective: Any) -> None:
        self.workers.manager = _RemoteLink(perspective)
        snapshot = await perspective.callRemote("attach")
        assert self._link is not None
        self._attached(self._link.endpoint, snapshot)

    def _attached(self, where: str, snapshot: dict[str, dict[str, Any]]) -> None:
        self.is_attached = True
        self.log.info(
            "attached to the manager ({where}): {count} workers", where=where, count=len(snapshot)
        )
        for name, entry in snapshot.items():
            info = decode(entry.get("info"))  # JSON text from a standalone manager
            if info:
                self._attach_known(name, info, decode(entry.get("jobs")) or [])
        self.attached.fire(where)
        if not self._first.called:
            self._first.callback(None)

    def _attach_known(self, name: str, info: dict[str, Any], jobs: list[Any]) -> None:
        """A worker already logged in: ask it for its jobs with their specs (to adopt)."""

        def got(full: Any) -> None:
            self.workers.worker_attached(name, info, full if isinstance(full, list) else jobs)

        def failed(failure: Any) -> None:
            self.log.warn(
                "cannot get the jobs of worker {name}: {error}", name=name, error=failure.value
            )
            self.workers.worker_attached(name, info, jobs)

        self.workers.call(name, "jobs").addCallback(decode).addCallbacks(got, failed)

    def _lost(self) -> None:
        self.is_attached = False
        self.workers.manager = None
        self.workers.all_detached()
        assert self._link is not None
        self.detached.fire(self._link.endpoint)

    def stop(self) -> None:
        """Detach (the workers keep running their jobs)."""
        if self._link is not None:
            self._link.stop()
        if self._embedded is not None:
            self._embedded.detach(self.workers)
