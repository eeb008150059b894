"""A job's first stage: open the source once, copy it privately, probe it, and check that
it has the streams every target needs."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ..context.paths import Roots
from ..media.probe import (
    PROBE_TIMEOUT,
    MediaInfo,
    describe,
    probe_command,
    undescribed,
)
from ..prognosis import missing_stream
from ..records import JobSpec
from .process import ProcessResult
from .safefs import Identity
from .source import check_name_limits, prepare, private_name

if TYPE_CHECKING:
    from .job import Job


def checked_prepare(
    roots: Roots, spec: JobSpec, work_dir: str, source: str
) -> tuple[dict[str, Any], str, Identity]:
    """A job's first steps in one trip to a thread: its names' limits, then ``prepare``."""
    check_name_limits(roots, spec)
    return prepare(work_dir, source, spec.source_identity, private_name(spec.relpath))


def checks_describe(targets: Sequence[dict[str, Any]]) -> bool:
    """Whether the targets' first program (the decode check of an identity target) can
    describe the source: no target needs it described before it runs."""
    return bool(targets) and all(t["type"] == "identity" for t in targets)


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


async def run_probe(job: Job, paths: Sequence[str], target: str | None) -> ProcessResult:
    """ffmpeg describing ``paths``, run as one of the job's programs (killed with it, its
    CPU time counted); NotMediaError if it takes too long."""
    argv = probe_command(job.ffmpeg(), *paths)
    result = await job.run_program(argv, target=target, timeout=PROBE_TIMEOUT)
    if result.timed_out:
        raise undescribed(PROBE_TIMEOUT)
    return result


async def probe(job: Job, path: str, size: int) -> MediaInfo:
    """ffmpeg's description of the source ``path`` (``size`` bytes, not empty);
    NotMediaError if it is not media."""
    return describe((await run_probe(job, [path], None)).stderr_head, path, size)
