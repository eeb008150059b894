"""The configuration as frozen, validated values (admin file and customer files).

Keys are spelled as in the files (``stable-for``, ``max-jobs``); attributes use
snake_case.  Every level below the admin may leave a setting unset (``None``): the
effective value is computed by :mod:`transcoder_admin.context` from the chain
admin defaults → customer → profile → target.
"""

from __future__ import annotations

import math
import re
import unicodedata
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

VIDEO_CODECS = {
    "h264": "libx264",
    "libx264": "libx264",
    "hevc": "libx265",
    "h265": "libx265",
    "libx265": "libx265",
    "vp9": "libvpx-vp9",
    "libvpx-vp9": "libvpx-vp9",
    "av1": "libsvtav1",
    "libsvtav1": "libsvtav1",
    "libaom-av1": "libaom-av1",
}
AUDIO_CODECS = {
    "aac": "aac",
    "opus": "libopus",
    "libopus": "libopus",
    "mp3": "libmp3lame",
    "libmp3lame": "libmp3lame",
    "vorbis": "libvorbis",
    "libvorbis": "libvorbis",
}
# container name -> ffmpeg muxer
MUXERS = {
    "mp4": "mp4",
    "mov": "mov",
    "mkv": "matroska",
    "matroska": "matroska",
    "webm": "webm",
    "ogg": "ogg",
    "mp3": "mp3",
    "m4a": "ipod",
    "ipod": "ipod",
}
TARGET_TYPES = ("audio-video", "video", "audio", "thumbnails", "identity", "qmaster")
FOLDER_KEYS = (
    "incoming",
    "outgoing",
    "done",
    "failed",
    "links",
    "work",
    "config",
    "done-reports",
    "failed-reports",
)


def _dash(name: str) -> str:
    return name.replace("_", "-")


#: An explicit ``subdir``: one folder name in the form the default (the name made
#: path-safe) has, so that a subdir is never rewritten and folders never differ by case
#: alone (case-insensitive filesystems of SMB shares and Macs).
_UNSAFE = re.compile(r"[^a-z0-9._-]+")
SUBDIR = re.compile(r"[a-z0-9_](?:[a-z0-9._-]{0,253}[a-z0-9_])?")
SUBDIR_FORM = (
    "a subdir is one folder name: lowercase letters, digits, '.', '_' or '-', "
    "not starting or ending with '.' or '-', at most 255 characters"
)


def safe_name(name: str) -> str:
    """A lowercased, path-safe folder name: letters, digits, ``.``, ``_`` and ``-``."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    cleaned = _UNSAFE.sub("-", ascii_name.lower()).strip("-.")
    return cleaned or "_"


def _subdir(value: str) -> str:
    """An explicit subdir as given, or ValueError naming the allowed form."""
    if SUBDIR.fullmatch(value):
        return value
    hint = safe_name(value)
    # A hint for a name in another form ("Web", "my web"), none for a path ("../x").
    plain = "/" not in value and "\x00" not in value and hint != "_" and len(hint) <= 255
    suggestion = f" (such as {hint!r})" if plain else ""
    raise ValueError(SUBDIR_FORM + suggestion)


Subdir = Annotated[str, AfterValidator(_subdir)]

_BITRATE = re.compile(r"([0-9]+(?:\.[0-9]*)?|\.[0-9]+)([kKM]?)")
_BITRATE_UNIT = {"": 1, "k": 1, "K": 1, "M": 1000}
BITRATE_FORMS = "kbit/s as a whole number (128), or ffmpeg's form with k or M (96k, 2500k, 2.5M)"


def bitrate_kbits(value: Any, maximum: float) -> int | float:
    """A bitrate in kbit/s from the config: ``128`` (kbit/s), ``96k``, ``2.5M``.

    A bare number stays kbit/s as it always was (unlike ffmpeg, where it is bit/s);
    the suffixes are ffmpeg's (k = 1000, M = 1000000 bit/s).  Whole numbers come back
    as ``int``.
    """
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ValueError(f"expected {BITRATE_FORMS}")
    if isinstance(value, (int, float)):
        if isinstance(value, float) and not value.is_integer():
            raise ValueError(f"a bare number is whole kbit/s; expected {BITRATE_FORMS}")
        number = float(value)
    else:
        match = _BITRATE.fullmatch(value.strip())
        if not match:
            raise ValueError(f"expected {BITRATE_FORMS}")
        text, unit = match.groups()
        if not unit and not text.isdigit():
            raise ValueError(f"a bare number is whole kbit/s; expected {BITRATE_FORMS}")
        number = float(text) * _BITRATE_UNIT[unit]
    if not math.isfinite(number) or not 1 <= number <= maximum:
        raise ValueError(
            f"must be between 1 and {maximum:.0f} kbit/s (a bare number is kbit/s); "
            f"expected {BITRATE_FORMS}"
        )
    # Whole bit/s: what ffmpeg can be told exactly.
    kbits = round(number * 1000) / 1000
    return int(kbits) if kbits.is_integer() else kbits


class Section(BaseModel):
    """Base of every configuration section: frozen, unknown keys refused."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        alias_generator=_dash,
        populate_by_name=True,
    )


