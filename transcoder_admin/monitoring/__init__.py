"""Monitoring: one task per customer watching every profile's incoming folder.

Emits ``file-added`` when a file is complete (stable, and not open for writing by a
process on this host), ``file-removed`` when a file that was offered disappears before
its job took it, and ``fail-to-run`` when a folder cannot be scanned.  Symbolic links and
files with more than one hard link are never offered: each is logged once and listed as
``ignored`` with its reason until it goes away.  Scans run in threads; inotify only
makes them come sooner, and narrower: an event re-checks the entries it names in its
profile's folder, while the periodic poll scans every folder in full.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from twisted.application.service import Service
from twisted.internet import defer, task, threads
from twisted.logger import Logger

from ..config.model import MonitoringSection
from ..context import CustomerContext, ProfileContext, Roots
from ..events import Event
from .scanner import SYMLINK, ScanResult, Signature, ignore_matcher, scan_folder, scan_paths
from .tracker import SLACK, StabilityTracker
from .trigger import Change, ChangeTrigger
from .writers import ignore_lease_breaks, open_for_writing

TRIGGER_DELAY = 0.05  # coalesce a burst of inotify events into one scan
WRITING = "still open for writing by a process on this host"
HARD_LINKS_HINT = " (monitoring.accept-hard-links: true takes such files)"


@dataclass(frozen=True, slots=True)
class FileOffer:
    """A complete file, ready to be queued."""

    customer: str
    profile: str
    relpath: str
    detected_at: float
    sig: Signature
    host: str | None = None  # the host whose scan saw the file (None: not known)

    @property
    def key(self) -> tuple[str, str, str]:
        """(customer, profile, relpath): the file's identity in the farm."""
        return (self.customer, self.profile, self.relpath)

    @property
    def identity(self) -> dict[str, Any]:
        """What a job checks the source against (``source_identity`` of a job spec).

        ``dev`` is None when the scan did not record it (a monitor of an older version);
        a job compares ``dev`` and ``ino`` only on the host that scanned (``host``), size
        and mtime everywhere.
        """
        dev = self.sig[0] if len(self.sig) == 4 else None
        ino, size, mtime_ns = self.sig[-3:]
        return {"dev": dev, "ino": ino, "size": size, "mtime_ns": mtime_ns, "host": self.host}


@dataclass(frozen=True)
class ScanProblem:
    """A folder that could not be scanned."""

    customer: str
    profile: str
    folder: str
    message: str


@dataclass
class _Wanted:
    """What the next scan of one profile must cover, and when it is due."""

    due: float
    full: bool = False
    paths: set[str] = field(default_factory=set)
    trees: set[str] = field(default_factory=set)


@dataclass(frozen=True)
class ScanRequest:
    """One folder to scan: all of it (``paths`` None) or only these entries.

    ``candidates`` are the files the stability rule would take now (path → signature):
    those found unchanged are checked for writers on this host.
    """

    folder: str
    paths: frozenset[str] | None = None
    trees: frozenset[str] = frozenset()
    candidates: Mapping[str, Signature] = field(default_factory=dict)


