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
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from twisted.application.service import Service
from twisted.internet import defer, task, threads
from twisted.logger import Logger

from ..context.paths import Roots
from ..events import Event
from ..reactors import IFarmReactor
from .offers import FileOffer, ScanProblem
from .scanner import ScanResult, ignore_matcher, scan_folder, scan_paths
from .tasks import TRIGGER_DELAY, MonitoringTask, ScanRequest
from .trigger import Change, ChangeTrigger
from .writers import ignore_lease_breaks, open_for_writing

if TYPE_CHECKING:  # a worker's monitors get plain settings: no configuration model loaded
    from ..config.model import MonitoringSection
    from ..context.customers import CustomerContext

__all__ = [
    "TRIGGER_DELAY",
    "FileOffer",
    "Monitoring",
    "MonitoringTask",
    "ScanProblem",
    "ScanRequest",
]


class Monitoring(Service):
    """The monitoring part: tasks per customer, the poll loop and the inotify trigger."""

    log = Logger()

    def __init__(
        self,
        settings: MonitoringSection,
        roots: Roots,
        reactor: IFarmReactor,
        host: str | None = None,
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
                for rel in r.arrived:  # renamed into place: as this scan found it
                    if (found := files.get(rel)) is not None:
                        check[(name, rel)] = (os.path.join(r.folder, rel), found[0], found[1])
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
