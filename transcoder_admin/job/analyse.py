"""A job's first stage: open the source once, copy it privately, probe it, and check that
it has the streams every target needs."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..context.paths import Roots
from ..media.probe import MediaInfo
from ..prognosis import missing_stream
from ..records import JobSpec
from .safefs import Identity
from .source import check_name_limits, prepare, private_name

#: Target types whose outputs are made from the decoded picture.
PICTURE_TARGETS = ("audio-video", "video", "thumbnails")


def checked_prepare(
    roots: Roots, spec: JobSpec, work_dir: str, source: str, needs_picture: bool
) -> tuple[dict[str, Any], MediaInfo, str, Identity]:
    """A job's first steps in one trip to a thread: its names' limits, then ``prepare``."""
    check_name_limits(roots, spec)
    return prepare(
        work_dir,
        source,
        needs_picture,
        spec.source_identity,
        private_name(spec.relpath),
    )


def needs_picture(targets: Sequence[dict[str, Any]]) -> bool:
    """Whether a target scales or rotates the picture (the rotation must be known)."""
    return any(t["type"] in PICTURE_TARGETS for t in targets)


def check_streams(info: MediaInfo, target: dict[str, Any]) -> None:
    """A source failure if the source lacks a stream the target needs."""
    kind, name = target["type"], target["name"]
    if kind in ("video", "thumbnails") and info.video is None:
        raise missing_stream("video", kind, name)
    if kind == "audio" and info.audio is None:
        raise missing_stream("audio", kind, name)
    if kind == "audio-video":
        if info.video is None and not target.get("allow_without_video"):
            raise missing_stream("video", kind, name)
        if info.audio is None and not target.get("allow_without_audio"):
            raise missing_stream("audio", kind, name)
