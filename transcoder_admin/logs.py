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
