"""Mail notifications over SMTP, with Twisted's ESMTP client.

``notifications.smtp.starttls`` says whether to use STARTTLS: ``none``, ``optional``
(when the server offers it) or ``required``; with a ``username`` the client logs in
(the password is read from ``password-file`` at each attempt, never kept or logged).
STARTTLS checks the server's certificate against the system's certificate authorities,
or against those of ``trust-roots`` (a PEM file, or a folder of them, also read at each
attempt, so a renewed file is taken without a restart).
A temporary refusal (4xx), a timeout or a connection that fails is tried again; a
permanent one (5xx) gives up.  The notification's id is the mail's Message-ID, so a
mail sent twice can be recognised.
"""

from __future__ import annotations

import io
import os
import re
from collections.abc import Mapping, Sequence
from email.message import EmailMessage
from email.utils import formatdate, getaddresses
from typing import Any

from OpenSSL import crypto
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
    ) -> None:
        self.reactor = reactor
        self.settings = settings
        self.sender = sender

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
            else ssl.optionsForClientTLS(settings.host, trustRoot=self._trust_root()),
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

    def _trust_root(self) -> Any:
        """Whom STARTTLS trusts: the trust-roots file's authorities, or the system's."""
        path = self.settings.trust_roots
        if not path:
            return None
        try:
            return read_trust_roots(path)
        except TrustRootsError as e:
            raise DeliveryFailed(f"notifications.smtp.trust-roots: {e}", False) from None

    async def close(self) -> None:
        """Nothing stays open between mails."""


def classify(e: smtp.SMTPClientError) -> DeliveryFailed:
    """A failed SMTP exchange: a 4xx (or no code) may pass, a 5xx will not."""
    code = max(getattr(e, "code", None) or 0, 0)  # Twisted's -1: no answer from the server
    resp = getattr(e, "resp", None) or str(e)
    if isinstance(resp, bytes):
        resp = resp.decode("utf-8", "replace")
    text = " ".join(str(resp).split())
    if "certificate verify failed" in text:
        # Tried again: the trust-roots file is read at each attempt, so mending it is enough.
        return DeliveryFailed(
            "the SMTP server's certificate is not signed by an authority it trusts "
            "(notifications.smtp.trust-roots, or the system's): certificate verify failed",
            True,
        )
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


#: A CA bundle larger than this is not one (the system's whole bundle is about 200 KiB).
MAX_TRUST_ROOTS_BYTES = 4 * 1024 * 1024
_PEM_CERTIFICATE = re.compile(
    rb"-----BEGIN CERTIFICATE-----\r?\n.+?\r?\n-----END CERTIFICATE-----", re.DOTALL
)


class TrustRootsError(ValueError):
    """A trust-roots file that cannot be read or holds no usable certificate."""


def read_trust_roots(path: str) -> Any:
    """The certificate authorities of a PEM file (one or more certificates), or of the
    ``*.pem`` files of a folder (as the PB endpoints' ``trustRoots=``), as a Twisted
    trust root; TrustRootsError names what is wrong."""
    if os.path.isdir(path):
        try:
            names = sorted(n for n in os.listdir(path) if n.endswith(".pem"))
        except OSError as e:
            raise TrustRootsError(f"cannot read {path}: {e.strerror}") from None
        if not names:
            raise TrustRootsError(f"{path} holds no *.pem file")
        files = [os.path.join(path, name) for name in names]
    else:
        files = [path]
    return ssl.trustRootFromCertificates([c for f in files for c in _pem_certificates(f)])


def _pem_certificates(path: str) -> list[Any]:
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_TRUST_ROOTS_BYTES + 1)
    except OSError as e:
        raise TrustRootsError(f"cannot read {path}: {e.strerror}") from None
    if len(data) > MAX_TRUST_ROOTS_BYTES:
        raise TrustRootsError(f"{path} is larger than {MAX_TRUST_ROOTS_BYTES} bytes")
    blocks = _PEM_CERTIFICATE.findall(data)
    if not blocks:
        raise TrustRootsError(f"{path} holds no PEM certificate (-----BEGIN CERTIFICATE-----)")
    certificates = []
    for number, block in enumerate(blocks, 1):
        try:
            certificates.append(ssl.Certificate.loadPEM(block))
        except crypto.Error:
            raise TrustRootsError(f"{path}: certificate {number} cannot be read") from None
    return certificates


def _address(text: str) -> str:
    return getaddresses([text])[0][1]


__all__ = ["MailSender", "TrustRootsError", "build_message", "classify", "read_trust_roots"]


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
