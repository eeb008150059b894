"""Early re-checks from inotify (through watchdog); the periodic scan stays the truth.

An event only says "look again soon": a lost event, an overflow or a watch that dies
with a deleted subfolder costs latency, never a file.  Network filesystems have no
inotify; ``monitoring.mode: poll`` turns this off.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.logger import Logger


class InotifyUnavailable(Exception):
    """inotify cannot be used here (not Linux, or watchdog lacks it)."""


class ChangeTrigger:
    """Watches folders recursively and calls ``on_change(folder)`` on the reactor thread."""

    log = Logger()

    def __init__(self, reactor: Any) -> None:
        self.reactor = reactor
        self._observer: Any = None
        self._watches: dict[str, Any] = {}

    @staticmethod
    def available() -> bool:
        """Whether inotify can be used on this host."""
        try:
            from watchdog.observers.inotify import InotifyObserver  # noqa: F401
        except Exception:
            return False
        return True

    def start(self) -> None:
        """Start the watcher thread."""
        try:
            from watchdog.observers.inotify import InotifyObserver
        except Exception as e:  # pragma: no cover - non-Linux
            raise InotifyUnavailable(str(e)) from e
        self._observer = InotifyObserver()
        self._observer.daemon = True
        self._observer.start()

    def watch(self, folder: str, on_change: Callable[[str], Any]) -> bool:
        """Watch ``folder`` (which must exist); False when the watch cannot be set."""
        if self._observer is None or folder in self._watches:
            return folder in self._watches
        from watchdog.events import FileSystemEventHandler

        reactor = self.reactor

        class Handler(FileSystemEventHandler):
            def on_any_event(self, event: Any) -> None:
                if event.event_type in ("opened", "closed_no_write"):
                    return
                reactor.callFromThread(on_change, folder)

        try:
            self._watches[folder] = self._observer.schedule(Handler(), folder, recursive=True)
        except OSError as e:
            self.log.warn("cannot watch {folder} with inotify: {error}", folder=folder, error=e)
            return False
        return True

    def unwatch(self, folder: str) -> None:
        """Stop watching ``folder``."""
        watch = self._watches.pop(folder, None)
        if watch is not None and self._observer is not None:
            try:
                self._observer.unschedule(watch)
            except (KeyError, OSError):
                pass

    def stop(self) -> None:
        """Stop the watcher thread (joined in a thread by the caller if it wants)."""
        if self._observer is not None:
            self._observer.stop()
            self._observer = None
        self._watches.clear()
