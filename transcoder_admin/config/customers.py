"""A customer file as frozen values: customer → profiles → targets, each level able to
set what it inherits (the effective value: :mod:`transcoder_admin.context`)."""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import (
    Field,
    field_validator,
    model_validator,
)

from .notify import VARIABLES, Notifying
from .values import (
    AudioBitrate,
    AudioCodec,
    Muxer,
    Nice,
    PositiveFloat,
    PositiveInt,
    Priority,
    Section,
    Subdir,
    VideoBitrate,
    VideoCodec,
)


class VideoSettings(Section):
    """Video stream settings of a target (or a default inherited by targets)."""

    codec: VideoCodec | None = None
    width: PositiveInt | None = None
    height: PositiveInt | None = None
    max_width: PositiveInt | None = None
    max_height: PositiveInt | None = None
    framerate: PositiveFloat | None = None
    bitrate: VideoBitrate = Field(None, description="kbit/s (96k, 2.5M accepted)")
    crf: Annotated[int, Field(ge=0, le=63)] | None = None
    preset: str | None = None
    pixel_aspect_ratio: str | None = None
    upscale: bool | None = None

    @field_validator("pixel_aspect_ratio")
    @classmethod
    def _par(cls, value: str | None) -> str | None:
        if value is None:
            return value
        parts = value.replace("/", ":").split(":")
        if len(parts) != 2 or not all(p.isdigit() and int(p) > 0 for p in parts):
            raise ValueError("expected a ratio such as 1:1 or 16:15")
        return f"{int(parts[0])}:{int(parts[1])}"


class AudioSettings(Section):
    """Audio stream settings of a target (or a default inherited by targets)."""

    codec: AudioCodec | None = None
    bitrate: AudioBitrate = Field(None, description="kbit/s (96k, 2.5M accepted)")
    rate: Literal[8000, 11025, 16000, 22050, 24000, 32000, 44100, 48000, 96000] | None = None
    channels: Annotated[int, Field(ge=1, le=8)] | None = None


class ThumbnailSettings(Section):
    """How a thumbnails target samples images."""

    format: Literal["jpeg", "jpg", "png"] = "jpeg"
    interval: PositiveFloat = 10
    unit: Literal["frames", "seconds", "percent"] = "seconds"
    max_count: PositiveInt = 10
    width: PositiveInt | None = None
    height: PositiveInt | None = None

    @model_validator(mode="after")
    def _percent(self) -> ThumbnailSettings:
        if self.unit == "percent" and self.interval > 100:
            raise ValueError("interval in percent must be at most 100")
        return self


class Inheritable(Notifying):
    """Settings every level may set; the nearest level that sets one wins (but every
    level's notifications fire: ``Notifying``)."""

    process_priority: Nice | None = None
    transcoding_timeout: PositiveFloat | None = None
    post_process_timeout: PositiveFloat | None = None
    max_attempts: Annotated[int, Field(ge=1, le=20)] | None = None
    allow_without_audio: bool | None = None
    allow_without_video: bool | None = None
    video: VideoSettings | None = None
    audio: AudioSettings | None = None


class Folders(Section):
    """Folder templates (``root:/path`` with ``%(customer)s`` and ``%(profile)s``)."""

    incoming: str | None = None
    outgoing: str | None = None
    done: str | None = None
    failed: str | None = None
    links: str | None = None
    work: str | None = None
    config: str | None = None
    done_reports: str | None = None
    failed_reports: str | None = None


class TargetConfig(Inheritable):
    """One output of a profile."""

    allowed_variables: ClassVar[tuple[str, ...]] = VARIABLES

    type: Literal["audio-video", "video", "audio", "thumbnails", "identity", "qmaster"]
    subdir: Subdir | None = None
    extension: str | None = None
    muxer: Muxer | None = None
    post_process: list[str] | None = None
    output_file: str | None = None
    thumbnails: ThumbnailSettings | None = None
    setting: str | None = None

    @field_validator("extension")
    @classmethod
    def _extension(cls, value: str | None) -> str | None:
        if value is None:
            return value
        value = value.lstrip(".")
        if not value or "/" in value or "\x00" in value:
            raise ValueError("expected a file extension such as mp4")
        return value

    @field_validator("post_process")
    @classmethod
    def _argv(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and not value:
            raise ValueError("expected an argv list with at least the program")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> TargetConfig:
        if self.type == "thumbnails" and self.thumbnails is None:
            object.__setattr__(self, "thumbnails", ThumbnailSettings())
        if self.type == "qmaster" and not self.setting:
            raise ValueError("a qmaster target needs 'setting' (a Compressor setting file)")
        if self.type == "qmaster" and not self.extension:
            raise ValueError("a qmaster target needs 'extension'")
        return self


class ProfileConfig(Inheritable, Folders):
    """A profile: which incoming folder, how urgent, and what to produce."""

    subdir: Subdir | None = None
    priority: Priority = 100
    backend: Literal["ffmpeg", "qmaster"] = "ffmpeg"
    report_file: str | None = None
    targets: dict[str, TargetConfig]

    @field_validator("targets")
    @classmethod
    def _some_targets(cls, value: dict[str, TargetConfig]) -> dict[str, TargetConfig]:
        if not value:
            raise ValueError("a profile needs at least one target")
        return value

    @model_validator(mode="after")
    def _backend_matches(self) -> ProfileConfig:
        for name, target in self.targets.items():
            if (self.backend == "qmaster") != (target.type == "qmaster"):
                raise ValueError(
                    f"target {name!r} has type {target.type!r}, but a profile with backend "
                    f"{self.backend!r} needs "
                    + ("'qmaster' targets only" if self.backend == "qmaster" else "ffmpeg types")
                )
        return self


class CustomerConfig(Inheritable, Folders):
    """A customer file: name, priority, profiles."""

    name: str = Field(min_length=1)
    subdir: Subdir | None = None
    priority: Priority = 100
    profiles: dict[str, ProfileConfig]
