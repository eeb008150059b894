"""What monitoring tells the rest of the admin: a complete file offered, a folder that
could not be scanned."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .scanner import Signature


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
