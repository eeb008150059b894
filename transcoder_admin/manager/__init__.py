"""The manager: the Perspective Broker broker between the admin and its workers.

Workers log in with ``twisted.cred`` credentials (their name and password), hand the
manager a *mind* to call them on, and report what they run.  The admin attaches either
in this very process (the embedded manager of ``transcoder-admin run``) or over PB as
the reserved user ``admin`` (a standalone ``transcoder-admin manager``).  The manager
holds no policy: it relays the admin's calls to a worker and the workers' news to every
attached admin.  Only basic types cross the wire, and whatever may hold a file name
(facts, job lists, heartbeats, outcomes) travels as JSON text (``wire``): PB cannot
carry the surrogate escapes of a name that is not UTF-8.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from twisted.application.service import Service
from twisted.cred import checkers, error, portal
from twisted.cred import credentials as cred
from twisted.internet import defer, endpoints
from twisted.logger import Logger
from twisted.spread import pb
from zope.interface import implementer

from ..credentials import ADMIN_USER, CredentialsError, load_credentials, read_secret_file
from ..reactors import IFarmReactor
from .avatars import AdminAvatar, ManagerRealm, WorkerAvatar
from .guard import GuardedFactory, note_login

log = Logger()


class WorkerNotAttached(pb.Error):
    """The admin called a worker that is not logged in to the manager."""


class ManagerListener(Protocol):
    """What an attached admin hears of the workers (plain values only)."""

    def worker_attached(self, name: str, info: dict[str, Any], jobs: list[Any]) -> Any: ...

    def worker_detached(self, name: str) -> Any: ...

    def worker_heartbeat(self, name: str, state: dict[str, Any]) -> Any: ...

    def job_finished(self, name: str, job_id: str, outcome: dict[str, Any]) -> Any: ...

    def monitor_event(self, name: str, event: dict[str, Any]) -> Any: ...


@dataclass
class WorkerLink:
    """A logged-in worker: its mind (to call it), its facts and its jobs."""

    name: str
    mind: Any
    broker: Any
    info: dict[str, Any] = field(default_factory=dict)
    jobs: list[dict[str, Any]] = field(default_factory=list)


class Manager:
    """The broker's state: logged-in workers and attached admins."""

    def __init__(self) -> None:
        self.workers: dict[str, WorkerLink] = {}
        self.listeners: list[ManagerListener] = []

    # -- admins

    def attach(self, listener: ManagerListener) -> dict[str, dict[str, Any]]:
        """An admin attaches; returns every logged-in worker with its facts and jobs.

        The facts hold the worker's components as of its last heartbeat.
        """
        self.listeners.append(listener)
        return {name: {"info": link.info, "jobs": link.jobs} for name, link in self.workers.items()}

    def detach(self, listener: ManagerListener) -> None:
        """An admin went away; the workers and their jobs stay."""
        if listener in self.listeners:
            self.listeners.remove(listener)

    def _tell(self, method: str, *args: Any) -> None:
        for listener in list(self.listeners):
            try:
                result = getattr(listener, method)(*args)
            except Exception:
                log.failure("admin listener {method} failed", method=method)
                continue
            if isinstance(result, defer.Deferred):
                result.addErrback(_not_taken, method)

    def call_worker(self, name: str, method: str, *args: Any) -> defer.Deferred[Any]:
        """Call ``remote_<method>`` on a worker's mind."""
        link = self.workers.get(name)
        if link is None:
            return defer.fail(WorkerNotAttached(f"worker {name!r} is not attached"))
        return link.mind.callRemote(method, *args)

    def drop_worker(self, name: str) -> None:
        """Close a worker's connection (it was declared lost); it may log in again."""
        link = self.workers.get(name)
        if link is not None and link.broker is not None and link.broker.transport:
            link.broker.transport.loseConnection()

    # -- workers

    def worker_login(self, name: str, mind: Any, broker: Any) -> WorkerLink:
        """A worker logged in; a previous connection under its name is closed."""
        old = self.workers.pop(name, None)
        if old is not None:
            log.warn("worker {name} logged in again; closing its previous connection", name=name)
            if old.broker is not None and old.broker.transport:
                old.broker.transport.loseConnection()
            self._tell("worker_detached", name)
        link = WorkerLink(name, mind, broker)
        self.workers[name] = link
        return link

    def worker_hello(self, link: WorkerLink, info: dict[str, Any], jobs: list[Any]) -> None:
        """A worker said who it is and what it runs; the admins hear of it."""
        if self.workers.get(link.name) is not link:
            return
        link.info = dict(info, name=link.name)
        link.jobs = list(jobs)
        log.info(
            "worker {name} attached from {host} ({max_jobs} slots, {jobs} jobs)",
            name=link.name,
            host=info.get("host"),
            max_jobs=info.get("max_jobs"),
            jobs=len(jobs),
        )
        self._tell("worker_attached", link.name, link.info, link.jobs)

    def worker_logout(self, link: WorkerLink) -> None:
        """A worker's connection ended."""
        if self.workers.get(link.name) is link:
            del self.workers[link.name]
            log.info("worker {name} detached", name=link.name)
            self._tell("worker_detached", link.name)

    def heartbeat(self, link: WorkerLink, state: dict[str, Any]) -> None:
        """A worker is alive; ``state`` has its jobs and their progress."""
        if self.workers.get(link.name) is link:
            link.jobs = list(state.get("jobs", []))
            if "components" in state:  # what an admin attaching later must see
                link.info["components"] = state["components"]
            self._tell("worker_heartbeat", link.name, state)

    def job_finished(self, link: WorkerLink, job_id: str, outcome: dict[str, Any]) -> None:
        """A worker's job has an outcome (nothing moved yet)."""
        if self.workers.get(link.name) is link:
            self._tell("job_finished", link.name, job_id, outcome)

    def monitor_event(self, link: WorkerLink, event: dict[str, Any]) -> None:
        """A worker's monitor component saw a file complete, vanish, or cannot scan."""
        if self.workers.get(link.name) is link:
            self._tell("monitor_event", link.name, event)


