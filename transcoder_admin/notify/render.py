"""Turning a configured notification and a file's variables into what is sent, frozen.

A :class:`Message` holds everything an attempt needs (the final URL and body, the mail,
the statement and its parameters) so that a restart, a reload or a changed profile
never changes a notification already written down.  Only the signing secret is read
when the request is sent (a Standard Webhooks signature carries the time of sending).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from ..config.notify import (
    HttpNotification,
    MailNotification,
    Notification,
    SqlNotification,
    sql_names,
)

#: The mail a notification without a subject or body gets.
DEFAULT_SUBJECT = {
    "file-done": "Done: %(customerName)s/%(profileName)s/%(inputRelPath)s",
    "file-failed": "Failed: %(customerName)s/%(profileName)s/%(inputRelPath)s",
    "target-done": "Done: %(targetName)s of %(customerName)s/%(profileName)s/%(inputRelPath)s",
    "target-failed": (
        "Failed: %(targetName)s of %(customerName)s/%(profileName)s/%(inputRelPath)s"
    ),
}


@dataclass(frozen=True)
class Message:
    """One notification, ready to send: ``kind`` is ``http``, ``mail`` or ``sql``."""

    id: str
    kind: str
    trigger: str
    #: Where it goes, for people (a URL, recipients, a database without its password).
    destination: str
    payload: Mapping[str, Any]
    job_id: str = ""
    customer: str = ""
    profile: str = ""
    relpath: str = ""
    target: str = ""
    #: Attachments of a mail: (file name, text).
    attachments: tuple[tuple[str, str], ...] = field(default=())

    def to_row(self) -> dict[str, Any]:
        """The columns the store keeps of it."""
        return {
            "id": self.id,
            "kind": self.kind,
            "trigger": self.trigger,
            "destination": self.destination,
            "payload": json.dumps(
                {**self.payload, "attachments": [list(a) for a in self.attachments]}
            ),
            "job_id": self.job_id,
            "customer": self.customer,
            "profile": self.profile,
            "relpath": self.relpath,
            "target": self.target,
        }


def new_delivery_id() -> str:
    """A stable delivery id (the ``webhook-id`` of every attempt of one notification)."""
    return f"msg_{uuid.uuid4().hex}"


def render(
    entry: Notification,
    variables: Mapping[str, Any],
    *,
    secret_path: str | None = None,
    attachments: tuple[tuple[str, str], ...] = (),
) -> Message:
    """Freeze ``entry`` with ``variables``; ``secret_path`` is its secret file, absolute."""
    trigger = str(variables["trigger"])
    ident = new_delivery_id()

    def message(kind: str, destination: str, payload: dict[str, Any], **extra: Any) -> Message:
        return Message(
            ident,
            kind,
            trigger,
            destination,
            payload,
            job_id=str(variables.get("jobId", "")),
            customer=str(variables.get("customerName", "")),
            profile=str(variables.get("profileName", "")),
            relpath=str(variables.get("inputRelPath", "")),
            target=str(variables.get("targetName", "")),
            **extra,
        )

    if isinstance(entry, HttpNotification):
        url = entry.url % _url_values(variables)
        headers = {
            name: _one_line(value % dict(variables)) for name, value in entry.headers.items()
        }
        body = None
        if entry.method == "POST":
            body = json.dumps(
                {"type": trigger, "id": ident, "data": dict(variables)},
                separators=(",", ":"),
                sort_keys=True,
            )
        payload: dict[str, Any] = {
            "method": entry.method,
            "url": url,
            "headers": headers,
            "body": body,
            "secret_file": secret_path,
        }
        return message("http", _without_query(url), payload)
    if isinstance(entry, MailNotification):
        subject = (entry.subject or DEFAULT_SUBJECT[trigger]) % dict(variables)
        body = entry.body % dict(variables) if entry.body else default_body(variables)
        mail = {"to": list(entry.mail), "subject": " ".join(subject.split()), "body": body}
        return message("mail", ", ".join(entry.mail), mail, attachments=attachments)
    assert isinstance(entry, SqlNotification)
    names = set(sql_names(entry.sql))
    params = {k: v for k, v in variables.items() if k in names}
    statement = {"database": entry.database, "sql": entry.sql, "params": params}
    return message("sql", _hide_password(entry.database), statement)


def default_body(variables: Mapping[str, Any]) -> str:
    """A mail body listing every variable, one per line."""
    width = max(len(k) for k in variables)
    return "\n".join(f"{k.ljust(width)}  {v}" for k, v in variables.items()) + "\n"


def _one_line(text: str) -> str:
    """A header value on one line: a file name cannot add a header."""
    return "".join(" " if c in "\r\n\x00" else c for c in text)


def _url_values(variables: Mapping[str, Any]) -> dict[str, Any]:
    """Texts URL-quoted (every reserved character escaped); numbers as they are."""
    return {k: quote(v, safe="") if isinstance(v, str) else v for k, v in variables.items()}


def _without_query(url: str) -> str:
    """The URL without its query (which may carry file names or tokens)."""
    return url.split("?", 1)[0]


def _hide_password(database: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(database).render_as_string(hide_password=True)


__all__ = ["DEFAULT_SUBJECT", "Message", "default_body", "new_delivery_id", "render"]
