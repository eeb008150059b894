"""Monitoring: one task per customer watching every profile's incoming folder.

Emits ``file-added`` when a file is complete (stable), ``file-removed`` when a file that
was offered disappears before its job took it, and ``fail-to-run`` when a folder cannot
be scanned.  Scans run in threads; inotify only makes them come sooner.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from twisted.application.service import Service
from twisted.internet import defer, task, threads
from twisted.logger import Logger

from ..config.model import MonitoringSection
from ..context import CustomerContext, ProfileContext, Roots
from ..events import Event
from .scanner import ScanResult, Signature, ignore_matcher, scan_folder
from .tracker import StabilityTracker
from .trigger import ChangeTrigger

TRIGGER_DELAY = 0.05  # coalesce a burst of inotify events into one scan


@dataclass(frozen=True, slots=True)
class FileOffer:
    """A complete file, ready to be queued."""

    customer: str
    profile: str
    relpath: str
    detected_at: float
    sig: Signature

    @property
    def key(self) -> tuple[str, str, str]:
        """(customer, profile, relpath): the file's identity in the farm."""
        return (self.customer, self.profile, self.relpath)


@dataclass(frozen=True)
class ScanProblem:
    """A folder that could not be scanned."""

    customer: str
    profile: str
    folder: str
    message: str


class MonitoringTask:
    """Watches the incoming folders of one customer's profiles."""

    log = Logger()

    def __init__(self, monitoring: Monitoring, customer: CustomerContext) -> None:
        self.monitoring = monitoring
        self.customer = customer
        self.profiles: dict[str, ProfileContext] = {}
        self.trackers: dict[str, StabilityTracker] = {}
        self.folders: dict[str, str] = {}
        self._scanning = False
        self._again = False
        self._call: Any = None
        self._scanned = False
        self._waiters: list[defer.Deferred[None]] = []
        self._stopped = False
        self.update(customer)

    @property
    def name(self) -> str:
        """The customer's name."""
        return self.customer.name

    def update(self, customer: CustomerContext) -> None:
        """Apply a reloaded customer: keep trackers of profiles whose folder is the same."""
        self.customer = customer
        mon = self.monitoring
        profiles = {p.name: p for p in customer.profiles()}
        for name in list(self.profiles):
            folder = (
                mon.roots.local(profiles[name].folder("incoming")) if name in profiles else None
            )
            if folder != self.folders.get(name):
                self._drop_profile(name)
        for name, profile in profiles.items():
            self.profiles[name] = profile
            if name not in self.trackers:
                self.trackers[name] = StabilityTracker(mon.settings.stable_for, mon.clock)
                self.folders[name] = mon.roots.local(profile.folder("incoming"))

    def _drop_profile(self, name: str) -> None:
        self.monitoring.unwatch(self.folders.get(name))
        self.profiles.pop(name, None)
        self.trackers.pop(name, None)
        self.folders.pop(name, None)

    def stop(self) -> None:
        """Stop scanning; pending scans are ignored when they return."""
        self._stopped = True
        if self._call is not None and self._call.active():
            self._call.cancel()
        for name in list(self.folders):
            self.monitoring.unwatch(self.folders[name])

    def when_scanned(self) -> defer.Deferred[None]:
        """Fires once the first scan has been applied."""
        d: defer.Deferred[None] = defer.Deferred()
        if self._scanned:
            d.callback(None)
        else:
            self._waiters.append(d)
        return d

    def request_scan(self, delay: float = 0.0) -> None:
        """Scan soon (coalescing requests); the earliest requested time wins."""
        if self._stopped:
            return
        clock = self.monitoring.clock
        if self._call is not None and self._call.active():
            if self._call.getTime() <= clock.seconds() + delay:
                return
            self._call.cancel()
        self._call = clock.callLater(max(0.0, delay), self._scan)

    def _scan(self) -> None:
        if self._stopped:
            return
        if self._scanning:
            self._again = True
            return
        self._scanning = True
        tokens = {name: tracker.begin_scan() for name, tracker in self.trackers.items()}
        folders = dict(self.folders)
        d = self.monitoring.run_scan(folders)
        d.addCallback(self._apply, tokens)
        d.addErrback(lambda f: self.log.failure("scan of {customer} failed", f, customer=self.name))
        d.addBoth(self._scan_done)

    def _scan_done(self, _: Any) -> None:
        self._scanning = False
        self._scanned = True
        waiters, self._waiters = self._waiters, []
        for d in waiters:
            d.callback(None)
        if self._again:
            self._again = False
            self.request_scan()

    def _apply(self, results: dict[str, ScanResult], tokens: dict[str, int]) -> None:
        if self._stopped:
            return
        mon = self.monitoring
        next_check: float | None = None
        for name, result in results.items():
            tracker = self.trackers.get(name)
            if tracker is None or name not in tokens:
                continue  # profile removed while scanning
            if result.error:
                mon.fail_to_run.fire(ScanProblem(self.name, name, self.folders[name], result.error))
                continue
            mon.watch(self.folders[name], self)
            for rel in result.refused:
                mon.refuse_once(self.folders[name], rel)
            changes = tracker.update(tokens[name], result.files)
            for record in changes.removed:
                mon.file_removed.fire(FileOffer(self.name, name, record.relpath, 0.0, record.sig))
            for record in changes.complete:
                mon.file_added.fire(
                    FileOffer(self.name, name, record.relpath, record.first_seen, record.sig)
                )
            if changes.next_check is not None:
                next_check = min(next_check or changes.next_check, changes.next_check)
        if next_check is not None:
            self.request_scan(max(0.0, next_check - mon.clock.seconds()))

    def release(self, profile: str, relpath: str) -> None:
        """The job for this file ended."""
        tracker = self.trackers.get(profile)
        if tracker is not None:
            tracker.release(relpath)

    def forget(self, profile: str, relpath: str) -> None:
        """Forget a file so that the next scan offers it again (its job was abandoned)."""
        tracker = self.trackers.get(profile)
        if tracker is not None:
            tracker.forget(relpath)

    def pending(self) -> list[dict[str, Any]]:
        """Files seen but not yet complete."""
        return [
            {
                "customer": self.name,
                "profile": name,
                "relpath": record.relpath,
                "state": "pending",
                "size": record.sig[1],
                "detected": record.first_seen,
            }
            for name, tracker in self.trackers.items()
            for record in tracker.pending()
        ]


