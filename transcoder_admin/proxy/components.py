"""The components running on workers, as the admin sees them: :class:`ComponentSet`.

A *component* is one thing a worker runs for the admin: a *monitor* (one customer's
incoming folders, ``monitoring.on-workers``) or a *transcoder* (one job attempt; kept
failed jobs stay as transcoders in state ``failed`` until the janitor's rule removes
them).  Workers report their components on every hello and heartbeat; the set mirrors
those reports and fires ``component-added``, ``component-removed`` and, for news from
one component (a monitor's file events, a job's change of state),
``component-message``.  :class:`MonitorSet` and :class:`TranscoderSet` are the same
events and lookups restricted to one kind; parts subscribe to the view they need.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from twisted.internet import defer
from twisted.logger import Logger

from ..events import Event
from ..times import iso

MONITOR, TRANSCODER = "monitor", "transcoder"
#: A transcoder's states: running, finished (waiting for the admin's acknowledgement),
#: failed (its work files kept for inspection).
RUNNING, FINISHED, FAILED = "running", "finished", "failed"
WATCHING = "watching"


@dataclass
class ComponentProxy:
    """One component on one worker."""

    kind: str
    worker: str
    name: str  # the customer of a monitor, the job id of a transcoder
    state: str
    since: float
    attempt: int | None = None
    key: tuple[str, ...] | None = None
    detail: dict[str, Any] = field(default_factory=dict)

    @property
    def id(self) -> str:
        """Unique in the farm: ``worker/kind/name``."""
        return f"{self.worker}/{self.kind}/{self.name}"

    def info(self) -> dict[str, Any]:
        """For the API."""
        row: dict[str, Any] = {
            "id": self.id,
            "kind": self.kind,
            "worker": self.worker,
            "name": self.name,
            "state": self.state,
            "since": iso(self.since),
        }
        if self.kind == TRANSCODER:
            customer, profile, relpath = (list(self.key or ()) + [None, None, None])[:3]
            row.update(attempt=self.attempt, customer=customer, profile=profile, relpath=relpath)
            row.update(path=None, reason=None)  # a kept failed job's detail fills them in
        row.update(self.detail)
        return row


class ComponentView:
    """The components of one kind, with events of their own."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.components: dict[str, ComponentProxy] = {}
        self.component_added: Event[ComponentProxy] = Event(f"{kind}-added")
        self.component_removed: Event[ComponentProxy] = Event(f"{kind}-removed")
        self.component_message: Event[tuple[ComponentProxy, dict[str, Any]]] = Event(
            f"{kind}-message"
        )

    def __iter__(self) -> Iterator[ComponentProxy]:
        return iter(list(self.components.values()))

    def __len__(self) -> int:
        return len(self.components)

    def get(self, worker: str, name: str) -> ComponentProxy | None:
        """The component ``name`` on ``worker``, if it runs there."""
        return self.components.get(f"{worker}/{self.kind}/{name}")

    def on_worker(self, worker: str) -> list[ComponentProxy]:
        """The components of this kind on one worker."""
        return [c for c in self.components.values() if c.worker == worker]

    def in_state(self, state: str, worker: str | None = None) -> list[ComponentProxy]:
        """The components in one state (on one worker)."""
        return [
            c
            for c in self.components.values()
            if c.state == state and (worker is None or c.worker == worker)
        ]


class MonitorSet(ComponentView):
    """The monitor components: which worker watches which customer."""

    def __init__(self) -> None:
        super().__init__(MONITOR)


class TranscoderSet(ComponentView):
    """The transcoder components: jobs running, finished, or failed and kept."""

    def __init__(self) -> None:
        super().__init__(TRANSCODER)

    def kept(self, worker: str | None = None) -> list[ComponentProxy]:
        """Failed jobs whose files are kept for inspection."""
        return self.in_state(FAILED, worker)


