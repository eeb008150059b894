"""Computed views of the configuration: effective settings and every path of a file.

Inheritance runs admin ``defaults`` → customer → profile → target: the nearest level
that sets a value wins; ``video`` and ``audio`` are merged key by key.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any

from ..config.model import (
    AUDIO_CODECS,
    MUXERS,
    SUBDIR,
    VIDEO_CODECS,
    CustomerConfig,
    Inheritable,
    ProfileConfig,
    TargetConfig,
    safe_name,
)
from .paths import (
    DEFAULT_FOLDERS,
    DEFAULT_OUTPUT_FILE,
    DEFAULT_REPORT_FILE,
    DEFAULT_THUMBNAIL_FILE,
    PathEscapeError,
    Roots,
    expand,
    fit_name,
    join_virtual,
    split_virtual,
)

if TYPE_CHECKING:
    from ..config.loader import Configuration

__all__ = [
    "StoreContext",
    "CustomerContext",
    "ProfileContext",
    "TargetContext",
    "FileContext",
    "Effective",
    "Roots",
    "PathEscapeError",
    "safe_name",
]

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


def _layer(levels: list[Inheritable | None]) -> Effective:
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


def _subdir(explicit: str | None, name: str) -> str:
    """An explicit subdir as it is (the config model refused unsafe ones), else the
    name made path-safe; never rewritten into another folder than the one configured."""
    if explicit is None:
        return safe_name(name)
    if not SUBDIR.fullmatch(explicit):  # a model built without validation
        raise PathEscapeError(f"subdir {explicit!r} is not one path-safe folder name")
    return explicit


class StoreContext:
    """Entry point: contexts of every customer of one configuration."""

    def __init__(self, config: Configuration) -> None:
        self.config = config

    def customer(self, name: str) -> CustomerContext:
        """The context of the customer called ``name``."""
        return CustomerContext(self, name, self.config.customers[name])

    def customers(self) -> list[CustomerContext]:
        """Every customer's context, by name."""
        return [self.customer(name) for name in sorted(self.config.customers)]


class CustomerContext:
    """A customer with its computed subdir."""

    def __init__(self, store: StoreContext, name: str, config: CustomerConfig) -> None:
        self.store = store
        self.name = name
        self.config = config

    @property
    def subdir(self) -> str:
        """The customer's folder name: as set (checked path-safe), or its name made so."""
        return _subdir(self.config.subdir, self.name)

    @property
    def priority(self) -> int:
        """The customer's queue priority (0–999)."""
        return self.config.priority

    def profile(self, name: str) -> ProfileContext:
        """The context of one of the customer's profiles."""
        return ProfileContext(self, name, self.config.profiles[name])

    def profiles(self) -> list[ProfileContext]:
        """Every profile's context, by name."""
        return [self.profile(n) for n in sorted(self.config.profiles)]


class ProfileContext:
    """A profile: folders, priority and targets with inherited settings."""

    def __init__(self, customer: CustomerContext, name: str, config: ProfileConfig) -> None:
        self.customer = customer
        self.name = name
        self.config = config

    @property
    def key(self) -> tuple[str, str]:
        """(customer name, profile name): how the scheduler and API name this profile."""
        return (self.customer.name, self.name)

    @property
    def subdir(self) -> str:
        """The profile's folder name: as set (checked path-safe), or its name made so."""
        return _subdir(self.config.subdir, self.name)

    @property
    def priority(self) -> int:
        """Queue order: customer priority × 1000 + profile priority."""
        return self.customer.priority * 1000 + self.config.priority

    def variables(self) -> dict[str, object]:
        """The variables folder templates may use."""
        return {
            "customer": self.customer.subdir,
            "profile": self.subdir,
            "customer_name": safe_name(self.customer.name),
            "profile_name": safe_name(self.name),
        }

    def folder(self, key: str) -> str:
        """The virtual folder for ``key`` (incoming, outgoing, done, …)."""
        attr = key.replace("-", "_")
        template = (
            getattr(self.config, attr)
            or getattr(self.customer.config, attr)
            or DEFAULT_FOLDERS[key]
        )
        virtual = expand(template, self.variables())
        root, rel = split_virtual(virtual)
        return f"{root}:/{rel}" if rel else f"{root}:/"

    def effective(self) -> Effective:
        """The profile-level settings (no target)."""
        return _layer(self._levels())

    def _levels(self) -> list[Inheritable | None]:
        return [self.customer.store.config.admin.defaults, self.customer.config, self.config]

    def target(self, name: str) -> TargetContext:
        """The context of one target."""
        return TargetContext(self, name, self.config.targets[name])

    def targets(self) -> list[TargetContext]:
        """Every target in the order the profile lists them."""
        return [self.target(n) for n in self.config.targets]

    def file(self, relpath: str) -> FileContext:
        """The context of a file at ``relpath`` under this profile's incoming folder."""
        return FileContext(self, relpath)


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
        return _subdir(self.config.subdir, self.name)

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
        return _layer([*self.profile._levels(), self.config])

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


