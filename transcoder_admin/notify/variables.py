"""The variables of a notification: what a finished file's report says, by name.

Every name of ``config.notify.VARIABLES`` has a value (never None: an empty string or
0 when the report does not know it), so a template always renders.  Paths are the
admin's local paths; ``inputRelPath`` and ``outputRelPath`` are relative to the
incoming and outgoing folders.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from ..config.notify import FILE_VARIABLES, TARGET_VARIABLES
from ..records import Report, SourceFacts, TargetOutcome

#: Where a virtual path (``root:/path``) is on this host; None when it cannot be known.
Locate = Callable[[str], str | None]


def file_variables(
    report: Report, *, source_final: str | None, output_folder: str | None, locate: Locate
) -> dict[str, Any]:
    """The variables of a file's notification.

    ``source_final`` is where the source ended (done or failed) and ``output_folder``
    the profile's outgoing folder for the file, both virtual paths.
    """
    info = report.source_info or SourceFacts()
    size = report.file.size if report.file and report.file.size is not None else 0
    duration = info.duration or 0.0
    whole = int(duration)
    failure = report.failure
    values: dict[str, Any] = {
        "success": int(report.done),
        "trigger": "file-done" if report.done else "file-failed",
        "jobId": report.job_id,
        "reportPath": _local(locate, report.report_path),
        "failureKind": failure.kind if failure else "",
        "errorMessage": failure.reason if failure else "",
        "inputFile": _local(locate, source_final),
        "inputRelPath": report.relpath,
        "outputFixedDir": _local(locate, output_folder),
        "customerName": report.customer,
        "profileName": report.profile,
        "sourceMime": info.mime_type or "",
        "sourceHasAudio": int(info.has_audio),
        "sourceHasVideo": int(info.has_video),
        "sourceVideoWidth": info.width or 0,
        "sourceVideoHeight": info.height or 0,
        "sourceDuration": float(duration),
        "sourceSize": size,
        "sourceBitrate": info.bit_rate or 0,
        "sourceLength": _length(duration),
        "sourceHours": whole // 3600,
        "sourceMinutes": whole // 60 % 60,
        "sourceSeconds": whole % 60,
        "mediaContainer": info.format_name or "",
        "mediaVideoCodec": info.video_codec or "",
        "mediaAudioCodec": info.audio_codec or "",
        "mediaFramerate": float(info.fps or 0.0),
        "mediaAudioRate": info.audio_rate or 0,
        "mediaAudioChannels": info.audio_channels or 0,
    }
    assert tuple(values) == FILE_VARIABLES, "every file variable, in order"
    return values


def target_variables(
    base: dict[str, Any], target: TargetOutcome, *, output_folder: str | None, locate: Locate
) -> dict[str, Any]:
    """A target's notification: the file's variables and the target's own
    (``outputRelPath`` is relative to ``output_folder``, the profile's outgoing folder)."""
    first = target.outputs[0] if target.outputs else None
    folder = _local(locate, output_folder)
    output = _local(locate, first)
    relative = ""
    if output and folder and output.startswith(folder.rstrip("/") + "/"):
        relative = os.path.relpath(output, folder)
    done = target.outcome == "done"
    values = {
        **base,
        "success": int(done),
        "trigger": "target-done" if done else "target-failed",
        "targetName": target.name,
        "targetType": target.type,
        "targetSuccess": int(done),
        "targetOutputs": len(target.outputs),
        "outputFile": output,
        "outputRelPath": relative,
    }
    if not done and target.reason:
        values["errorMessage"] = target.reason
    assert tuple(values)[len(FILE_VARIABLES) :] == TARGET_VARIABLES
    return values


def _local(locate: Locate, virtual: str | None) -> str:
    if not virtual:
        return ""
    return locate(virtual) or virtual


def _length(seconds: float) -> str:
    """``H:MM:SS`` of a duration."""
    whole = int(seconds)
    return f"{whole // 3600}:{whole // 60 % 60:02d}:{whole % 60:02d}"


__all__ = ["Locate", "file_variables", "target_variables"]