class MonitoringTask:
    """Watches the incoming folders of one customer's profiles.

    Each profile is scanned on its own schedule: the periodic poll asks for a full
    scan of every profile; an inotify event, a job's end and the stability re-check
    ask for the entries concerned of that profile only (plus its files still waiting
    to be stable).  Requests made before the scan starts are merged; one scan (of the
    profiles due) runs at a time, in a thread.
    """

    log = Logger()

    def __init__(self, monitoring: Monitoring, customer: CustomerContext) -> None:
        self.monitoring = monitoring
        self.customer = customer
        self.profiles: dict[str, ProfileContext] = {}
        self.trackers: dict[str, StabilityTracker] = {}
        self.folders: dict[str, str] = {}
        self._wanted: dict[str, _Wanted] = {}
        self._unscanned: set[str] = set()  # profiles not yet fully scanned once
        self._scanning = False
        self._call: Any = None
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
                self._unscanned.add(name)

    def _drop_profile(self, name: str) -> None:
        folder = self.folders.get(name)
        if folder is not None:
            self.monitoring.unwatch(folder)
        self.profiles.pop(name, None)
        self.trackers.pop(name, None)
        self.folders.pop(name, None)
        self._wanted.pop(name, None)
        self._unscanned.discard(name)

    def stop(self) -> None:
        """Stop scanning; pending scans are ignored when they return."""
        self._stopped = True
        if self._call is not None and self._call.active():
            self._call.cancel()
        self._wanted.clear()
        for folder in self.folders.values():
            self.monitoring.unwatch(folder)

    def when_scanned(self) -> defer.Deferred[None]:
        """Fires once every profile has been scanned in full once."""
        d: defer.Deferred[None] = defer.Deferred()
        if not self._unscanned:
            d.callback(None)
        else:
            self._waiters.append(d)
        return d

    # -- requests --------------------------------------------------------------------------

    def request_scan(self, delay: float = 0.0) -> None:
        """Scan every profile's folder in full soon (coalescing requests)."""
        for name in self.profiles:
            self._want(name, delay, full=True)

    def changed(self, profile: str, change: Change) -> None:
        """inotify saw ``change`` in a profile's folder: re-check what it names soon."""
        if change.full:
            self._want(profile, TRIGGER_DELAY, full=True)
        else:
            self._want(profile, TRIGGER_DELAY, change.paths, change.trees)

    def _want(
        self,
        name: str,
        delay: float,
        paths: Iterable[str] = (),
        trees: Iterable[str] = (),
        full: bool = False,
    ) -> None:
        """Ask for a scan of profile ``name``; the earliest requested time wins."""
        if self._stopped or name not in self.trackers:
            return
        when = self.monitoring.clock.seconds() + max(0.0, delay)
        wanted = self._wanted.get(name)
        if wanted is None:
            wanted = self._wanted[name] = _Wanted(when)
        elif when < wanted.due:
            wanted.due = when
        if full:
            wanted.full = True
            wanted.paths.clear()
            wanted.trees.clear()
        elif not wanted.full:
            wanted.paths.update(paths)
            wanted.trees.update(trees)
        self._schedule(wanted.due)

    def _schedule(self, when: float) -> None:
        if self._scanning or self._stopped:
            return  # _scan_done schedules what is left
        clock = self.monitoring.clock
        if self._call is not None and self._call.active():
            if self._call.getTime() <= when:
                return
            self._call.cancel()
        self._call = clock.callLater(max(0.0, when - clock.seconds()), self._scan)

    # -- scans -----------------------------------------------------------------------------

    def _scan(self) -> None:
        if self._stopped:
            return
        now = self.monitoring.clock.seconds() + SLACK  # a timer may fire a rounding early
        due = [name for name, wanted in self._wanted.items() if wanted.due <= now]
        if not due:
            if self._wanted:
                self._schedule(min(w.due for w in self._wanted.values()))
            return
        self._scanning = True
        requests: dict[str, ScanRequest] = {}
        tokens: dict[str, int] = {}
        for name in due:
            wanted = self._wanted.pop(name)
            tracker = self.trackers[name]
            candidates = tracker.due()
            if wanted.full:
                requests[name] = ScanRequest(self.folders[name], candidates=candidates)
            else:
                # files waiting to be stable are re-checked on every scan of their folder
                paths = frozenset(wanted.paths | tracker.pending_paths())
                requests[name] = ScanRequest(
                    self.folders[name], paths, frozenset(wanted.trees), candidates
                )
            tokens[name] = tracker.begin_scan()
        d = self.monitoring.run_scan(requests)
        d.addCallback(self._apply, tokens)
        d.addErrback(lambda f: self.log.failure("scan of {customer} failed", f, customer=self.name))
        d.addBoth(self._scan_done, requests)

    def _scan_done(self, _: Any, requests: dict[str, ScanRequest]) -> None:
        self._scanning = False
        self._unscanned.difference_update(n for n, r in requests.items() if r.paths is None)
        if not self._unscanned and self._waiters:
            waiters, self._waiters = self._waiters, []
            for d in waiters:
                d.callback(None)
        if self._wanted:
            self._schedule(min(w.due for w in self._wanted.values()))

    def _apply(self, results: dict[str, ScanResult], tokens: dict[str, int]) -> None:
        if self._stopped:
            return
        mon = self.monitoring
        now = mon.clock.seconds()
        for name, result in results.items():
            tracker = self.trackers.get(name)
            if tracker is None or name not in tokens:
                continue  # profile removed while scanning
            folder = self.folders[name]
            if result.error:
                mon.fail_to_run.fire(ScanProblem(self.name, name, folder, result.error))
                continue
            fresh = mon.watch(folder, partial(self.changed, name), result.dirs)
            if fresh:  # subfolders that existed before their watch: look inside once more
                self._want(name, TRIGGER_DELAY, trees=fresh)
            changes = tracker.update(
                tokens[name],
                result.files,
                result.scope,
                refused=result.refused,
                quiet=result.quiet,
                busy=result.busy,
            )
            for ignored in changes.refused:
                self.log.warn(
                    "not taking {customer}/{profile}/{relpath} in {folder}: it is {reason}{hint}",
                    customer=self.name,
                    profile=name,
                    relpath=ignored.relpath,
                    folder=folder,
                    reason=ignored.reason,
                    hint="" if ignored.reason == SYMLINK else HARD_LINKS_HINT,
                )
            host = mon.host
            for record in changes.removed:
                mon.file_removed.fire(
                    FileOffer(self.name, name, record.relpath, 0.0, record.sig, host)
                )
            for record in changes.complete:
                mon.file_added.fire(
                    FileOffer(self.name, name, record.relpath, record.first_seen, record.sig, host)
                )
            if changes.next_check is not None:
                self._want(name, changes.next_check - now)

    def release(self, profile: str, relpath: str) -> None:
        """The job for this file ended; look at its path again (gone, or dropped anew)."""
        tracker = self.trackers.get(profile)
        if tracker is not None:
            tracker.release(relpath)
            self._want(profile, TRIGGER_DELAY, (relpath,))

    def forget(self, profile: str, relpath: str) -> None:
        """Forget a file so that the next scan offers it again (its job was abandoned)."""
        tracker = self.trackers.get(profile)
        if tracker is not None:
            tracker.forget(relpath)
            self._want(profile, TRIGGER_DELAY, (relpath,))

    def pending(self) -> list[dict[str, Any]]:
        """Files seen but not yet complete."""
        return [
            {
                "customer": self.name,
                "profile": name,
                "relpath": record.relpath,
                "state": "pending",
                "size": record.sig[2],
                "detected": record.first_seen,
                **({"reason": WRITING} if record.busy else {}),
            }
            for name, tracker in self.trackers.items()
            for record in tracker.pending()
        ]

    def ignored(self) -> list[dict[str, Any]]:
        """Entries of incoming that are not taken (links), with the reason."""
        return [
            {
                "customer": self.name,
                "profile": name,
                "relpath": item.relpath,
                "state": "ignored",
                "reason": item.reason,
                "detected": item.since,
            }
            for name, tracker in self.trackers.items()
            for item in tracker.ignored()
        ]


