"""Mail notifications over SMTP, with Twisted's ESMTP client.

``notifications.smtp.starttls`` says whether to use STARTTLS: ``none``, ``optional``
(when the server offers it) or ``required``; with a ``username`` the client logs in
(the password is read from ``password-file`` at each attempt, never kept or logged).
A temporary refusal (4xx), a timeout or a connection that fails is tried again; a
permanent one (5xx) gives up.  The notification's id is the mail's Message-ID, so a
mail sent twice can be recognised.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from email.message import EmailMessage
from email.utils import formatdate, getaddresses
from typing import Any

from twisted.internet import defer, error, ssl
from twisted.mail import smtp

from ..config.notify import SmtpSettings
from ..reactors import IFarmReactor
from .delivery import DeliveryFailed


class MailSender:
    """Sends mail notifications (and the admin's own mails) through one SMTP server."""

    def __init__(
        self,
        reactor: IFarmReactor,
        settings: SmtpSettings,
        sender: str,
        trust_root: Any = None,
    ) -> None:
        self.reactor = reactor
        self.settings = settings
        self.sender = sender
        #: Whom STARTTLS trusts (an ``IOpenSSLTrustRoot``); None: the platform's CAs.
        self.trust_root = trust_root

    async def send(self, ident: str, payload: Mapping[str, Any]) -> None:
        """One attempt; DeliveryFailed says why it failed and whether to try again."""
        recipients = [addr for _name, addr in getaddresses(list(payload["to"]))]
        message = build_message(
            ident,
            self.sender,
            list(payload["to"]),
            str(payload["subject"]),
            str(payload["body"]),
            [tuple(a) for a in payload.get("attachments") or []],
        )
        settings = self.settings
        password = self._password()
        sent: defer.Deferred[Any] = defer.Deferred()
        factory = _SenderFactory(
            settings.username.encode() if settings.username else None,
            password,
            _address(self.sender),
            recipients,
            io.BytesIO(message),
            sent,
            retries=0,
            timeout=int(settings.timeout),
            contextFactory=None
            if settings.starttls == "none"
            else ssl.optionsForClientTLS(settings.host, trustRoot=self.trust_root),
            heloFallback=True,
            requireAuthentication=bool(settings.username),
            requireTransportSecurity=settings.starttls == "required",
        )
        factory.noisy = False
        connector = self.reactor.connectTCP(
            settings.host, settings.port, factory, timeout=settings.timeout
        )
        sent.addTimeout(settings.timeout * 2, self.reactor, lambda *_: connector.disconnect())
        try:
            await sent
        except BaseException as e:
            connector.disconnect()  # a session that failed is not left open on the server
            if isinstance(e, defer.TimeoutError):
                raise DeliveryFailed(f"no answer from {settings.host} in time", True) from None
            if isinstance(e, smtp.SMTPClientError):
                raise classify(e) from None
            if isinstance(e, error.ConnectError | error.ConnectionLost | error.ConnectionDone):
                raise DeliveryFailed(f"{settings.host}:{settings.port}: {e}", True) from None
            raise

    def _password(self) -> bytes | None:
        path = self.settings.password_file
        if not self.settings.username:
            return None
        if not path:
            raise DeliveryFailed("smtp.username is set but smtp.password-file is not", False)
        try:
            with open(path, encoding="utf-8") as f:
                return f.read().strip().encode()
        except OSError as e:
            raise DeliveryFailed(
                f"cannot read the SMTP password file: {e.strerror}", False
            ) from None

    async def close(self) -> None:
        """Nothing stays open between mails."""


def classify(e: smtp.SMTPClientError) -> DeliveryFailed:
    """A failed SMTP exchange: a 4xx (or no code) may pass, a 5xx will not."""
    code = getattr(e, "code", None) or 0
    resp = getattr(e, "resp", None) or str(e)
    if isinstance(resp, bytes):
        resp = resp.decode("utf-8", "replace")
    text = " ".join(str(resp).split())
    if isinstance(e, smtp.TLSRequiredError | smtp.AUTHRequiredError):
        return DeliveryFailed(f"the SMTP server does not offer what is required: {e}", False)
    if isinstance(e, smtp.AUTHDeclinedError):
        return DeliveryFailed(f"the SMTP server refused the login: {text}", False)
    return DeliveryFailed(
        f"SMTP {code}: {text}" if code else f"SMTP: {text}", not 500 <= code < 600
    )


def build_message(
    ident: str,
    sender: str,
    to: Sequence[str],
    subject: str,
    body: str,
    attachments: Sequence[Sequence[str]] = (),
) -> bytes:
    """The mail as bytes: text body, attachments as text files, the id as Message-ID."""
    message = EmailMessage()
    message["From"] = sender
    message["To"] = ", ".join(to)
    message["Subject"] = subject
    message["Date"] = formatdate(localtime=False, usegmt=True)
    message["Message-ID"] = f"<{ident}@transcoder-admin>"
    message.set_content(body)
    for name, text in attachments:
        message.add_attachment(text, subtype="plain", filename=name)
    return message.as_bytes()


def _address(text: str) -> str:
    return getaddresses([text])[0][1]


__all__ = ["MailSender", "build_message", "classify"]


class _SenderFactory(smtp.ESMTPSenderFactory):
    """Twisted's sender factory, quiet about a connection that ends after the attempt did.

    Once its Deferred has fired (the mail failed, or the attempt timed out and we hung
    up), Twisted drops it; a connection lost later would errback the missing Deferred and
    log an AttributeError as an unhandled error.  That late loss changes nothing: the
    attempt has its answer already.
    """

    def clientConnectionLost(self, connector: Any, err: Any) -> None:  # noqa: N802
        """Forward, unless the attempt is over."""
        if not hasattr(self, "result"):
            self.currentProtocol = None
            return
        super().clientConnectionLost(connector, err)

    def clientConnectionFailed(self, connector: Any, err: Any) -> None:  # noqa: N802
        """Forward, unless the attempt is over."""
        if not hasattr(self, "result"):
            return
        super().clientConnectionFailed(connector, err)
