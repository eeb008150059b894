"""Where the daemons log: stdout (journald under systemd), as text or JSON lines."""

from __future__ import annotations

import sys
from pathlib import PurePath
from typing import Any

from twisted.logger import (
    FilteringLogObserver,
    ILogObserver,
    LogLevel,
    LogLevelFilterPredicate,
    globalLogBeginner,
    jsonFileLogObserver,
    textFileLogObserver,
)

#: Fields whose text is several lines on purpose (a rendered configuration error).
MULTILINE_FIELDS = frozenset({"errors"})


def escaping(observer: Any) -> ILogObserver:
    """An observer that hands ``observer`` each event with its text fields made
    :func:`printable`: a file name with a newline or a terminal escape cannot forge or
    hide a log line.  Twisted's own keys (``log_*``, the traceback included) are kept.
    """

    def observe(event: dict[str, Any]) -> None:
        escaped: dict[str, Any] | None = None
        for key, value in event.items():
            if key.startswith("log_") or key in MULTILINE_FIELDS:
                continue
            if isinstance(value, str | PurePath) and not str(value).isprintable():
                if escaped is None:
                    escaped = dict(event)
                escaped[key] = printable(value)
        observer(event if escaped is None else escaped)

    return observe  # type: ignore[return-value]


def start_logging(fmt: str = "text", level: str = "info") -> None:
    """Log to stdout (journald under systemd) as text or JSON lines, fields escaped."""
    observer: Any = escaping(
        jsonFileLogObserver(sys.stdout) if fmt == "json" else textFileLogObserver(sys.stdout)
    )
    predicate: Any = LogLevelFilterPredicate(defaultLogLevel=LogLevel.levelWithName(level))
    filtered: Any = FilteringLogObserver(observer, [predicate])
    globalLogBeginner.beginLoggingTo([filtered], redirectStandardIO=False)


def printable(text: object) -> str:
    """``text`` on one line: control characters written as escapes (``\\n``, ``\\x1b``),
    so a file name or a remote answer cannot forge a log line."""
    value = str(text)
    if value.isprintable():
        return value
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in value)
