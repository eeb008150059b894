"""Inheritance: the settings in force at a level, from built-in defaults down through
the admin's ``defaults``, the customer, the profile and the target (the nearest level
that sets a value wins; ``video`` and ``audio`` merge key by key)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..config.model import (
    Inheritable,
)

# Built-in defaults under the admin's ``defaults`` section.
BUILTIN = {
    "process_priority": 10,
    "transcoding_timeout": 3600.0,
    "post_process_timeout": 60.0,
    "max_attempts": 2,
    "allow_without_audio": False,
    "allow_without_video": False,
}
DEFAULT_EXTENSION = {
    "audio-video": "mp4",
    "video": "mp4",
    "audio": "m4a",
    "thumbnails": "jpg",
}
DEFAULT_VIDEO_CODEC = {"mp4": "h264", "mov": "h264", "matroska": "h264", "webm": "vp9"}
DEFAULT_AUDIO_CODEC = {
    "mp4": "aac",
    "mov": "aac",
    "matroska": "aac",
    "ipod": "aac",
    "webm": "opus",
    "ogg": "vorbis",
    "mp3": "mp3",
}
EXTENSION_MUXER = {
    "mp4": "mp4",
    "m4v": "mp4",
    "mov": "mov",
    "mkv": "matroska",
    "webm": "webm",
    "ogg": "ogg",
    "oga": "ogg",
    "ogv": "ogg",
    "mp3": "mp3",
    "m4a": "ipod",
}


@dataclass(frozen=True)
class Effective:
    """The settings in force for one target after inheritance."""

    process_priority: int
    transcoding_timeout: float
    post_process_timeout: float
    max_attempts: int
    allow_without_audio: bool
    allow_without_video: bool
    video: dict[str, Any]
    audio: dict[str, Any]


def layer(levels: list[Inheritable | None]) -> Effective:
    values: dict[str, Any] = dict(BUILTIN)
    video: dict[str, Any] = {}
    audio: dict[str, Any] = {}
    for level in levels:
        if level is None:
            continue
        for key in BUILTIN:
            value = getattr(level, key)
            if value is not None:
                values[key] = value
        for settings, merged in ((level.video, video), (level.audio, audio)):
            if settings is not None:
                merged.update(settings.model_dump(exclude_none=True))
    return Effective(video=video, audio=audio, **values)
