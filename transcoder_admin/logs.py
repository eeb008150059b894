"""Where the daemons log: stdout (journald under systemd), as text or JSON lines."""

from __future__ import annotations

import sys
from typing import Any

from twisted.logger import (
    FilteringLogObserver,
    LogLevel,
    LogLevelFilterPredicate,
    globalLogBeginner,
    jsonFileLogObserver,
    textFileLogObserver,
)


def start_logging(fmt: str = "text", level: str = "info") -> None:
    """Log to stdout (journald under systemd) as text or JSON lines."""
    observer: Any = (
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
