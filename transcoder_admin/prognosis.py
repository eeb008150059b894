"""The prognostician: what kind of failure a job met, and whether to try again.

Source problems (not media, corrupt, wrong streams) are the file's fault: trying again
gives the same answer.  System problems (timeouts, crashes, lost workers, full disks)
may go away, so the job is retried up to the profile's ``max-attempts``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

SOURCE = "source"
SYSTEM = "system"
POST_PROCESS = "post-process"
CANCELLED = "cancelled"
#: The source changed while its job ran (re-uploaded, still being written): the attempt
#: is discarded without counting, and the new file is offered as a new arrival.
CHANGED = "changed"
KINDS = (SOURCE, SYSTEM, POST_PROCESS, CANCELLED, CHANGED)


@dataclass(frozen=True)
class JobFailure:
    """Why a job failed: a kind and a reason a person understands."""

    kind: str
    reason: str
    target: str | None = None
    invalid_output: bool = False

    @property
    def retryable(self) -> bool:
        """Whether another attempt could succeed."""
        return self.kind == SYSTEM

    def to_dict(self) -> dict[str, Any]:
        """Basic types for reports and the wire."""
        return {
            "kind": self.kind,
            "reason": self.reason,
            "target": self.target,
            "invalid_output": self.invalid_output,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> JobFailure:
        """The inverse of :meth:`to_dict`."""
        return cls(
            kind=data.get("kind", SYSTEM),
            reason=data.get("reason", "unknown failure"),
            target=data.get("target"),
            invalid_output=bool(data.get("invalid_output", False)),
        )


class JobFailed(Exception):
    """Raised inside a job to end it with a :class:`JobFailure`."""

    def __init__(self, failure: JobFailure) -> None:
        super().__init__(failure.reason)
        self.failure = failure


def source_failure(reason: str, target: str | None = None) -> JobFailed:
    """A failure caused by the source file itself (not retried)."""
    return JobFailed(JobFailure(SOURCE, reason, target))


def system_failure(reason: str, target: str | None = None, invalid: bool = False) -> JobFailed:
    """A failure of the machine or the program (retried up to max-attempts)."""
    return JobFailed(JobFailure(SYSTEM, reason, target, invalid))


def missing_stream(kind: str, target_type: str, target: str) -> JobFailed:
    """The source lacks a stream the target needs."""
    return source_failure(f"no {kind} stream for {target_type} target {target!r}", target)


def source_changed(reason: str = "source changed during the job") -> JobFailed:
    """The source is no longer the file that was offered: nothing is judged."""
    return JobFailed(JobFailure(CHANGED, reason))


def decode_failure(percent: float | None) -> JobFailed:
    """The source could not be decoded through to its end."""
    where = f" at {percent:.0f}%" if percent is not None else ""
    return source_failure(f"decode error{where}")


# -- the prognostician's rules: which failures are expected of junk uploads -------------

WRONG_MIME_TYPE = "wrong_mime_type"
WRONG_FILE_TYPE = "wrong_file_type"
VIDEO_TOO_SMALL = "video_too_small"
AUDIO_TOO_SMALL = "audio_too_small"
VERDICTS = (WRONG_MIME_TYPE, WRONG_FILE_TYPE, VIDEO_TOO_SMALL, AUDIO_TOO_SMALL)


@dataclass(frozen=True)
class Rules:
    """The admin's ``diagnosis`` section, as a job carries it (basic types on the wire).

    ``mime_types`` and ``file_types`` are regular expressions that must match a whole
    MIME type, or a whole file extension or container format name.
    """

    mime_types: tuple[str, ...] = ("text/.*", "image/.*")
    file_types: tuple[str, ...] = ()
    min_video_size: int = 1024
    min_audio_size: int = 100

    def to_wire(self) -> dict[str, Any]:  # noqa: D102
        return {
            "mime_types": list(self.mime_types),
            "file_types": list(self.file_types),
            "min_video_size": self.min_video_size,
            "min_audio_size": self.min_audio_size,
        }

    @classmethod
    def from_wire(cls, data: dict[str, Any]) -> Rules:  # noqa: D102
        return cls(
            mime_types=tuple(str(p) for p in data.get("mime_types", cls.mime_types)),
            file_types=tuple(str(p) for p in data.get("file_types", ())),
            min_video_size=int(data.get("min_video_size", cls.min_video_size)),
            min_audio_size=int(data.get("min_audio_size", cls.min_audio_size)),
        )


def prognose(
    rules: Rules,
    *,
    mime_type: str | None,
    file_types: tuple[str, ...],
    has_video: bool,
    has_audio: bool,
    size: int | None,
) -> str | None:
    """Why a failed source was to be expected (a verdict of ``VERDICTS``), or None when
    its failure says something about the farm rather than the upload."""
    if mime_type and any(re.fullmatch(p, mime_type, re.IGNORECASE) for p in rules.mime_types):
        return WRONG_MIME_TYPE
    if any(re.fullmatch(p, t, re.IGNORECASE) for p in rules.file_types for t in file_types if t):
        return WRONG_FILE_TYPE
    if size is not None and has_video and size < rules.min_video_size:
        return VIDEO_TOO_SMALL
    if size is not None and has_audio and not has_video and size < rules.min_audio_size:
        return AUDIO_TOO_SMALL
    return None
