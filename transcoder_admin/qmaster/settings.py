"""Every setting of the Qmaster client in one frozen value.

The admin config's ``qmaster`` keys map one to one onto these fields (dashes for
underscores), all but ``batch-timeout`` (the profile's transcoding timeout bounds each
batch) and ``max-output``; :meth:`QmasterSettings.from_mapping` reads them by those
names.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

LOCAL_CLUSTER = "This Computer"
DEFAULT_COMPRESSOR = "/Applications/Compressor.app/Contents/MacOS/Compressor"
DEFAULT_BATCH_MONITOR = "/Applications/Utilities/Batch Monitor.app/Contents/MacOS/Batch Monitor"


@dataclass(frozen=True)
class QmasterSettings:
    """How to reach Compressor and Batch Monitor, and how long to wait for them.

    Times are seconds. ``batch_timeout`` None means "no bound" (the admin passes the
    profile's transcoding timeout per batch instead). ``command_prefix`` runs both tools
    through another program, e.g. ``("ssh", "mac-encoder")``; each argument after it is
    then quoted for the remote shell. ``check_paths`` checks on this host, before
    running anything, that the tools are executables and that sources, setting files
    and destination folders exist: turn it off when the paths only exist on the Mac
    (tools are never checked with a command prefix).
    """

    compressor: str = DEFAULT_COMPRESSOR
    batch_monitor: str = DEFAULT_BATCH_MONITOR
    cluster: str = LOCAL_CLUSTER
    local_cluster: str = LOCAL_CLUSTER
    fallback_to_local: bool = True
    submission_timeout: float = 60.0
    status_timeout: float = 30.0
    poll_interval: float = 15.0
    status_grace: float = 300.0
    batch_timeout: float | None = None
    cancel_on_timeout: bool = True
    command_prefix: tuple[str, ...] = ()
    priority: str = "medium"
    destination_suffix: str = ".mov"
    cancel_flag: str = "-cancel"
    check_paths: bool = True
    max_output: int = field(default=256 * 1024, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "command_prefix", tuple(str(a) for a in self.command_prefix))
        problems = []
        for name in ("submission_timeout", "status_timeout"):
            if not getattr(self, name) > 0:
                problems.append(f"{name} must be more than 0")
        for name in ("poll_interval", "status_grace"):
            if getattr(self, name) < 0:
                problems.append(f"{name} must not be negative")
        if self.batch_timeout is not None and not self.batch_timeout > 0:
            problems.append("batch_timeout must be more than 0 (or None)")
        if not self.compressor or not self.batch_monitor:
            problems.append("compressor and batch_monitor must be paths")
        if problems:
            raise ValueError("; ".join(problems))

    def replace(self, **changes: Any) -> QmasterSettings:
        """A copy with ``changes`` applied (and validated)."""
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> QmasterSettings:
        """Settings from config-style keys (``submission-timeout``, ``command-prefix``, …).

        Unknown keys raise ValueError naming them; ``fallback-to-local`` is the config
        name of ``fallback_to_local`` and ``command-prefix`` may be a list of strings.
        """
        names = {f.name for f in dataclasses.fields(cls)}
        changes: dict[str, Any] = {}
        unknown = []
        for key, value in values.items():
            name = key.replace("-", "_")
            if name not in names:
                unknown.append(key)
            elif name == "command_prefix":
                changes[name] = _argv_tuple(value)
            else:
                changes[name] = value
        if unknown:
            raise ValueError(f"unknown qmaster settings: {', '.join(sorted(unknown))}")
        return cls(**changes)


def _argv_tuple(value: Any) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise ValueError("command-prefix must be a list of arguments, e.g. [ssh, mac-encoder]")
    return tuple(str(v) for v in value)


__all__ = ["DEFAULT_BATCH_MONITOR", "DEFAULT_COMPRESSOR", "LOCAL_CLUSTER", "QmasterSettings"]
