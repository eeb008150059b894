"""Monitors on workers: ``monitoring.on-workers``.

With it, the admin's host need not mount the media: each customer's incoming folders are
watched by a *monitor component* on some worker, which scans them with the worker's own
root mapping (the same :class:`Monitoring` code, fed with plain specs) and sends its
events to the admin through the manager.  :class:`RemoteMonitoring` is the admin's side:
the same events and calls as :class:`Monitoring`, a balancer that places each customer on
the attached worker with the fewest monitors, and a move to another worker when that
worker detaches or is lost (the new monitor scans again; files already queued or running
are not queued twice, files already moved are not seen again).  :class:`MonitorHost` is
the worker's side.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from twisted.internet import defer
from twisted.logger import Logger

from ..context.paths import Roots
from ..events import Event
from ..reactors import IFarmReactor
from ..wire import encode
from . import FileOffer, Monitoring, ScanProblem

if TYPE_CHECKING:
    from ..config.model import MonitoringSection


def monitor_spec(customer: Any) -> dict[str, Any]:
    """What a worker needs to watch one customer: its name and profiles' incoming folders."""
    return {
        "customer": customer.name,
        "profiles": {p.name: p.folder("incoming") for p in customer.profiles()},
    }


@dataclass(frozen=True)
class _SpecProfile:
    name: str
    incoming: str

    def folder(self, kind: str) -> str:
        if kind != "incoming":
            raise KeyError(kind)
        return self.incoming


@dataclass(frozen=True)
class _SpecCustomer:
    """A customer as :class:`Monitoring` sees it, built from a monitor spec."""

    name: str
    profile_specs: tuple[_SpecProfile, ...]

    def profiles(self) -> list[_SpecProfile]:
        return list(self.profile_specs)

    @classmethod
    def from_spec(cls, spec: dict[str, Any]) -> _SpecCustomer:
        profiles = tuple(_SpecProfile(str(n), str(f)) for n, f in spec["profiles"].items())
        return cls(str(spec["customer"]), profiles)


class MonitorHost:
    """A worker's monitor components: one :class:`Monitoring` for its customers."""

    log = Logger()

    def __init__(
        self, roots: Roots, reactor: IFarmReactor, send: Callable[[dict[str, Any]], Any]
    ) -> None:
        self.roots = roots
        self.reactor = reactor
        self.send = send
        self.monitoring: Monitoring | None = None
        self.settings: dict[str, Any] = {}
        self.customers: dict[str, _SpecCustomer] = {}

    def assign(self, settings: dict[str, Any], spec: dict[str, Any]) -> None:
        """Watch one customer (again); ``settings`` are the admin's monitoring settings."""
        if self.monitoring is not None and settings != self.settings:
            self.monitoring.stop()
            self.monitoring = None
        if self.monitoring is None:
            # Loaded with the first monitor: a worker without one needs no pydantic.
            from ..config.model import MonitoringSection

            self.settings = dict(settings)
            self.monitoring = Monitoring(
                MonitoringSection.model_validate(settings), self.roots, self.reactor
            )
            self.monitoring.file_added.subscribe(lambda o: self.send(_offer_event("added", o)))
            self.monitoring.file_removed.subscribe(lambda o: self.send(_offer_event("removed", o)))
            self.monitoring.fail_to_run.subscribe(self._failed)
            self.monitoring.set_customers(self._customers())
            self.monitoring.start().addErrback(
                lambda f: self.log.failure("monitor components failed to start", f)
            )
        customer = _SpecCustomer.from_spec(spec)
        self.customers[customer.name] = customer
        self.monitoring.set_customers(self._customers())
        self.log.info("monitoring customer {name} on this worker", name=customer.name)

    def unassign(self, customer: str) -> None:
        """Stop watching a customer (it moved, or was removed)."""
        if self.customers.pop(customer, None) is not None and self.monitoring is not None:
            self.monitoring.set_customers(self._customers())

    def _customers(self) -> list[Any]:
        """The customers, duck-typed as the CustomerContext that Monitoring reads."""
        return list(self.customers.values())

    def release(self, customer: str, profile: str, relpath: str) -> None:
        """A file's job ended."""
        if self.monitoring is not None:
            self.monitoring.release(customer, profile, relpath)

    def forget(self, customer: str, profile: str, relpath: str) -> None:
        """A file's job was abandoned."""
        if self.monitoring is not None:
            self.monitoring.forget(customer, profile, relpath)

    def pending(self) -> list[dict[str, Any]]:
        """Files seen and not offered, for the heartbeat: pending ones, then ignored ones
        (each row says its ``state``; at most 100 of each)."""
        if self.monitoring is None:
            return []
        return self.monitoring.pending()[:100] + self.monitoring.ignored()[:100]

    def stop(self) -> None:
        """Stop every monitor."""
        if self.monitoring is not None:
            self.monitoring.stop()
            self.monitoring = None

    def _failed(self, problem: ScanProblem) -> None:
        self.send(
            {
                "event": "failed",
                "customer": problem.customer,
                "profile": problem.profile,
                "folder": problem.folder,
                "message": problem.message,
            }
        )


