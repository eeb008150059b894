"""The configuration as frozen, validated values: the admin file's sections here, the
customer files' models in ``customers``, the small values in ``values`` (all importable
from here).

Keys are spelled as in the files (``stable-for``, ``max-jobs``); attributes use
snake_case.  Every level below the admin may leave a setting unset (``None``): the
effective value is computed by :mod:`transcoder_admin.context` from the chain
admin defaults → customer → profile → target.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    Field,
    field_validator,
    model_validator,
)

from .customers import (
    AudioSettings,
    CustomerConfig,
    Folders,
    Inheritable,
    ProfileConfig,
    TargetConfig,
    ThumbnailSettings,
    VideoSettings,
)

# The values and the customer models live in their own modules; importing them from
# here keeps working.
from .endpoints import bound_interfaces, is_loopback, unverified_tls
from .notify import (
    DiagnosisSection,
    HttpNotification,
    MailNotification,
    Notification,
    NotificationsSection,
    SqlNotification,
)
from .values import (
    AUDIO_CODECS,
    BITRATE_FORMS,
    FOLDER_KEYS,
    MAX_AUDIO_KBITS,
    MAX_VIDEO_KBITS,
    MUXERS,
    SUBDIR,
    SUBDIR_FORM,
    TARGET_TYPES,
    VIDEO_CODECS,
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
    bitrate_kbits,
    safe_name,
)


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
    #: The tokens file (``transcoder-admin token add``); set, every request but health
    #: needs a token and the API may listen beyond loopback.
    tokens_file: str | None = None
    #: Host names (besides loopback ones) that browsers may use to reach the API.
    allowed_hosts: list[Annotated[str, Field(min_length=1, max_length=253)]] = Field(
        default_factory=list, max_length=64
    )


class ManagerSection(Section):
    """``manager``: the Perspective Broker manager (embedded, or a standalone one)."""

    listen: str = "tcp:7632:interface=127.0.0.1"
    connect: str | None = Field(None, description="endpoint of a standalone manager")
    credentials: str | None = Field(
        None, description="name:password file: remote workers (listen) or admin (connect)"
    )
    #: Allow plain ``tcp:`` beyond loopback (job specs carry commands workers execute).
    insecure: bool = False

    @model_validator(mode="after")
    def _no_open_doors(self) -> ManagerSection:
        """Refuse TLS to the manager that checks no certificate, and a plaintext listener
        other hosts reach unless ``insecure`` is set."""
        if self.connect and unverified_tls(self.connect):
            raise ValueError(f"connect {unverified_tls(self.connect)}")
        kind = self.listen.split(":", 1)[0].strip().lower()
        if kind not in ("tcp", "tcp6") or self.insecure:
            return self  # ssl: is TLS, unix: is local; other kinds are Twisted's to refuse
        interfaces = bound_interfaces(self.listen)
        public = [i or "every interface" for i in interfaces or [] if not is_loopback(i)]
        if public:
            raise ValueError(
                f"listen {self.listen!r} is plain TCP on {public[0]}: job specs carry "
                "commands the workers run, so use ssl:PORT:privateKey=…:certKey=… (workers "
                "then connect with ssl: and trustRoots), or set manager.insecure: true"
            )
        return self


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
    # A file renamed into incoming (inotify's moved-to) is complete when it appears:
    # taken at once, without waiting stable-for. Polled folders never see renames.
    atomic_renames: bool = True
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
    notifications: NotificationsSection = Field(default_factory=NotificationsSection)
    diagnosis: DiagnosisSection = Field(default_factory=DiagnosisSection)
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


__all__ = [
    "DiagnosisSection",
    "HttpNotification",
    "MailNotification",
    "Notification",
    "NotificationsSection",
    "SqlNotification",
    "APISection",
    "AUDIO_CODECS",
    "AdminConfig",
    "AdminSection",
    "AudioBitrate",
    "AudioCodec",
    "AudioSettings",
    "BITRATE_FORMS",
    "CustomerConfig",
    "FOLDER_KEYS",
    "Folders",
    "Inheritable",
    "MAX_AUDIO_KBITS",
    "MAX_VIDEO_KBITS",
    "MUXERS",
    "ManagerSection",
    "MonitoringSection",
    "Muxer",
    "Nice",
    "PositiveFloat",
    "PositiveInt",
    "Priority",
    "ProfileConfig",
    "QmasterSection",
    "ReportsSection",
    "SUBDIR",
    "SUBDIR_FORM",
    "Section",
    "Subdir",
    "TARGET_TYPES",
    "TargetConfig",
    "ThumbnailSettings",
    "TranscodingSection",
    "VIDEO_CODECS",
    "VideoBitrate",
    "VideoCodec",
    "VideoSettings",
    "WorkersSection",
    "bitrate_kbits",
    "safe_name",
]