PositiveInt = Annotated[int, Field(gt=0)]
PositiveFloat = Annotated[float, Field(gt=0)]
Priority = Annotated[int, Field(ge=0, le=999)]
Nice = Annotated[int, Field(ge=-20, le=19)]
VideoCodec = Literal[
    "h264", "libx264", "hevc", "h265", "libx265", "vp9", "libvpx-vp9",
    "av1", "libsvtav1", "libaom-av1",
]  # fmt: skip
AudioCodec = Literal[
    "aac", "opus", "libopus", "mp3", "libmp3lame", "vorbis", "libvorbis",
]  # fmt: skip
Muxer = Literal["mp4", "mov", "mkv", "matroska", "webm", "ogg", "mp3", "m4a", "ipod"]
#: Upper bounds that catch a bit/s value written where kbit/s is meant (``128000``).
MAX_VIDEO_KBITS = 1_000_000
MAX_AUDIO_KBITS = 4_000
VideoBitrate = Annotated[
    int | float | None,
    BeforeValidator(lambda v: None if v is None else bitrate_kbits(v, MAX_VIDEO_KBITS)),
]
AudioBitrate = Annotated[
    int | float | None,
    BeforeValidator(lambda v: None if v is None else bitrate_kbits(v, MAX_AUDIO_KBITS)),
]


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


class Inheritable(Section):
    """Settings every level may set; the nearest level that sets one wins."""

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
    notify_done: list[str] = Field(default_factory=list)
    notify_failed: list[str] = Field(default_factory=list)
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


class AdminSection(Section):
    """``admin``: where customers live and how the daemon logs."""

    customers: str = "customers"
    #: Also the prefix of the local workers' names (``NAME-local-1``…): folder-safe.
    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,50}$")] = "transcoder-admin"
    log_format: Literal["text", "json"] = "text"
    startup_timeout: PositiveFloat = 60


class ReportsSection(Section):
    """``reports``: the reports database."""

    url: str = "sqlite:///var/reports.sqlite"
    pool_size: Annotated[int, Field(ge=1, le=64)] = 4


class APISection(Section):
    """``api``: the JSON API listener."""

    listen: str = "tcp:7667:interface=127.0.0.1"
    enabled: bool = True


class ManagerSection(Section):
    """``manager``: the Perspective Broker manager (embedded, or a standalone one)."""

    listen: str = "tcp:7632:interface=127.0.0.1"
    connect: str | None = Field(None, description="endpoint of a standalone manager")
    credentials: str | None = Field(
        None, description="name:password file: remote workers (listen) or admin (connect)"
    )