def _offer_event(kind: str, offer: FileOffer) -> dict[str, Any]:
    return {
        "event": kind,
        "customer": offer.customer,
        "profile": offer.profile,
        "relpath": offer.relpath,
        "detected_at": offer.detected_at,
        "sig": list(offer.sig),
        "host": offer.host,
    }


class RemoteMonitoring:
    """The admin's monitoring when monitors run on workers (same events and calls)."""

    log = Logger()

    def __init__(
        self, settings: MonitoringSection, workers: Any, monitors: Any, clock: Any
    ) -> None:
        self.settings = settings
        self.workers = workers  # proxy.WorkerSet: workers coming and going, calls
        self.monitors = monitors  # proxy.components.MonitorSet: the monitors' messages
        self.clock = clock
        self.file_added: Event[FileOffer] = Event("file-added")
        self.file_removed: Event[FileOffer] = Event("file-removed")
        self.fail_to_run: Event[ScanProblem] = Event("fail-to-run")
        self.specs: dict[str, dict[str, Any]] = {}
        self.placed: dict[str, str] = {}  # customer → worker
        self._running = False
        self._subscriptions: list[Any] = []

    # -- the Monitoring interface

    def set_customers(self, customers: list[Any]) -> None:
        """Place new customers, re-send changed ones, withdraw removed ones."""
        wanted = {c.name: monitor_spec(c) for c in customers}
        for name in [n for n in self.specs if n not in wanted]:
            del self.specs[name]
            worker = self.placed.pop(name, None)
            if worker is not None:
                self._call(worker, "unmonitor", name)
        for name, spec in wanted.items():
            changed = self.specs.get(name) != spec
            self.specs[name] = spec
            if self._running and (changed or name not in self.placed):
                self._place(name)

    def start(self) -> defer.Deferred[None]:
        """Place every customer on an attached worker; follow workers coming and going."""
        self._running = True
        events = self.workers
        self._subscriptions = [
            events.link_up.subscribe(self._worker_up),
            events.link_down.subscribe(lambda p: self._worker_gone(p.name)),
            events.worker_removed.subscribe(self._worker_gone),
            self.monitors.component_message.subscribe(self._event),
        ]
        for name in self.specs:
            self._place(name)
        return defer.succeed(None)

    def stop(self) -> defer.Deferred[None]:
        """Stop following workers; their monitors go on until the next admin places them."""
        self._running = False
        for sub in self._subscriptions:
            sub.unsubscribe()
        self.placed.clear()  # the next admin places them again (assigning is idempotent)
        return defer.succeed(None)

    def release(self, customer: str, profile: str, relpath: str) -> None:
        """A file's job ended: its monitor may forget it once it is gone."""
        worker = self.placed.get(customer)
        if worker is not None:
            self._call(worker, "monitor_release", customer, profile, relpath)

    def forget(self, customer: str, profile: str, relpath: str) -> None:
        """A file's job was abandoned: its monitor offers it again."""
        worker = self.placed.get(customer)
        if worker is not None:
            self._call(worker, "monitor_forget", customer, profile, relpath)

    def pending(self) -> list[dict[str, Any]]:
        """Files seen but not complete, as the monitors' last heartbeats said."""
        return self._heard(lambda state: state != "ignored")

    def ignored(self) -> list[dict[str, Any]]:
        """Entries of incoming not taken (links), as the monitors' last heartbeats said."""
        return self._heard(lambda state: state == "ignored")

    def _heard(self, wanted: Callable[[Any], bool]) -> list[dict[str, Any]]:
        return [
            row
            for proxy in self.workers.proxies.values()
            for row in proxy.pending
            if isinstance(row, dict) and wanted(row.get("state"))
        ]

    # -- placement

    def _place(self, customer: str) -> None:
        """Put a customer's monitor on the attached worker with the fewest monitors."""
        counts = {n: 0 for n, p in self.workers.proxies.items() if p.attached}
        if not counts:
            self.placed.pop(customer, None)
            return  # no worker now: placed when one attaches
        for name, worker in self.placed.items():
            if name != customer and worker in counts:
                counts[worker] += 1
        current = self.placed.get(customer)
        target = (
            current
            if current is not None and current in counts
            else min(counts, key=lambda n: (counts[n], n))
        )
        self.placed[customer] = target
        settings = self.settings.model_dump(mode="json")
        self._call(target, "monitor", settings, self.specs[customer])
        if current != target:
            self.log.info(
                "monitor of {customer} placed on {worker}", customer=customer, worker=target
            )

    def _worker_up(self, proxy: Any) -> None:
        for customer in self.specs:
            if self.placed.get(customer) == proxy.name:
                self._place(customer)  # it may have restarted: assign again
        for customer in self.specs:
            if customer not in self.placed:
                self._place(customer)
        self._rebalance(proxy.name)
        # What it watches besides (moved away while it was detached, or placed by an
        # admin before a restart) is an orphan: the janitor stops what ``claims`` denies.

    def claims(self, component: Any) -> bool:
        """Whether a monitor component is the one this part placed for its customer."""
        if not self._running:
            return True  # not placing yet: judged once started (the admin sweeps then)
        return self.placed.get(component.name) == component.worker

    def _rebalance(self, newcomer: str) -> None:
        """Move monitors to a worker that just attached until the load is even (±1)."""
        while True:
            counts: dict[str, list[str]] = {newcomer: []}
            for customer, worker in sorted(self.placed.items()):
                counts.setdefault(worker, []).append(customer)
            busiest = max(counts, key=lambda w: (len(counts[w]), w))
            if len(counts[busiest]) - len(counts[newcomer]) <= 1:
                return
            customer = counts[busiest][-1]
            self._call(busiest, "unmonitor", customer)
            self.placed[customer] = newcomer
            self._place(customer)
            self.log.info(
                "monitor of {customer} moved from {old} to {new} to balance",
                customer=customer,
                old=busiest,
                new=newcomer,
            )

    def _worker_gone(self, name: str) -> None:
        for customer in [c for c, w in self.placed.items() if w == name]:
            del self.placed[customer]
            self.log.warn(
                "monitor of {customer} was on {worker}, which is gone: moving it",
                customer=customer,
                worker=name,
            )
            self._place(customer)

    def _call(self, worker: str, method: str, *args: Any) -> None:
        wire_args = [encode(a) if isinstance(a, dict) else a for a in args]
        self.workers.call(worker, method, *wire_args).addErrback(
            lambda f: self.log.warn(
                "monitor call {method} to {worker} failed: {error}",
                method=method,
                worker=worker,
                error=f.getErrorMessage(),
            )
        )

    def _event(self, item: tuple[Any, dict[str, Any]]) -> None:
        component, event = item
        customer = component.name
        if event.get("event") == "state" or self.placed.get(customer) != component.worker:
            return  # a monitor that has moved away: its news is stale
        kind = event.get("event")
        if kind == "failed":
            self.fail_to_run.fire(
                ScanProblem(
                    customer, str(event["profile"]), str(event["folder"]), str(event["message"])
                )
            )
            return
        # (dev, ino, size, mtime_ns); a monitor of an older version sends no dev
        sig = tuple(int(n) for n in event.get("sig") or ())
        host = event.get("host")
        offer = FileOffer(
            customer,
            str(event["profile"]),
            str(event["relpath"]),
            float(event["detected_at"]),
            sig,  # type: ignore[arg-type]
            str(host) if host is not None else None,
        )
        (self.file_added if kind == "added" else self.file_removed).fire(offer)
