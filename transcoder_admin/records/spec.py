"""What the admin sends a worker: the JobSpec of one attempt at one file."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import MISSING, dataclass, fields, replace
from typing import Any

from .fields import BadRecord, mapping, number, optional, required


@dataclass(frozen=True, kw_only=True)
class JobSpec:
    """One attempt at one file: everything a worker needs to run its job.

    The admin builds it from the profile as it is when the job starts (``context``);
    paths are virtual (``root:/path``), resolved with the worker's own roots. Each
    target is the media layer's spec of one output (a mapping of basic types).
    """

    job_id: str
    attempt: int
    customer: str
    profile: str
    relpath: str
    source: str
    done: str = ""
    failed: str = ""
    report_done: str = ""
    report_failed: str = ""
    work: str = ""
    targets: tuple[dict[str, Any], ...] = ()
    backend: str = "ffmpeg"
    ffmpeg: str | None = None
    process_priority: int = 0
    #: Seconds the whole transcoding may take (the profile always sets it).
    transcoding_timeout: float = 3600.0
    max_attempts: int = 1
    duration_tolerance: float = 0.5
    duration_tolerance_percent: float = 2.0
    #: Failed jobs' work folders a worker keeps for inspection (the janitor's rule).
    keep_failed: int = 0
    detected: str | None = None
    queued: str | None = None
    #: The source as it was offered (size, times, inode): the job checks it opens that.
    source_identity: Mapping[str, Any] | None = None
    #: The prognostician's rules (``prognosis.Rules`` as basic types); None: the defaults.
    prognosis: Mapping[str, Any] | None = None

    @property
    def key(self) -> tuple[str, str, str]:
        """The file's key: customer, profile and path below incoming."""
        return (self.customer, self.profile, self.relpath)

    def report_path(self, done: bool) -> str:
        """Where the report of a done (or failed) job goes."""
        return self.report_done if done else self.report_failed

    def without_targets(self) -> JobSpec:
        """The spec with no targets: what failing the source and its report need (small)."""
        return replace(self, targets=())

    def to_wire(self) -> dict[str, Any]:
        """Basic types."""
        value = {name: getattr(self, name) for name in _REQUIRED}
        for name, default in _DEFAULTS.items():  # a default need not travel
            given = getattr(self, name)
            if given != default:
                value[name] = given
        if self.targets:
            value["targets"] = [dict(t) for t in self.targets]
        if self.source_identity is not None:
            value["source_identity"] = dict(self.source_identity)
        if self.prognosis is not None:
            value["prognosis"] = dict(self.prognosis)
        return value

    @classmethod
    def from_wire(cls, value: Any) -> JobSpec:
        """The record of a wire value; BadRecord names a missing or wrong field."""
        data = mapping(value, "spec", required=True)
        targets = data.get("targets") or []
        if not isinstance(targets, list) or not all(isinstance(t, Mapping) for t in targets):
            raise BadRecord("targets", "expected a list of mappings")
        rules = data.get("prognosis")
        if rules is not None and not isinstance(rules, Mapping):
            raise BadRecord("prognosis", f"expected a mapping, not {rules!r}")
        identity = data.get("source_identity")
        if identity is not None and not isinstance(identity, Mapping):
            raise BadRecord("source_identity", f"expected a mapping, not {identity!r}")
        given: dict[str, Any] = {}
        for name, kind in _SPEC_OPTIONAL.items():
            if data.get(name) is not None:
                given[name] = number(data, name) if kind is float else optional(data, name, kind)
        attempt = data.get("attempt")
        if isinstance(attempt, bool) or not isinstance(attempt, int) or attempt < 1:
            raise BadRecord("attempt", f"expected a positive integer, not {attempt!r}")
        return cls(
            job_id=required(data, "job_id"),
            attempt=attempt,
            customer=required(data, "customer"),
            profile=required(data, "profile"),
            relpath=required(data, "relpath"),
            source=required(data, "source"),
            targets=tuple(targets),
            source_identity=identity,
            prognosis=rules,
            **given,
        )


#: The spec's optional fields and their wire types (numbers: int or float).
_SPEC_OPTIONAL: dict[str, Any] = {
    "done": str,
    "failed": str,
    "report_done": str,
    "report_failed": str,
    "work": str,
    "backend": str,
    "ffmpeg": str,
    "process_priority": int,
    "transcoding_timeout": float,
    "max_attempts": int,
    "duration_tolerance": float,
    "duration_tolerance_percent": float,
    "keep_failed": int,
    "detected": str,
    "queued": str,
}


#: Fields that ``to_wire`` sends as copies of their own (lists and mappings).
_CONTAINERS = ("targets", "source_identity", "prognosis")
#: The plain fields with a default, and the default (one that is not sent, as it is).
_DEFAULTS: dict[str, Any] = {
    f.name: f.default
    for f in fields(JobSpec)
    if f.default is not MISSING and f.name not in _CONTAINERS
}
_REQUIRED = tuple(
    f.name for f in fields(JobSpec) if f.default is MISSING and f.name not in _CONTAINERS
)
