"""Notifications in the configuration: the ``notify-done`` / ``notify-failed`` entries of
every level, the admin's ``notifications`` section, and the variables their templates
may name.

An entry is an HTTP request (a plain URL string is a GET), a mail or an SQL statement::

    notify-done:
      - "http://127.0.0.1:8080/done?file=%(inputRelPath)s&ok=%(success)d"
      - {url: "https://hooks.example.com/x", method: POST, secret-file: hooks.secret}
      - {mail: [ops@example.com], subject: "Done: %(inputRelPath)s"}
      - {sql: "INSERT INTO delivered (path) VALUES (:inputRelPath)", database: "sqlite:///d.db"}

Templates use Python's ``%(name)s`` / ``%(name)d`` / ``%(name)f`` forms; SQL uses bound
``:name`` parameters.  A name that is not a variable is a configuration error, found by
``check-config``, never a surprise when a file ends.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from email.utils import parseaddr
from typing import Annotated, Any, ClassVar, Literal

from pydantic import Discriminator, Field, Tag, field_validator, model_validator

from .values import PositiveFloat, PositiveInt, Section

#: The variables of a file's notification (the seed admin's names, and a few more).
FILE_VARIABLES = (
    "success",
    "trigger",
    "jobId",
    "reportPath",
    "failureKind",
    "errorMessage",
    "inputFile",
    "inputRelPath",
    "outputFixedDir",
    "customerName",
    "profileName",
    "sourceMime",
    "sourceHasAudio",
    "sourceHasVideo",
    "sourceVideoWidth",
    "sourceVideoHeight",
    "sourceDuration",
    "sourceSize",
    "sourceBitrate",
    "sourceLength",
    "sourceHours",
    "sourceMinutes",
    "sourceSeconds",
    "mediaContainer",
    "mediaVideoCodec",
    "mediaAudioCodec",
    "mediaFramerate",
    "mediaAudioRate",
    "mediaAudioChannels",
)
#: The variables a target's notification adds.
TARGET_VARIABLES = (
    "targetName",
    "targetType",
    "targetSuccess",
    "targetOutputs",
    "outputFile",
    "outputRelPath",
)
VARIABLES = FILE_VARIABLES + TARGET_VARIABLES

#: ``%(name)s``-style placeholders (``%%`` is a literal percent sign).
_PLACEHOLDER = re.compile(
    r"%(?:%|\((?P<name>[^)]*)\)(?P<spec>[#0\- +]*\d*(?:\.\d+)?[sdfirxXeEgGc]))"
)
_BOUND = re.compile(r"(?<![:\w]):(?P<name>[A-Za-z_]\w*)")


def template_names(template: str) -> list[str]:
    """The variables a template names; ValueError for a placeholder that is not one."""
    names = []
    position = 0
    for match in _PLACEHOLDER.finditer(template):
        if "%" in template[position : match.start()]:
            raise ValueError(f"a % sign that is not a placeholder in {template!r} (write %%)")
        position = match.end()
        if match.group("name") is not None:
            names.append(match.group("name"))
    if "%" in template[position:]:
        raise ValueError(f"a % sign that is not a placeholder in {template!r} (write %%)")
    return names


def check_template(template: str, allowed: Iterable[str], what: str) -> str:
    """``template`` if it names only ``allowed`` variables; ValueError naming the rest."""
    allowed = set(allowed)
    unknown = sorted({n for n in template_names(template) if n not in allowed})
    if unknown:
        raise ValueError(f"{what} names unknown variables: {', '.join(unknown)}")
    return template


def sql_names(statement: str) -> list[str]:
    """The ``:name`` parameters of an SQL statement (``::`` casts left alone)."""
    return [m.group("name") for m in _BOUND.finditer(statement)]


class HttpNotification(Section):
    """An HTTP request: GET the URL, or POST a JSON event to it (signed when a secret is
    given, per the Standard Webhooks specification)."""

    url: str = Field(min_length=1)
    method: Literal["GET", "POST"] = "GET"
    secret_file: str | None = None
    headers: dict[str, str] = Field(default_factory=dict)

    def names(self) -> list[str]:
        """The variables the request names."""
        return template_names(self.url) + [
            n for v in self.headers.values() for n in template_names(v)
        ]

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        scheme = value.split(":", 1)[0].lower()
        if scheme not in ("http", "https") or "://" not in value:
            raise ValueError(f"expected an http:// or https:// URL, not {value!r}")
        check_template(value, VARIABLES, "the URL")
        return value

    @field_validator("headers")
    @classmethod
    def _headers(cls, value: dict[str, str]) -> dict[str, str]:
        for name, text in value.items():
            if not re.fullmatch(r"[A-Za-z0-9-]+", name):
                raise ValueError(f"header name {name!r}: letters, digits and - only")
            if "\n" in text or "\r" in text:
                raise ValueError(f"header {name!r}: a value on one line")
            check_template(text, VARIABLES, f"header {name!r}")
        return value


class MailNotification(Section):
    """A mail to ``mail`` (addresses, ``Name <address>`` allowed)."""

    mail: list[str] = Field(min_length=1)
    subject: str | None = None
    body: str | None = None

    def names(self) -> list[str]:
        """The variables the mail names."""
        return [n for t in (self.subject, self.body) if t for n in template_names(t)]

    @field_validator("mail")
    @classmethod
    def _addresses(cls, value: list[str]) -> list[str]:
        for address in value:
            check_address(address)
        return value

    @field_validator("subject", "body")
    @classmethod
    def _templates(cls, value: str | None) -> str | None:
        if value is not None:
            check_template(value, VARIABLES, "the template")
        return value


class SqlNotification(Section):
    """An SQL statement with bound ``:name`` parameters, run on ``database``."""

    sql: str = Field(min_length=1)
    database: str = Field(min_length=1)

    def names(self) -> list[str]:
        """The variables the statement binds."""
        return sql_names(self.sql)

    @field_validator("sql")
    @classmethod
    def _sql(cls, value: str) -> str:
        unknown = sorted({n for n in sql_names(value) if n not in VARIABLES})
        if unknown:
            raise ValueError(f"the statement binds unknown variables: {', '.join(unknown)}")
        return value

    @field_validator("database")
    @classmethod
    def _database(cls, value: str) -> str:
        from sqlalchemy.engine import make_url  # only the admin reads notifications

        try:
            make_url(value)
        except Exception as e:
            raise ValueError(f"not a database URL: {e}") from None
        return value


def check_address(address: str) -> str:
    """A mail address (``Name <a@b.example>`` allowed); ValueError otherwise."""
    _name, addr = parseaddr(address)
    if not addr or "@" not in addr or any(c in address for c in "\r\n"):
        raise ValueError(f"not a mail address: {address!r}")
    return address


def _kind(value: Any) -> str | None:
    if isinstance(value, str):
        return "url"
    if isinstance(value, Mapping):
        for key in ("url", "mail", "sql"):
            if key in value:
                return key
    if isinstance(value, (HttpNotification, MailNotification, SqlNotification)):
        return {HttpNotification: "url", MailNotification: "mail", SqlNotification: "sql"}[
            type(value)
        ]
    return None


def _plain_url(value: Any) -> Any:
    return {"url": value} if isinstance(value, str) else value


Notification = Annotated[
    Annotated[HttpNotification, Tag("url")]
    | Annotated[MailNotification, Tag("mail")]
    | Annotated[SqlNotification, Tag("sql")],
    Discriminator(
        _kind,
        custom_error_type="notification",
        custom_error_message="expected a URL, or a mapping with url, mail or sql",
    ),
]


class Notifying(Section):
    """What a level notifies when a file (or, on a target, that target) ends."""

    #: The variables this level's notifications may name (a target's add its own).
    allowed_variables: ClassVar[tuple[str, ...]] = FILE_VARIABLES

    notify_done: list[Notification] = Field(default_factory=list)
    notify_failed: list[Notification] = Field(default_factory=list)

    @model_validator(mode="after")
    def _level_variables(self) -> Notifying:
        allowed = set(self.allowed_variables)
        for entry in [*self.notify_done, *self.notify_failed]:
            unknown = sorted({n for n in entry.names() if n not in allowed})
            if unknown:
                raise ValueError(
                    f"{', '.join(unknown)}: only a target's notifications have target variables"
                )
        return self

    @field_validator("notify_done", "notify_failed", mode="before")
    @classmethod
    def _plain(cls, value: Any) -> Any:
        if isinstance(value, (str, Mapping)):
            value = [value]
        return [_plain_url(v) for v in value] if isinstance(value, list) else value


class SmtpSettings(Section):
    """The mail server notifications go through."""

    host: str = "localhost"
    port: Annotated[int, Field(ge=1, le=65535)] = 25
    starttls: Literal["none", "optional", "required"] = "optional"
    username: str | None = None
    password_file: str | None = None
    #: The certificate authorities STARTTLS trusts: a PEM file of one or more, or a
    #: folder of ``*.pem`` files (None: the system's).
    trust_roots: str | None = None
    timeout: PositiveFloat = 30.0


class RetrySettings(Section):
    """How often and how patiently a notification is tried."""

    attempts: Annotated[int, Field(ge=1, le=100)] = 10
    first_delay: PositiveFloat = 10.0
    max_delay: PositiveFloat = 3600.0


class NotificationsSection(Section):
    """The admin's ``notifications`` section."""

    smtp: SmtpSettings = Field(default_factory=SmtpSettings)
    sender: str = "transcoder-admin@localhost"
    emergency: list[str] = Field(default_factory=list)
    debug: list[str] = Field(default_factory=list)
    http_timeout: PositiveFloat = 30.0
    retry: RetrySettings = Field(default_factory=RetrySettings)
    #: Seconds the reports database may stay unreachable before an emergency mail.
    database_alarm_after: PositiveFloat = 600.0
    #: At most this many admin mails of one kind per ``admin-mail-period`` seconds.
    admin_mails: PositiveInt = 5
    admin_mail_period: PositiveFloat = 3600.0

    @field_validator("sender")
    @classmethod
    def _sender(cls, value: str) -> str:
        return check_address(value)

    @field_validator("emergency", "debug")
    @classmethod
    def _recipients(cls, value: list[str]) -> list[str]:
        for address in value:
            check_address(address)
        return value


class DiagnosisSection(Section):
    """The prognostician's rules: which failures are expected of junk uploads."""

    mime_types: list[str] = Field(default_factory=lambda: ["text/.*", "image/.*"])
    file_types: list[str] = Field(default_factory=list)
    min_video_size: Annotated[int, Field(ge=0)] = 1024
    min_audio_size: Annotated[int, Field(ge=0)] = 100

    @field_validator("mime_types", "file_types")
    @classmethod
    def _regexes(cls, value: list[str]) -> list[str]:
        for pattern in value:
            try:
                re.compile(pattern)
            except re.error as e:
                raise ValueError(f"{pattern!r} is not a regular expression: {e}") from None
        return value


__all__ = [
    "FILE_VARIABLES",
    "TARGET_VARIABLES",
    "VARIABLES",
    "DiagnosisSection",
    "HttpNotification",
    "MailNotification",
    "Notification",
    "NotificationsSection",
    "Notifying",
    "RetrySettings",
    "SmtpSettings",
    "SqlNotification",
    "check_address",
    "check_template",
    "sql_names",
    "template_names",
]
