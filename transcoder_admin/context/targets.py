"""A target's effective media settings, its output names and its part of a job spec."""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING, Any

from ..config.model import (
    AUDIO_CODECS,
    MUXERS,
    SUBDIR,
    VIDEO_CODECS,
    TargetConfig,
    safe_name,
)
from .effective import (
    DEFAULT_AUDIO_CODEC,
    DEFAULT_EXTENSION,
    DEFAULT_VIDEO_CODEC,
    EXTENSION_MUXER,
    Effective,
    layer,
)
from .paths import (
    DEFAULT_OUTPUT_FILE,
    DEFAULT_THUMBNAIL_FILE,
    PathEscapeError,
    expand,
    fit_name,
)

if TYPE_CHECKING:
    from .customers import ProfileContext


def subdir_of(explicit: str | None, name: str) -> str:
    """An explicit subdir as it is (the config model refused unsafe ones), else the
    name made path-safe; never rewritten into another folder than the one configured."""
    if explicit is None:
        return safe_name(name)
    if not SUBDIR.fullmatch(explicit):  # a model built without validation
        raise PathEscapeError(f"subdir {explicit!r} is not one path-safe folder name")
    return explicit


class TargetContext:
    """A target with its effective media settings and output naming."""

    def __init__(self, profile: ProfileContext, name: str, config: TargetConfig) -> None:
        self.profile = profile
        self.name = name
        self.config = config

    @property
    def type(self) -> str:
        """The target type (audio-video, video, audio, thumbnails, identity, qmaster)."""
        return self.config.type

    @property
    def subdir(self) -> str:
        """The target's folder name below the outgoing folder (set, or from its name)."""
        return subdir_of(self.config.subdir, self.name)

    @property
    def extension(self) -> str:
        """The output extension; empty for identity targets that keep the source's."""
        if self.config.extension:
            return self.config.extension
        if self.type == "thumbnails":
            fmt = self.config.thumbnails.format if self.config.thumbnails else "jpeg"
            return "png" if fmt == "png" else "jpg"
        if self.config.muxer and self.type != "identity":
            for ext, muxer in EXTENSION_MUXER.items():
                if muxer == MUXERS[self.config.muxer]:
                    return ext
        return DEFAULT_EXTENSION.get(self.type, "")

    @property
    def muxer(self) -> str | None:
        """The ffmpeg muxer name, from the setting or the extension."""
        if self.config.muxer:
            return MUXERS[self.config.muxer]
        return EXTENSION_MUXER.get(self.extension.lower())

    @cached_property
    def effective(self) -> Effective:
        """Settings after inheritance down to this target."""
        return layer([*self.profile.levels(), self.config])

    def output_template(self) -> str:
        """The output file name template."""
        if self.config.output_file:
            return self.config.output_file
        return DEFAULT_THUMBNAIL_FILE if self.type == "thumbnails" else DEFAULT_OUTPUT_FILE

    def output_name(self, source_name: str, index: int = 1) -> str:
        """The output file name for a source file name (no folders)."""
        stem, dot, ext = source_name.rpartition(".")
        if not dot:
            stem, ext = source_name, ""
        extension = self.extension or ext
        variables = {
            "stem": stem,
            "name": source_name,
            "extension": extension,
            "ext": extension,
            "index": index,
            "target": self.name,
        }
        name = expand(self.output_template(), variables)
        if self.type == "identity" and not self.extension and not ext:
            name = name.rstrip(".")
        if not name or "/" in name or name in (".", ".."):
            raise PathEscapeError(f"output file name {name!r} is not a plain file name")
        return fit_name(name)

    def check_templates(self) -> None:
        """Raise ValueError if the output template cannot be expanded safely."""
        self.output_name("sample.mov")
        if self.config.post_process:
            for arg in self.config.post_process:
                expand(arg, POST_PROCESS_SAMPLE)

    def media_spec(self) -> dict[str, Any]:
        """The target as basic types, for a job configuration."""
        eff = self.effective
        video = dict(eff.video)
        audio = dict(eff.audio)
        muxer = self.muxer
        if self.type in ("audio-video", "video"):
            video["codec"] = VIDEO_CODECS[
                video.get("codec") or DEFAULT_VIDEO_CODEC.get(muxer or "", "h264")
            ]
        if self.type in ("audio-video", "audio"):
            audio["codec"] = AUDIO_CODECS[
                audio.get("codec") or DEFAULT_AUDIO_CODEC.get(muxer or "", "aac")
            ]
        spec: dict[str, Any] = {
            "name": self.name,
            "type": self.type,
            "subdir": self.subdir,
            "extension": self.extension,
            "muxer": muxer,
            "video": video,
            "audio": audio,
            "allow_without_audio": eff.allow_without_audio,
            "allow_without_video": eff.allow_without_video,
            "post_process": list(self.config.post_process or []),
            "post_process_timeout": eff.post_process_timeout,
        }
        if self.config.thumbnails is not None:
            spec["thumbnails"] = self.config.thumbnails.model_dump()
        if self.config.setting:
            spec["setting"] = self.config.setting
        return spec


POST_PROCESS_SAMPLE = {
    "output": "/out/a.mp4",
    "outputs": "/out/a.mp4",
    "source": "/in/a.mov",
    "target": "t",
    "customer": "c",
    "profile": "p",
    "job": "j",
}