class Monitoring(Service):
    """The monitoring part: tasks per customer, the poll loop and the inotify trigger."""

    log = Logger()

    def __init__(self, settings: MonitoringSection, roots: Roots, reactor: Any) -> None:
        self.settings = settings
        self.roots = roots
        self.clock = reactor
        self.reactor = reactor
        self.tasks: dict[str, MonitoringTask] = {}
        self.file_added: Event[FileOffer] = Event("file-added")
        self.file_removed: Event[FileOffer] = Event("file-removed")
        self.fail_to_run: Event[ScanProblem] = Event("fail-to-run")
        self._ignored = ignore_matcher(settings.ignore)
        self._loop: task.LoopingCall | None = None
        self._trigger: ChangeTrigger | None = None
        self._watched: dict[str, MonitoringTask] = {}
        self._refused: set[tuple[str, str]] = set()

    # -- customers -----------------------------------------------------------------

    def set_customers(self, customers: list[CustomerContext]) -> None:
        """Add, update and remove tasks to match the store's customers."""
        wanted = {c.name: c for c in customers}
        for name in [n for n in self.tasks if n not in wanted]:
            self.tasks.pop(name).stop()
        for name, customer in wanted.items():
            existing = self.tasks.get(name)
            if existing is None:
                self.tasks[name] = MonitoringTask(self, customer)
                if self.running:
                    self.tasks[name].request_scan()
            else:
                existing.update(customer)
                if self.running:
                    existing.request_scan()

    # -- lifecycle -------------------------------------------------------------------

    def start(self) -> defer.Deferred[None]:
        """Start the trigger and the poll loop; fires when every task has scanned once."""
        mode = self.settings.mode
        if mode != "poll":
            if ChangeTrigger.available():
                self._trigger = ChangeTrigger(self.reactor)
                self._trigger.start()
            elif mode == "inotify":
                raise RuntimeError("monitoring.mode is inotify but inotify is not available here")
            else:
                self.log.info("inotify not available: polling only")
        self.startService()
        self._loop = task.LoopingCall(self.scan_all)
        self._loop.clock = self.clock
        self._loop.start(self.settings.poll_interval, now=True)
        return self.when_active()

    def when_active(self) -> defer.Deferred[None]:
        """Fires once every current task has completed a scan."""
        waits = [t.when_scanned() for t in self.tasks.values()]
        return defer.gatherResults(waits).addCallback(lambda _: None)

    def scan_all(self) -> None:
        """Ask every task to scan now."""
        for t in self.tasks.values():
            t.request_scan()

    def stop(self) -> defer.Deferred[None]:
        """Stop scanning and watching."""
        if self._loop is not None and self._loop.running:
            self._loop.stop()
        for t in self.tasks.values():
            t.stop()
        if self._trigger is not None:
            trigger, self._trigger = self._trigger, None
            trigger.stop()
        if self.running:
            self.stopService()
        return defer.succeed(None)

    # -- helpers used by tasks ---------------------------------------------------------

    def run_scan(self, folders: dict[str, str]) -> defer.Deferred[dict[str, ScanResult]]:
        """Scan folders in a thread."""
        ignored = self._ignored
        contains = self.roots.contains

        def scan() -> dict[str, ScanResult]:
            return {name: scan_folder(path, ignored, contains) for name, path in folders.items()}

        return threads.deferToThreadPool(self.reactor, self.reactor.getThreadPool(), scan)

    def watch(self, folder: str, owner: MonitoringTask) -> None:
        """Have inotify re-check ``owner`` when ``folder`` changes."""
        if self._trigger is None or folder in self._watched:
            return
        if self._trigger.watch(folder, lambda _f: owner.request_scan(TRIGGER_DELAY)):
            self._watched[folder] = owner

    def unwatch(self, folder: str | None) -> None:
        """Stop watching a folder."""
        if folder and self._watched.pop(folder, None) is not None and self._trigger:
            self._trigger.unwatch(folder)

    def refuse_once(self, folder: str, relpath: str) -> None:
        """Log once that a link leaving the roots is ignored."""
        key = (folder, relpath)
        if key not in self._refused:
            self._refused.add(key)
            self.log.warn(
                "ignoring {relpath!r} in {folder}: it is a link that leaves the roots",
                relpath=relpath,
                folder=folder,
            )

    def release(self, customer: str, profile: str, relpath: str) -> None:
        """A file's job has ended."""
        t = self.tasks.get(customer)
        if t is not None:
            t.release(profile, relpath)

    def forget(self, customer: str, profile: str, relpath: str) -> None:
        """A file's job was abandoned; offer the file again on the next scan."""
        t = self.tasks.get(customer)
        if t is not None:
            t.forget(profile, relpath)

    def pending(self) -> list[dict[str, Any]]:
        """Every file seen but not yet complete."""
        return [item for t in self.tasks.values() for item in t.pending()]