class FileContext:
    """Every virtual path of one incoming file of one profile."""

    def __init__(self, profile: ProfileContext, relpath: str) -> None:
        parts = [p for p in relpath.split("/") if p]
        if not parts or any(p in (".", "..") or "\x00" in p for p in parts):
            raise PathEscapeError(f"{relpath!r} is not a relative file path")
        self.profile = profile
        self.relpath = "/".join(parts)
        self.name = parts[-1]
        self.subfolder = "/".join(parts[:-1])

    @property
    def source(self) -> str:
        """The file in incoming."""
        return join_virtual(self.profile.folder("incoming"), self.relpath)

    def in_folder(self, key: str) -> str:
        """The file's subfolder replicated under another folder (done, failed, …)."""
        return join_virtual(self.profile.folder(key), self.subfolder)

    def done(self) -> str:
        """Where the source ends when every target succeeded."""
        return join_virtual(self.in_folder("done"), fit_name(self.name))

    def failed(self) -> str:
        """Where the source ends when the job failed."""
        return join_virtual(self.in_folder("failed"), fit_name(self.name))

    def output_folder(self, target: TargetContext) -> str:
        """The outgoing folder of one target for this file."""
        return join_virtual(self.in_folder("outgoing"), target.subdir)

    def report(self, job_id: str, success: bool) -> str:
        """The report file of one job."""
        template = self.profile.config.report_file or DEFAULT_REPORT_FILE
        stem = self.name.rpartition(".")[0] or self.name
        name = expand(template, {"name": self.name, "stem": stem, "job": job_id})
        if not name or "/" in name:
            raise PathEscapeError(f"report file name {name!r} is not a plain file name")
        # The job id and the extension stay whole: a shortened name still says whose it is.
        name = fit_name(name, tail=f".{job_id}.yaml" if name.endswith(f".{job_id}.yaml") else None)
        folder = self.in_folder("done-reports" if success else "failed-reports")
        return join_virtual(folder, name)

    def work(self, job_id: str) -> str:
        """The job's private work folder."""
        return join_virtual(self.profile.folder("work"), job_id)

    def job_spec(self, job_id: str, attempt: int, ffmpeg: str | None = None) -> dict[str, Any]:
        """The job's whole configuration, as basic types a worker can run from."""
        prof = self.profile
        eff = prof.effective()
        config = prof.customer.store.config.admin.transcoding
        targets = []
        for target in prof.targets():
            spec = target.media_spec()
            spec["output_folder"] = self.output_folder(target)
            if target.type == "thumbnails":
                spec["output_template"] = target.output_template()
            else:
                spec["output_name"] = target.output_name(self.name)
            targets.append(spec)
        return {
            "job_id": job_id,
            "attempt": attempt,
            "customer": prof.customer.name,
            "profile": prof.name,
            "relpath": self.relpath,
            "source": self.source,
            "done": self.done(),
            "failed": self.failed(),
            "report_done": self.report(job_id, True),
            "report_failed": self.report(job_id, False),
            "work": self.work(job_id),
            "backend": prof.config.backend,
            "process_priority": eff.process_priority,
            "transcoding_timeout": eff.transcoding_timeout,
            "max_attempts": eff.max_attempts,
            "duration_tolerance": config.duration_tolerance,
            "duration_tolerance_percent": config.duration_tolerance_percent,
            "ffmpeg": ffmpeg or config.ffmpeg,
            "targets": targets,
        }
