"""Real servers on loopback for the notification tests: an HTTP receiver whose answers a
test scripts, and an SMTP server (Twisted's own) that keeps the mails it receives."""

from __future__ import annotations

import email
from dataclasses import dataclass, field
from email.message import Message
from typing import Any

from twisted.internet import defer, reactor
from twisted.internet.interfaces import IListeningPort
from twisted.mail import smtp
from twisted.mail._cred import PLAINCredentials  # smtp exports only LOGIN
from twisted.web import resource, server
from zope.interface import implementer


@dataclass
class Received:
    """One request the receiver answered."""

    method: str
    uri: str
    headers: dict[str, str]
    body: bytes
    answered: int


class Receiver(resource.Resource):
    """Answers each request as the next step of ``script`` says (then 200 for ever):
    a status code, or ``"hang"`` (no answer until the test ends)."""

    isLeaf = True

    def __init__(self, script: list[Any] | None = None) -> None:
        super().__init__()
        self.script = list(script or [])
        self.received: list[Received] = []
        self.hanging: list[Any] = []
        self.port: IListeningPort | None = None

    def render(self, request: Any) -> Any:  # noqa: D102
        step = self.script.pop(0) if self.script else 200
        headers = {
            k.decode().lower(): v[0].decode() for k, v in request.requestHeaders.getAllRawHeaders()
        }
        body = request.content.read()
        code = 0 if step == "hang" else int(step)
        self.received.append(
            Received(request.method.decode(), request.uri.decode(), headers, body, code)
        )
        if step == "hang":
            self.hanging.append(request)
            request.notifyFinish().addErrback(lambda _f: None)
            return server.NOT_DONE_YET
        request.setResponseCode(code)
        return b"ok"

    def listen(self, port: int = 0) -> int:
        """Start listening on loopback (``port`` 0: any free one); returns the port."""
        site = server.Site(self)
        site.noisy = False
        self.port = reactor.listenTCP(port, site, interface="127.0.0.1")
        return self.port.getHost().port

    def close(self) -> defer.Deferred[Any]:
        """Stop listening and drop requests left hanging."""
        for request in self.hanging:
            if request.channel is not None:
                request.channel.transport.abortConnection()
        self.hanging = []
        port, self.port = self.port, None
        return port.stopListening() if port is not None else defer.succeed(None)


@dataclass
class Mailbox:
    """The mails an SMTP server received."""

    mails: list[Message] = field(default_factory=list)
    envelopes: list[tuple[str, list[str]]] = field(default_factory=list)


@implementer(smtp.IMessage)
class _Collected:
    def __init__(self, box: Mailbox, sender: str, recipients: list[str]) -> None:
        self.box, self.sender, self.recipients, self.lines = box, sender, recipients, []

    def lineReceived(self, line: bytes) -> None:  # noqa: N802, D102
        self.lines.append(line)

    def eomReceived(self) -> defer.Deferred[None]:  # noqa: N802, D102
        self.box.mails.append(email.message_from_bytes(b"\n".join(self.lines)))
        self.box.envelopes.append((self.sender, self.recipients))
        return defer.succeed(None)

    def connectionLost(self) -> None:  # noqa: N802, D102
        pass


@implementer(smtp.IMessageDelivery)
class _Delivery:
    def __init__(self, box: Mailbox, refuse: list[int]) -> None:
        self.box, self.refuse, self._sender, self._to = box, refuse, "", []

    def receivedHeader(self, helo: Any, origin: Any, recipients: Any) -> bytes:  # noqa: N802, D102
        self._sender = str(origin)
        return b"Received: by the test's SMTP server"

    def validateFrom(self, helo: Any, origin: Any) -> Any:  # noqa: N802, D102
        if self.refuse:
            code = self.refuse.pop(0)
            raise smtp.SMTPBadSender(origin, code, "refused by the test")
        return origin

    def validateTo(self, user: Any) -> Any:  # noqa: N802, D102
        self._to.append(str(user.dest))
        recipients = self._to
        return lambda: _Collected(self.box, self._sender, list(recipients))


class _Factory(smtp.SMTPFactory):
    def __init__(self, box: Mailbox, refuse: list[int]) -> None:
        super().__init__()
        self.box, self.refuse = box, refuse
        self.noisy = False

    def buildProtocol(self, addr: Any) -> Any:  # noqa: N802, D102
        p = smtp.ESMTP()
        p.factory = self
        p.host = b"test.example"
        p.delivery = _Delivery(self.box, self.refuse)
        return p


class SmtpServer:
    """An ESMTP server on loopback; ``refuse`` lists codes for the next senders (4xx/5xx)."""

    def __init__(self, refuse: list[int] | None = None) -> None:
        self.box = Mailbox()
        self.refuse = list(refuse or [])
        self.port: IListeningPort | None = None

    def listen(self) -> int:  # noqa: D102
        self.port = reactor.listenTCP(0, _Factory(self.box, self.refuse), interface="127.0.0.1")
        return self.port.getHost().port

    def close(self) -> defer.Deferred[Any]:  # noqa: D102
        port, self.port = self.port, None
        return port.stopListening() if port is not None else defer.succeed(None)


class _Realm:
    """Logged-in senders get the server's delivery; the names that logged in are kept."""

    def __init__(self, delivery_for: Any, logins: list[str]) -> None:
        self.delivery_for = delivery_for
        self.logins = logins

    def requestAvatar(self, avatar_id: Any, mind: Any, *interfaces: Any) -> Any:  # noqa: N802, D102
        self.logins.append(avatar_id.decode() if isinstance(avatar_id, bytes) else avatar_id)
        return smtp.IMessageDelivery, self.delivery_for(), lambda: None


class SecureSmtpServer(SmtpServer):
    """An ESMTP server offering STARTTLS (with ``certificate``) and AUTH PLAIN/LOGIN for
    ``users``; it records whether each mail came over TLS and who logged in."""

    def __init__(self, certificate: Any, users: dict[str, str]) -> None:
        super().__init__()
        self.certificate = certificate
        self.users = users
        self.logins: list[str] = []
        self.tls: list[bool] = []

    def listen(self) -> int:  # noqa: D102
        from twisted.cred import checkers, portal
        from twisted.internet.interfaces import ISSLTransport

        server = self
        box, refuse = self.box, self.refuse
        checker = checkers.InMemoryUsernamePasswordDatabaseDontUse(
            **{k: v.encode() for k, v in self.users.items()}
        )

        class Factory(_Factory):
            def buildProtocol(self, addr: Any) -> Any:  # noqa: N802
                p = smtp.ESMTP(
                    chal={b"LOGIN": smtp.LOGINCredentials, b"PLAIN": PLAINCredentials},
                    contextFactory=server.certificate.options(),
                )
                p.factory = self
                p.host = b"test.example"
                delivery = _Delivery(box, refuse)

                def delivered() -> Any:
                    server.tls.append(ISSLTransport.providedBy(p.transport))
                    return delivery

                p.portal = portal.Portal(_Realm(delivered, server.logins), [checker])
                p.delivery = None  # only a logged-in sender may send
                return p

        self.port = reactor.listenTCP(0, Factory(box, refuse), interface="127.0.0.1")
        return self.port.getHost().port
