"""What a worker answers: a job's Outcome, and its Report once committed (the package's
docstring says how they travel)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..prognosis import KINDS, VERDICTS, JobFailure
from .fields import BadRecord, file_name, mapping, number, optional, required, text, time

OUTCOMES = ("done", "failed")


# -- what a report holds ----------------------------------------------------------------


@dataclass(frozen=True)
class Times:
    """When the file was detected, queued, started and finished (ISO 8601 UTC)."""

    detected: str | None = None
    queued: str | None = None
    started: str | None = None
    finished: str | None = None

    def to_wire(self) -> dict[str, Any]:  # noqa: D102
        return {
            "detected": self.detected,
            "queued": self.queued,
            "started": self.started,
            "finished": self.finished,
        }

    @classmethod
    def from_wire(cls, value: Any, name: str = "times") -> Times:  # noqa: D102
        data = mapping(value, name)
        return cls(
            time(data, "detected", name),
            time(data, "queued", name),
            time(data, "started", name),
            time(data, "finished", name),
        )


@dataclass(frozen=True)
class FileFacts:
    """The source file as the job found it."""

    size: int | None = None
    checksum: str | None = None
    ctime: str | None = None
    mtime: str | None = None
    #: The MIME type its first bytes suggest (for a file that is not media, the only one).
    mime_guess: str | None = None

    def to_wire(self) -> dict[str, Any]:  # noqa: D102
        return {
            "size": self.size,
            "checksum": self.checksum,
            "ctime": self.ctime,
            "mtime": self.mtime,
            "mime_guess": self.mime_guess,
        }

    @classmethod
    def from_wire(cls, value: Any, name: str = "file") -> FileFacts:  # noqa: D102
        data = mapping(value, name)
        return cls(
            size=optional(data, "size", int, f"{name}.size"),
            checksum=optional(data, "checksum", str, f"{name}.checksum"),
            ctime=time(data, "ctime", name),
            mtime=time(data, "mtime", name),
            mime_guess=optional(data, "mime_guess", str, f"{name}.mime_guess"),
        )


@dataclass(frozen=True)
class SourceFacts:
    """What analysis found in the source: its container and main streams."""

    mime_type: str | None = None
    format_name: str | None = None
    duration: float | None = None
    bit_rate: int | None = None
    has_video: bool = False
    video_codec: str | None = None
    width: int | None = None
    height: int | None = None
    fps: float | None = None
    has_audio: bool = False
    audio_codec: str | None = None
    audio_rate: int | None = None
    audio_channels: int | None = None

    @property
    def file_type(self) -> str:
        """``video``, ``audio`` or ``unknown``: what the source mainly is."""
        return "video" if self.has_video else "audio" if self.has_audio else "unknown"

    def to_wire(self) -> dict[str, Any]:  # noqa: D102
        video = {"codec": self.video_codec, "width": self.width, "height": self.height}
        audio = {"codec": self.audio_codec, "rate": self.audio_rate}
        return {
            "mime_type": self.mime_type,
            "format_name": self.format_name,
            "duration": self.duration,
            "bit_rate": self.bit_rate,
            "video": {**video, "fps": self.fps} if self.has_video else None,
            "audio": {**audio, "channels": self.audio_channels} if self.has_audio else None,
        }

    @classmethod
    def from_wire(cls, value: Any, name: str = "source_info") -> SourceFacts:  # noqa: D102
        data = mapping(value, name)
        video = mapping(data.get("video"), f"{name}.video")
        audio = mapping(data.get("audio"), f"{name}.audio")
        return cls(
            mime_type=optional(data, "mime_type", str, f"{name}.mime_type"),
            format_name=optional(data, "format_name", str, f"{name}.format_name"),
            duration=number(data, "duration", f"{name}.duration"),
            bit_rate=optional(data, "bit_rate", int, f"{name}.bit_rate"),
            has_video=bool(video),
            video_codec=optional(video, "codec", str, f"{name}.video.codec"),
            width=optional(video, "width", int, f"{name}.video.width"),
            height=optional(video, "height", int, f"{name}.video.height"),
            fps=number(video, "fps", f"{name}.video.fps"),
            has_audio=bool(audio),
            audio_codec=optional(audio, "codec", str, f"{name}.audio.codec"),
            audio_rate=optional(audio, "rate", int, f"{name}.audio.rate"),
            audio_channels=optional(audio, "channels", int, f"{name}.audio.channels"),
        )


@dataclass(frozen=True)
class TargetOutcome:
    """One target's end: done or failed, why, and the outputs it made."""

    name: str
    type: str
    outcome: str
    reason: str | None = None
    outputs: tuple[str, ...] = ()
    invalid_output: bool = False

    def to_wire(self) -> dict[str, Any]:  # noqa: D102
        return {
            "name": self.name,
            "type": self.type,
            "outcome": self.outcome,
            "reason": self.reason,
            "outputs": list(self.outputs),
            "invalid_output": self.invalid_output,
        }

    @classmethod
    def from_wire(cls, value: Any, name: str = "target") -> TargetOutcome:  # noqa: D102
        data = mapping(value, name)
        outputs = data.get("outputs") or []
        if not isinstance(outputs, list):
            raise BadRecord(f"{name}.outputs", "expected a list")
        return cls(
            name=optional(data, "name", str, f"{name}.name") or "",
            type=optional(data, "type", str, f"{name}.type") or "",
            outcome=optional(data, "outcome", str, f"{name}.outcome") or "failed",
            reason=optional(data, "reason", str, f"{name}.reason"),
            outputs=tuple(text(o, f"{name}.outputs") for o in outputs),
            invalid_output=bool(data.get("invalid_output")),
        )


