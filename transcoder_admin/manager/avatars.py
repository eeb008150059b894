"""Who logs in to the manager, and what each may call: a worker's avatar (hello,
heartbeats, outcomes, monitor news) or a remote admin's (attach, relay a call)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from twisted.cred import error, portal
from twisted.logger import Logger
from twisted.spread import pb
from zope.interface import implementer

from ..credentials import ADMIN_USER
from ..wire import decode, encode

log = Logger()

if TYPE_CHECKING:
    from . import Manager, WorkerLink


class WorkerAvatar(pb.Avatar):
    """The perspective of one logged-in worker."""

    def __init__(self, manager: Manager, link: WorkerLink) -> None:
        self.manager = manager
        self.link = link

    def perspective_hello(self, info: Any, jobs: Any) -> None:
        """The worker's facts and its jobs (JSON text), sent right after login."""
        self.manager.worker_hello(self.link, _plain_dict(decode(info)), list(decode(jobs)))

    def perspective_heartbeat(self, state: Any) -> None:
        """Sent every few seconds (JSON text)."""
        self.manager.heartbeat(self.link, _plain_dict(decode(state)))

    def perspective_job_finished(self, job_id: str, outcome: Any) -> None:
        """A job ended (its outcome as JSON text); the worker waits for the acknowledgement."""
        self.manager.job_finished(self.link, str(job_id), _plain_dict(decode(outcome)))

    def perspective_monitor_event(self, event: Any) -> None:
        """News of one of the worker's monitor components (JSON text)."""
        self.manager.monitor_event(self.link, _plain_dict(decode(event)))

    def logout(self) -> None:
        """The connection ended."""
        self.manager.worker_logout(self.link)


class AdminAvatar(pb.Avatar):
    """The perspective of a remote admin (standalone manager)."""

    def __init__(self, manager: Manager, mind: Any) -> None:
        self.manager = manager
        self.mind = mind
        self.listener = _RemoteListener(mind)

    def perspective_attach(self) -> dict[str, dict[str, Any]]:
        """Start hearing of workers; answers the workers logged in now (each one's facts
        and jobs as JSON text: one item per worker stays within PB's bounds)."""
        snapshot = self.manager.attach(self.listener)
        return {
            name: {"info": encode(entry["info"]), "jobs": encode(entry["jobs"])}
            for name, entry in snapshot.items()
        }

    def perspective_call_worker(self, name: str, method: str, *args: Any) -> Any:
        """Relay a call to a worker."""
        return self.manager.call_worker(str(name), str(method), *args)

    def perspective_drop_worker(self, name: str) -> None:
        """Close a lost worker's connection."""
        self.manager.drop_worker(str(name))

    def logout(self) -> None:
        """The admin went away."""
        self.manager.detach(self.listener)


class _RemoteListener:
    """A :class:`ManagerListener` whose calls go to a remote admin's mind."""

    def __init__(self, mind: Any) -> None:
        self.mind = mind

    def worker_attached(self, name: str, info: dict[str, Any], jobs: list[Any]) -> Any:
        return self.mind.callRemote("worker_attached", name, encode(info), encode(jobs))

    def worker_detached(self, name: str) -> Any:
        return self.mind.callRemote("worker_detached", name)

    def worker_heartbeat(self, name: str, state: dict[str, Any]) -> Any:
        return self.mind.callRemote("worker_heartbeat", name, encode(state))

    def job_finished(self, name: str, job_id: str, outcome: dict[str, Any]) -> Any:
        return self.mind.callRemote("job_finished", name, job_id, encode(outcome))

    def monitor_event(self, name: str, event: dict[str, Any]) -> Any:
        return self.mind.callRemote("monitor_event", name, encode(event))


@implementer(portal.IRealm)
class ManagerRealm:
    """Gives workers a WorkerAvatar and the ``admin`` user an AdminAvatar."""

    def __init__(self, manager: Manager) -> None:
        self.manager = manager

    def requestAvatar(  # noqa: N802 (Twisted API)
        self, avatar_id: bytes | tuple[()], mind: Any, *interfaces: Any
    ) -> tuple[Any, Any, Any]:
        if pb.IPerspective not in interfaces:
            raise NotImplementedError("only Perspective Broker logins")
        if not isinstance(avatar_id, bytes):
            raise error.UnauthorizedLogin("anonymous logins are not accepted")
        name = avatar_id.decode()
        if mind is None:
            raise error.UnauthorizedLogin("a login must bring a mind to call back")
        avatar: WorkerAvatar | AdminAvatar
        if name == ADMIN_USER:
            avatar = AdminAvatar(self.manager, mind)
        else:
            broker = getattr(mind, "broker", None)
            link = self.manager.worker_login(name, mind, broker)
            avatar = WorkerAvatar(self.manager, link)
        return pb.IPerspective, avatar, avatar.logout


def _plain_dict(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise pb.Error(f"expected a dict, got {type(value).__name__}")
    return value