#: What a refused client is told, whatever the reason (the log has the reason).
REFUSED = "login refused: unknown name or wrong password"


class LoginRefused(pb.Error, error.UnauthorizedLogin):
    """A refused login as PB sends it: an expected error (no traceback in the log) that
    the client still recognises as ``UnauthorizedLogin``."""


class LoggingPortal(portal.Portal):
    """A portal that logs every refused login with the peer's address (never a secret).

    That one line is the log of it: PB logs a traceback for any other error it sends.
    """

    def login(self, creds: Any, mind: Any, *interfaces: Any) -> defer.Deferred[Any]:
        d = super().login(creds, mind, *interfaces)

        def logged_in(result: Any) -> Any:
            note_login(creds)
            return result

        def refused(failure: Any) -> Any:
            if failure.check(error.UnauthorizedLogin, error.UnhandledCredentials):
                broker = getattr(creds, "broker", None)
                peer = broker.transport.getPeer() if broker and broker.transport else "?"
                user = getattr(creds, "username", "?")
                if isinstance(user, bytes):
                    user = user.decode("utf-8", "replace")
                log.warn(
                    "login refused for {user!r} from {peer}: {why}",
                    user=user,
                    peer=peer,
                    why=failure.getErrorMessage(),
                )
                # The client learns no more: an unknown name reads as a wrong password.
                raise LoginRefused(REFUSED)
            return failure

        return d.addCallbacks(logged_in, refused)


class ManagerService(Service):
    """Listens on an endpoint string for workers (and a remote admin)."""

    log = Logger()
    name = "manager"

    def __init__(
        self, manager: Manager, listen: str, users: dict[str, bytes], reactor: IFarmReactor
    ) -> None:
        self.manager = manager
        self.listen = listen
        self.users = users
        self.reactor = reactor
        self.ports: dict[str, Any] = {}  # endpoint string → listening port

    @property
    def port(self) -> Any:
        """The port of ``listen`` (None before start)."""
        return self.ports.get(self.listen)

    def add_user(self, name: str, password: bytes) -> None:
        """Allow one more login (the admin's local workers)."""
        self.users[name] = password

    def factory(self) -> GuardedFactory:
        """The PB server factory with the manager's portal (log in within seconds)."""
        realm: Any = ManagerRealm(self.manager)  # zope interfaces are invisible to mypy
        checker: Any = _LiveChecker(self.users)
        p = LoggingPortal(realm, [checker])
        return GuardedFactory(p, self.reactor)

    def start(self, also: str | None = None) -> defer.Deferred[None]:
        """Listen on ``listen`` (and on ``also``, e.g. a socket for local workers)."""
        return defer.Deferred.fromCoroutine(self._start([self.listen, *([also] if also else [])]))

    async def _start(self, wheres: list[str]) -> None:
        for where in wheres:
            port = await endpoints.serverFromString(self.reactor, where).listen(self.factory())
            self.ports[where] = port
            self.log.info("manager listening on {where}", where=_describe(port, where))

    def stopService(self) -> defer.Deferred[Any] | None:  # noqa: N802 (Twisted API)
        Service.stopService(self)
        ports, self.ports = list(self.ports.values()), {}
        if not ports:
            return None
        for link in list(self.manager.workers.values()):
            if link.broker is not None and link.broker.transport:
                link.broker.transport.loseConnection()
        return defer.gatherResults([defer.maybeDeferred(p.stopListening) for p in ports])


@implementer(checkers.ICredentialsChecker)
class _LiveChecker:
    """Checks against the current user table (users added after start count)."""

    credentialInterfaces = (  # noqa: N815 (Twisted API)
        cred.IUsernamePassword,
        cred.IUsernameHashedPassword,
    )

    def __init__(self, users: dict[str, bytes]) -> None:
        self.users = users

    def requestAvatarId(self, creds: Any) -> defer.Deferred[Any]:  # noqa: N802
        name = creds.username.decode() if isinstance(creds.username, bytes) else creds.username
        secret = self.users.get(name)
        if secret is None:
            return defer.fail(error.UnauthorizedLogin("unknown user"))
        return defer.maybeDeferred(creds.checkPassword, secret).addCallback(
            lambda ok: (
                name.encode() if ok else defer.fail(error.UnauthorizedLogin("wrong password"))
            )
        )


def _not_taken(failure: Any, method: str) -> None:
    log.warn("an admin did not take {method}: {error}", method=method, error=failure.value)


def _describe(port: Any, listen: str) -> str:
    try:
        host = port.getHost()
        return f"{host.host}:{host.port}"
    except Exception:
        return listen


__all__ = [
    "ADMIN_USER",
    "AdminAvatar",
    "WorkerAvatar",
    "CredentialsError",
    "Manager",
    "ManagerListener",
    "ManagerRealm",
    "ManagerService",
    "WorkerNotAttached",
    "load_credentials",
    "read_secret_file",
]
