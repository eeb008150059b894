"""A job's checks of what it reads and writes: the source decodes to its end, and each
output opens, has the streams its target asks for and lasts as long as the source."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ..media.ffmpeg import decode_check_command, decoded_enough
from ..media.probe import MediaInfo, NotMediaError, describe
from ..prognosis import JobFailed, decode_failure, source_failure, system_failure
from ..records import JobSpec
from .analyse import run_probe
from .report import note_failure

if TYPE_CHECKING:
    from .job import Job


def tolerances(spec: JobSpec) -> tuple[float, float]:
    """How far an output's duration may be from the source's: seconds, and percent."""
    return (
        float(spec.duration_tolerance),
        float(spec.duration_tolerance_percent),
    )


#: What ffmpeg writes once it has described its inputs and opened its outputs.
_DESCRIBED = b"\nOutput #0"


async def decode_check(
    job: Job, source: str, target: str, commands: list[list[str]] | None = None
) -> float:
    """Decode the whole source; raise a source failure naming where it broke.

    When the source has not been described yet (``job.info`` is None: the backend said
    its first program describes it), this run does it: ffmpeg logs its description of
    the source first, read as soon as it is complete (for the progress in percent) and
    once more at the end, before the decoding is judged.
    """
    describing = job.info is None
    size = int((job.source_file or {}).get("size") or 0)

    tried = False

    def known_duration() -> float | None:
        nonlocal tried
        if job.info is None and not tried and _DESCRIBED in (stderr := job.program_stderr()):
            tried = True  # once: a description that does not read is judged at the end
            with contextlib.suppress(NotMediaError):
                job.info = describe(stderr, source, size)
        return job.info.duration if job.info else None

    argv = decode_check_command(job.ffmpeg(), source, describe=describing)
    if commands is not None:
        commands.append(argv)
    result = await job.run_program(argv, target=target, duration=known_duration)
    if describing:
        try:
            job.info = describe(result.stderr_head, source, size)
        except NotMediaError as e:
            raise source_failure(str(e)) from None
    duration = job.info.duration if job.info else None
    last = job.last_progress
    decoded = last.out_time if last else 0.0
    percent = last.percent(duration) if last and duration else None
    if not result.ok:
        raise decode_failure(percent if percent is not None else 0.0)
    absolute, relative = tolerances(job.spec)
    if duration and not decoded_enough(decoded, duration, absolute, relative):
        raise decode_failure(100.0 * decoded / duration)
    return decoded


async def verify_outputs(job: Job, outputs: Sequence[tuple[str, dict[str, Any]]]) -> None:
    """Each output must open, have the streams its target asks for and the source's
    duration; a system failure naming the first that does not (its target's entry in
    ``job.results`` says why).

    One ffmpeg describes them all (``ffmpeg -i A -i B``): starting the program is most of
    a probe's cost. It stops at the first output it cannot open, the one named invalid.
    """
    if not outputs:
        return
    try:
        await _verify(job, outputs)
    except JobFailed as e:
        for result in job.results:
            if result["name"] == e.failure.target:
                note_failure(result, e)
        raise


async def _verify(job: Job, outputs: Sequence[tuple[str, dict[str, Any]]]) -> None:
    paths = [work for work, _target in outputs]
    sizes = await job.thread(_sizes, paths)
    only = outputs[0][1]["name"] if len(outputs) == 1 else None
    try:
        stderr = (await run_probe(job, paths, only)).stderr_head
    except NotMediaError as e:  # it took too long: no output is known to be good
        raise _invalid(outputs[0][1]["name"], e) from None
    for (work, target), size in zip(outputs, sizes, strict=True):
        try:
            out = describe(stderr, work, size)
        except NotMediaError as e:
            raise _invalid(target["name"], e) from None
        _check_output(job, out, target)


def _invalid(name: str, error: NotMediaError) -> JobFailed:
    return system_failure(f"output of target {name!r} is invalid: {error}", name, True)


def _sizes(paths: Sequence[str]) -> list[int]:
    return [os.path.getsize(path) for path in paths]


def _check_output(job: Job, out: MediaInfo, target: dict[str, Any]) -> None:
    """The streams and the duration of an output, against its target and the source."""
    source = job.info
    assert source is not None
    name = target["name"]
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
