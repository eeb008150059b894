"""One customer's monitoring task: when each profile's folder is scanned, and what a scan
means for each file (pending, offered, removed, ignored)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any

from twisted.internet import defer
from twisted.logger import Logger

from ..observer import Waiters
from .offers import FileOffer, ScanProblem
from .scanner import SYMLINK, ScanResult, Signature
from .tracker import SLACK, StabilityTracker
from .trigger import Change

if TYPE_CHECKING:
    from ..context.customers import CustomerContext, ProfileContext
    from . import Monitoring

TRIGGER_DELAY = 0.05  # coalesce a burst of inotify events into one scan
WRITING = "still open for writing by a process on this host"
HARD_LINKS_HINT = " (monitoring.accept-hard-links: true takes such files)"


@dataclass
class _Wanted:
    """What the next scan of one profile must cover, and when it is due."""

    due: float
    full: bool = False
    paths: set[str] = field(default_factory=set)
    trees: set[str] = field(default_factory=set)
    #: Files renamed into place (``Change.arrived``): complete once a scan confirms them.
    arrived: set[str] = field(default_factory=set)


@dataclass(frozen=True)
class ScanRequest:
    """One folder to scan: all of it (``paths`` None) or only these entries.

    ``candidates`` are the files the stability rule would take now (path → signature):
    those found unchanged are checked for writers on this host; so are the files that
    ``arrived`` by a rename, as the scan finds them.
    """

    folder: str
    paths: frozenset[str] | None = None
    trees: frozenset[str] = frozenset()
    candidates: Mapping[str, Signature] = field(default_factory=dict)
    arrived: frozenset[str] = frozenset()


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
        self._scanned: Waiters[None] = Waiters(monitoring.clock)
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
        """Stop scanning; scans still running are ignored when they return."""
        self._stopped = True
        self._scanned.stop(f"monitoring of {self.name} stopped")
        if self._call is not None and self._call.active():
            self._call.cancel()
        self._wanted.clear()
        for folder in self.folders.values():
            self.monitoring.unwatch(folder)

    def when_scanned(self) -> defer.Deferred[None]:
        """Fires once every profile has been scanned in full once."""
        if not self._unscanned:
            return defer.succeed(None)
        return self._scanned.wait()

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
        wanted = self._wanted.get(profile)
        if wanted is not None:
            # Named again without a rename: it was written since, the timing rule decides.
            wanted.arrived.difference_update(change.paths)
            if self.monitoring.settings.atomic_renames:
                wanted.arrived.update(change.arrived)

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
            arrived = frozenset(wanted.arrived)
            if wanted.full:
                requests[name] = ScanRequest(
                    self.folders[name], candidates=candidates, arrived=arrived
                )
            else:
                # files waiting to be stable are re-checked on every scan of their folder
                paths = frozenset(wanted.paths | tracker.pending_paths())
                requests[name] = ScanRequest(
                    self.folders[name], paths, frozenset(wanted.trees), candidates, arrived
                )
            tokens[name] = tracker.begin_scan()
        d = self.monitoring.run_scan(requests)
        d.addCallback(self._apply, tokens, requests)
        d.addErrback(lambda f: self.log.failure("scan of {customer} failed", f, customer=self.name))
        d.addBoth(self._scan_done, requests)

    def _scan_done(self, _: Any, requests: dict[str, ScanRequest]) -> None:
        self._scanning = False
        self._unscanned.difference_update(n for n, r in requests.items() if r.paths is None)
        if not self._unscanned:
            self._scanned.notify(None)
        if self._wanted:
            self._schedule(min(w.due for w in self._wanted.values()))

    def _apply(
        self,
        results: dict[str, ScanResult],
        tokens: dict[str, int],
        requests: dict[str, ScanRequest],
    ) -> None:
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
                arrived=requests[name].arrived,
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
