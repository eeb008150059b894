"""A worker's warnings and errors, kept for its admin (sent with the next heartbeat).

The admin mails them to the ``notifications.debug`` recipients: what went wrong on a
worker reaches a person without anyone reading that worker's log.  Only the farm's own
log events count (namespace ``transcoder_admin``); at most :data:`KEPT` wait between two
heartbeats (the oldest go first), each on one line and at most :data:`MAX_TEXT` long.
"""

from __future__ import annotations

import collections
from typing import Any

from twisted.logger import LogLevel, formatEvent, globalLogPublisher

#: Messages waiting for the next heartbeat, at most.
KEPT = 20
#: Characters of one message, at most.
MAX_TEXT = 1000


class WorkerMessages:
    """Collects the farm's warnings and errors logged in this process."""

    def __init__(self, publisher: Any = globalLogPublisher) -> None:
        self.publisher = publisher
        self.waiting: collections.deque[dict[str, Any]] = collections.deque(maxlen=KEPT)
        self._observing = False

    def start(self) -> None:  # noqa: D102
        if not self._observing:
            self.publisher.addObserver(self)
            self._observing = True

    def stop(self) -> None:  # noqa: D102
        if self._observing:
            self.publisher.removeObserver(self)
            self._observing = False

    def __call__(self, event: dict[str, Any]) -> None:
        """A log event: kept when it is a warning or an error of the farm's own."""
        level = event.get("log_level")
        if level not in (LogLevel.warn, LogLevel.error, LogLevel.critical):
            return
        if not str(event.get("log_namespace", "")).startswith("transcoder_admin"):
            return
        text = " ".join((formatEvent(event) or "").split())[:MAX_TEXT]
        if "log_failure" in event:
            text = f"{text}: {event['log_failure'].getErrorMessage()}"[:MAX_TEXT]
        self.waiting.append({"level": level.name, "text": text, "time": event.get("log_time")})

    def drain(self) -> list[dict[str, Any]]:
        """The messages waiting, oldest first; none wait afterwards."""
        found = list(self.waiting)
        self.waiting.clear()
        return found


__all__ = ["KEPT", "MAX_TEXT", "WorkerMessages"]