# -- the records ------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Outcome:
    """A job's result as its worker gives it: final for its work; nothing moved yet."""

    job_id: str
    attempt: int
    outcome: str
    failure: JobFailure | None = None
    report_path: str | None = None
    worker: str | None = None

    @property
    def done(self) -> bool:
        """Whether the job succeeded."""
        return self.outcome == "done"

    def to_wire(self) -> dict[str, Any]:
        """Basic types, in the report file's shape."""
        return {
            "job_id": self.job_id,
            "attempt": self.attempt,
            "outcome": self.outcome,
            "failure": self.failure.to_dict() if self.failure else None,
            "report_path": self.report_path,
            "worker": self.worker,
        }

    @classmethod
    def from_wire(cls, value: Any) -> Outcome:
        """The record of a wire value (or a report file); BadRecord names a bad field."""
        return cls(**_outcome_fields(mapping(value, "outcome", required=True)))


@dataclass(frozen=True, kw_only=True)
class Report(Outcome):
    """A job's report as the admin keeps it: the outcome committed, with its facts."""

    customer: str
    profile: str
    relpath: str
    source: str | None = None
    #: When the file was detected, queued, started and finished.
    times: Times = field(default_factory=Times)
    #: False when the worker undid a commit that failed; None when not said.
    committed: bool | None = None
    backend: str | None = None
    machine: str | None = None
    comment: str | None = None
    cpu_time: float | None = None
    real_time: float | None = None
    file: FileFacts | None = None
    source_info: SourceFacts | None = None
    targets: tuple[TargetOutcome, ...] = ()
    qmaster_batch_id: str | None = None
    qmaster_cluster: str | None = None
    #: Why a failed source was to be expected (``prognosis.VERDICTS``), or None.
    verdict: str | None = None
    #: The file name of a failed job's diagnosis, beside its report.
    diagnosis: str | None = None

    @property
    def invalid_output(self) -> bool:
        """Whether a target made output that failed verification."""
        return any(t.invalid_output for t in self.targets) or bool(
            self.failure and self.failure.invalid_output
        )

    def to_wire(self) -> dict[str, Any]:
        """Basic types: the part of the report file the admin needs, in its shape."""
        qmaster = None
        if self.qmaster_batch_id is not None or self.qmaster_cluster is not None:
            qmaster = {"batch_id": self.qmaster_batch_id, "cluster": self.qmaster_cluster}
        return {
            **super().to_wire(),
            "customer": self.customer,
            "profile": self.profile,
            "relpath": self.relpath,
            "source": self.source,
            "times": self.times.to_wire(),
            "committed": self.committed,
            "backend": self.backend,
            "machine": self.machine,
            "comment": self.comment,
            "cpu_time": self.cpu_time,
            "real_time": self.real_time,
            "file": self.file.to_wire() if self.file else None,
            "source_info": self.source_info.to_wire() if self.source_info else None,
            "targets": [t.to_wire() for t in self.targets],
            "qmaster": qmaster,
            "verdict": self.verdict,
            "diagnosis": self.diagnosis,
        }

    @classmethod
    def from_wire(cls, value: Any) -> Report:
        """The record of a wire value or a report file; BadRecord names a bad field."""
        data = mapping(value, "report", required=True)
        targets = data.get("targets") or []
        if not isinstance(targets, list):
            raise BadRecord("targets", "expected a list of mappings")
        qmaster = mapping(data.get("qmaster"), "qmaster")
        committed = data.get("committed")
        if committed is not None and not isinstance(committed, bool):
            raise BadRecord("committed", f"expected true or false, not {committed!r}")
        verdict = data.get("verdict")
        if verdict is not None and verdict not in VERDICTS:
            raise BadRecord("verdict", f"{verdict!r} is not one of {', '.join(VERDICTS)}")
        return cls(
            **_outcome_fields(data),
            customer=required(data, "customer"),
            profile=required(data, "profile"),
            relpath=required(data, "relpath"),
            source=optional(data, "source", str),
            times=Times.from_wire(data.get("times")),
            committed=committed,
            backend=optional(data, "backend", str),
            machine=optional(data, "machine", str),
            comment=optional(data, "comment", str),
            cpu_time=number(data, "cpu_time"),
            real_time=number(data, "real_time"),
            file=FileFacts.from_wire(data["file"]) if data.get("file") is not None else None,
            source_info=(
                SourceFacts.from_wire(data["source_info"])
                if data.get("source_info") is not None
                else None
            ),
            targets=tuple(
                TargetOutcome.from_wire(t, f"targets[{i}]") for i, t in enumerate(targets)
            ),
            qmaster_batch_id=optional(qmaster, "batch_id", str, "qmaster.batch_id"),
            qmaster_cluster=optional(qmaster, "cluster", str, "qmaster.cluster"),
            verdict=verdict,
            diagnosis=file_name(data, "diagnosis"),
        )

    #: A report file is read like a wire value: they have one shape.
    from_document = from_wire