class WorkersSection(Section):
    """``workers``: local workers and their capacity."""

    local: Annotated[int, Field(ge=0, le=256)] = 1
    max_jobs: Annotated[int, Field(ge=1, le=64)] = 2
    lost_timeout: PositiveFloat = 60
    heartbeat_interval: PositiveFloat = 5
    #: Failed jobs whose work folders each worker keeps for inspection (0: none).
    keep_failed: Annotated[int, Field(ge=0, le=100)] = 3

    @model_validator(mode="after")
    def _beats_before_lost(self) -> WorkersSection:
        if self.heartbeat_interval * 2 > self.lost_timeout:
            raise ValueError(
                f"heartbeat-interval ({self.heartbeat_interval:g} s) must be at most half "
                f"of lost-timeout ({self.lost_timeout:g} s)"
            )
        return self


class MonitoringSection(Section):
    """``monitoring``: how incoming folders are watched."""

    stable_for: Annotated[float, Field(ge=0)] = 5
    mode: Literal["auto", "inotify", "poll"] = "auto"
    on_workers: bool = False
    poll_interval: PositiveFloat = 10
    # Off: a file with another hard link may be someone else's file (another customer's
    # output) that an uploader linked into incoming.
    accept_hard_links: bool = False
    ignore: list[str] = Field(
        default_factory=lambda: [".*", "*.part", "*.filepart", "*.tmp", "*.crdownload"]
    )


class TranscodingSection(Section):
    """``transcoding``: the ffmpeg program and verification tolerance."""

    ffmpeg: str | None = None
    duration_tolerance: Annotated[float, Field(ge=0)] = 0.5
    duration_tolerance_percent: Annotated[float, Field(ge=0, le=50)] = 2.0


class QmasterSection(Section):
    """``qmaster``: Compressor/Batch Monitor for profiles with ``backend: qmaster``."""

    compressor: str | None = None
    batch_monitor: str | None = None
    cluster: str | None = None
    fallback_to_local: bool = True
    submission_timeout: PositiveFloat = 60
    status_timeout: PositiveFloat = 30
    poll_interval: PositiveFloat = 15
    command_prefix: list[str] = Field(default_factory=list)
    max_batches: Annotated[int, Field(ge=1, le=64)] = 2
    priority: Literal["low", "medium", "high"] = "medium"
    # Unset: the client's defaults (docs/qmaster.md, "Settings").  No batch-timeout here:
    # the profile's transcoding-timeout bounds each batch.
    local_cluster: str | None = None
    status_grace: Annotated[float, Field(ge=0)] | None = None
    cancel_on_timeout: bool | None = None
    destination_suffix: str | None = None
    cancel_flag: str | None = None
    check_paths: bool | None = None

    def client_settings(self) -> dict[str, Any]:
        """The keys :meth:`QmasterSettings.from_mapping` takes (unset ones left out)."""
        values = self.model_dump(exclude={"max_batches"}, exclude_none=True)
        if not values.get("command_prefix"):
            values.pop("command_prefix", None)
        return values


class AdminConfig(Section):
    """The admin config file (``etc/transcoder-admin.yaml`` or INI with the same keys)."""

    admin: AdminSection = Field(default_factory=AdminSection)
    roots: dict[str, str]
    reports: ReportsSection = Field(default_factory=ReportsSection)
    api: APISection = Field(default_factory=APISection)
    manager: ManagerSection = Field(default_factory=ManagerSection)
    workers: WorkersSection = Field(default_factory=WorkersSection)
    monitoring: MonitoringSection = Field(default_factory=MonitoringSection)
    transcoding: TranscodingSection = Field(default_factory=TranscodingSection)
    qmaster: QmasterSection | None = None
    defaults: Inheritable = Field(default_factory=Inheritable)

    @field_validator("roots")
    @classmethod
    def _roots(cls, value: dict[str, str]) -> dict[str, str]:
        missing = [name for name in ("default", "temp") if name not in value]
        if missing:
            raise ValueError(f"roots must name {' and '.join(missing)}")
        for name in value:
            if not name or not name.replace("-", "").replace("_", "").isalnum():
                raise ValueError(f"root name {name!r} must be letters, digits, - or _")
        return value
