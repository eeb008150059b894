"""A job's checks of what it reads and writes: the source decodes to its end, and each
output opens, has the streams its target asks for and lasts as long as the source."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..media.ffmpeg import decode_check_command, decoded_enough
from ..media.probe import NotMediaError, probe
from ..prognosis import decode_failure, system_failure
from ..records import JobSpec

if TYPE_CHECKING:
    from .job import Job


def tolerances(spec: JobSpec) -> tuple[float, float]:
    """How far an output's duration may be from the source's: seconds, and percent."""
    return (
        float(spec.duration_tolerance),
        float(spec.duration_tolerance_percent),
    )


async def decode_check(
    job: Job, source: str, target: str, commands: list[list[str]] | None = None
) -> float:
    """Decode the whole source; raise a source failure naming where it broke."""
    assert job.info is not None
    duration = job.info.duration
    argv = decode_check_command(job.ffmpeg(), source)
    if commands is not None:
        commands.append(argv)
    result = await job.run_program(argv, target=target, duration=duration)
    last = job.last_progress
    decoded = last.out_time if last else 0.0
    percent = last.percent(duration) if last and duration else None
    if not result.ok:
        raise decode_failure(percent if percent is not None else 0.0)
    absolute, relative = tolerances(job.spec)
    if duration and not decoded_enough(decoded, duration, absolute, relative):
        raise decode_failure(100.0 * decoded / duration)
    return decoded


async def verify_output(job: Job, work: str, target: dict[str, Any]) -> None:
    """An output must open, have the expected streams and the source's duration."""
    source = job.info
    assert source is not None
    name = target["name"]
    try:
        out = await job.thread(probe, work, False)
    except NotMediaError as e:
        raise system_failure(f"output of target {name!r} is invalid: {e}", name, True) from None
    want_video = target["type"] in ("audio-video", "video") and source.video is not None
    want_audio = target["type"] in ("audio-video", "audio") and source.audio is not None
    if want_video and out.video is None:
        raise system_failure(f"output of target {name!r} has no video stream", name, True)
    if want_audio and out.audio is None:
        raise system_failure(f"output of target {name!r} has no audio stream", name, True)
    expected = source.duration
    if expected and out.duration is not None:
        absolute, relative = tolerances(job.spec)
        if abs(out.duration - expected) > max(absolute, expected * relative / 100.0):
            raise system_failure(
                f"output of target {name!r} lasts {out.duration:.2f} s, "
                f"the source {expected:.2f} s",
                name,
                True,
            )