def _outcome_fields(data: Mapping[str, Any]) -> dict[str, Any]:
    outcome = data.get("outcome")
    if outcome not in OUTCOMES:
        raise BadRecord("outcome", f"{outcome!r} is not one of {', '.join(OUTCOMES)}")
    attempt = data.get("attempt", 1)
    if isinstance(attempt, bool) or not isinstance(attempt, int) or attempt < 1:
        raise BadRecord("attempt", f"expected a positive integer, not {attempt!r}")
    failure = _failure(data.get("failure"))
    if outcome == "failed" and failure is None:
        raise BadRecord("failure", "a failed outcome needs one")
    return {
        "job_id": required(data, "job_id"),
        "attempt": attempt,
        "outcome": outcome,
        "failure": failure,
        "report_path": optional(data, "report_path", str),
        "worker": optional(data, "worker", str),
    }


def _failure(value: Any) -> JobFailure | None:
    if value is None:
        return None
    data = mapping(value, "failure")
    kind = data.get("kind")
    if kind not in KINDS:
        raise BadRecord("failure.kind", f"{kind!r} is not one of {', '.join(KINDS)}")
    return JobFailure(
        kind=kind,
        reason=optional(data, "reason", str, "failure.reason") or "unknown failure",
        target=optional(data, "target", str, "failure.target"),
        invalid_output=bool(data.get("invalid_output", False)),
    )