class Monitoring(Service):
    """The monitoring part: tasks per customer, the poll loop and the inotify trigger."""

    log = Logger()

    def __init__(
        self, settings: MonitoringSection, roots: Roots, reactor: Any, host: str | None = None
    ) -> None:
        self.settings = settings
        self.roots = roots
        #: Named in every offer: a job compares device and inode only on this host.
        self.host = host if host is not None else socket.gethostname()
        self.clock = reactor
        self.reactor = reactor
        self.tasks: dict[str, MonitoringTask] = {}
        self.file_added: Event[FileOffer] = Event("file-added")
        self.file_removed: Event[FileOffer] = Event("file-removed")
        self.fail_to_run: Event[ScanProblem] = Event("fail-to-run")
        self._ignored = ignore_matcher(settings.ignore)
        self._loop: task.LoopingCall | None = None
        self._trigger: ChangeTrigger | None = None

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
        ignore_lease_breaks()  # before the first scan takes a lease
        mode = self.settings.mode
        if mode != "poll":
            if ChangeTrigger.available():
                trigger = ChangeTrigger(self.reactor, self._ignored)
                try:
                    trigger.start()
                except OSError as e:
                    if mode == "inotify":
                        raise RuntimeError(f"monitoring.mode is inotify but {e}") from e
                    self.log.warn("cannot use inotify ({error}): polling only", error=e)
                else:
                    self._trigger = trigger
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

    def run_scan(self, requests: dict[str, ScanRequest]) -> defer.Deferred[dict[str, ScanResult]]:
        """Scan folders (in full or the entries requested) in a thread.

        Then, in the same thread and in one batch for every folder, the candidates found
        unchanged are checked for writers on this host.
        """
        ignored = self._ignored
        links = self.settings.accept_hard_links

        def scan() -> dict[str, ScanResult]:
            results = {
                name: scan_folder(r.folder, ignored, accept_hard_links=links)
                if r.paths is None
                else scan_paths(r.folder, r.paths, r.trees, ignored, accept_hard_links=links)
                for name, r in requests.items()
            }
            check: dict[tuple[str, str], tuple[str, int, int]] = {}
            for name, r in requests.items():
                files = results[name].files
                for rel, sig in r.candidates.items():
                    if files.get(rel) == sig:
                        check[(name, rel)] = (os.path.join(r.folder, rel), sig[0], sig[1])
            busy = open_for_writing(check) if check else set()
            for name, rel in check:
                result = results[name]
                (result.busy if (name, rel) in busy else result.quiet).add(rel)
            return results

        return threads.deferToThreadPool(self.reactor, self.reactor.getThreadPool(), scan)

    def watch(
        self, folder: str, on_change: Callable[[Change], Any], subdirs: Iterable[str] = ()
    ) -> list[str] | None:
        """Have inotify call ``on_change`` when something changes below ``folder``.

        Returns None when inotify is off or cannot watch the folder, else the subfolders
        newly watched below a folder already watched (see :meth:`ChangeTrigger.watch`).
        """
        if self._trigger is None:
            return None
        return self._trigger.watch(folder, on_change, subdirs)

    def unwatch(self, folder: str) -> None:
        """Stop watching a folder."""
        if self._trigger is not None:
            self._trigger.unwatch(folder)

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

    def ignored(self) -> list[dict[str, Any]]:
        """Every entry of incoming that is not taken, with the reason."""
        return [item for t in self.tasks.values() for item in t.ignored()]

    def claims(self, component: Any) -> bool:
        """This admin watches its folders itself: no monitor on a worker is its own."""
        return False