class ComponentSet:
    """Every component on every worker, from what the workers report."""

    log = Logger()

    def __init__(self, workers: Any) -> None:
        self.workers = workers  # proxy.WorkerSet
        self.monitors = MonitorSet()
        self.transcoders = TranscoderSet()
        self.component_added: Event[ComponentProxy] = Event("component-added")
        self.component_removed: Event[ComponentProxy] = Event("component-removed")
        self.component_message: Event[tuple[ComponentProxy, dict[str, Any]]] = Event(
            "component-message"
        )
        #: (worker, its components) each time a worker attaches: the janitor's cue.
        self.worker_attached: Event[tuple[str, list[ComponentProxy]]] = Event(
            "components-on-attach"
        )
        self._views = {MONITOR: self.monitors, TRANSCODER: self.transcoders}
        self._subscriptions = [
            workers.link_up.subscribe(self._attached),
            workers.worker_reported.subscribe(self._sync),
            workers.worker_removed.subscribe(self._worker_gone),
            workers.monitor_events.subscribe(self._monitor_event),
        ]

    def __iter__(self) -> Iterator[ComponentProxy]:
        for view in self._views.values():
            yield from view

    def __len__(self) -> int:
        return sum(len(v) for v in self._views.values())

    def on_worker(self, worker: str) -> list[ComponentProxy]:
        """Every component of one worker."""
        return [c for v in self._views.values() for c in v.on_worker(worker)]

    def describe(self, kind: str | None = None, worker: str | None = None) -> list[dict[str, Any]]:
        """The components (of one kind, on one worker) for the API, in a stable order."""
        rows = [
            c.info()
            for c in self
            if (kind is None or c.kind == kind) and (worker is None or c.worker == worker)
        ]
        return sorted(rows, key=lambda r: (r["worker"], r["kind"], r["name"]))

    def counts(self, worker: str) -> dict[str, int]:
        """How many monitors, jobs and kept failed jobs one worker has."""
        kept = len(self.transcoders.kept(worker))
        return {
            "monitors": len(self.monitors.on_worker(worker)),
            "jobs": len(self.transcoders.on_worker(worker)) - kept,
            "failed_kept": kept,
        }

    def stop(self, component: ComponentProxy) -> defer.Deferred[Any]:
        """Stop a component on its worker (a monitor stops watching; a job is cancelled)."""
        method = "unmonitor" if component.kind == MONITOR else "cancel_job"
        d = self.workers.call(component.worker, method, component.name)

        def stopped(result: Any) -> Any:
            self._remove(component)
            return result

        return d.addCallback(stopped)

    # -- from the worker set

    def _attached(self, proxy: Any) -> None:
        self._sync(proxy)
        self.worker_attached.fire((proxy.name, self.on_worker(proxy.name)))

    def _sync(self, proxy: Any) -> None:
        """Make the set match what a worker last reported."""
        now = self.workers.clock.seconds()
        reported = proxy.components
        wanted: dict[str, ComponentProxy] = {}
        for kept in (reported or {}).get("failed") or []:
            name = str(kept.get("job_id"))
            detail = {"path": kept.get("path"), "reason": kept.get("reason")}
            attempt = kept.get("attempt")
            wanted[f"{proxy.name}/{TRANSCODER}/{name}"] = ComponentProxy(
                TRANSCODER,
                proxy.name,
                name,
                FAILED,
                now,
                attempt=int(attempt) if isinstance(attempt, int) else None,
                key=tuple(str(k) for k in kept.get("key") or () if k is not None) or None,
                detail=detail,
            )
        for job in proxy.reported_jobs:
            name = str(job.get("job_id"))
            wanted[f"{proxy.name}/{TRANSCODER}/{name}"] = ComponentProxy(
                TRANSCODER,
                proxy.name,
                name,
                FINISHED if job.get("state") == FINISHED else RUNNING,
                now,
                attempt=int(job.get("attempt") or 0),
                key=tuple(str(k) for k in job.get("key") or ()),
            )
        for customer in (reported or {}).get("monitors") or []:
            wanted[f"{proxy.name}/{MONITOR}/{customer}"] = ComponentProxy(
                MONITOR, proxy.name, str(customer), WATCHING, now
            )
        for component in self.on_worker(proxy.name):
            if component.id in wanted:
                continue
            if reported is None and (component.kind == MONITOR or component.state == FAILED):
                continue  # a worker that does not report them: known from its messages
            self._remove(component)
        for cid, new in wanted.items():
            view = self._views[new.kind]
            old = view.components.get(cid)
            if old is None:
                self._add(new)
            elif old.state != new.state:
                was, old.state = old.state, new.state
                old.detail = new.detail or old.detail
                self._message(old, {"event": "state", "state": new.state, "was": was})

    def _worker_gone(self, name: str) -> None:
        for component in self.on_worker(name):
            self._remove(component)

    def _monitor_event(self, item: tuple[str, dict[str, Any]]) -> None:
        worker, event = item
        customer = str(event.get("customer"))
        component = self.monitors.get(worker, customer)
        if component is None:  # its first heartbeat is still on the way
            component = ComponentProxy(
                MONITOR, worker, customer, WATCHING, self.workers.clock.seconds()
            )
            self._add(component)
        self._message(component, event)

    # -- events

    def _add(self, component: ComponentProxy) -> None:
        view = self._views[component.kind]
        view.components[component.id] = component
        view.component_added.fire(component)
        self.component_added.fire(component)

    def _remove(self, component: ComponentProxy) -> None:
        view = self._views[component.kind]
        if view.components.get(component.id) is not component:
            return
        del view.components[component.id]
        view.component_removed.fire(component)
        self.component_removed.fire(component)

    def _message(self, component: ComponentProxy, message: dict[str, Any]) -> None:
        self._views[component.kind].component_message.fire((component, message))
        self.component_message.fire((component, message))


__all__ = [
    "ComponentProxy",
    "ComponentSet",
    "ComponentView",
    "MonitorSet",
    "TranscoderSet",
]
