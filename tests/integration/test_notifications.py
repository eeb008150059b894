"""Notifications delivered to real servers on loopback: an HTTP receiver that is down,
then slow, then failing, then fine; Twisted's own SMTP server; SQLite and PostgreSQL.
Each notification is written down first and survives a restart of its notifier."""

from __future__ import annotations

import os
import sqlite3
import tempfile
import uuid
from typing import Any

import pytest
import sqlalchemy as sa
from standardwebhooks.webhooks import Webhook
from twisted.internet import defer, reactor, task
from twisted.trial import unittest

from tests.farm import free_port
from tests.integration.notify_servers import Receiver, SmtpServer
from tests.integration.test_reports_db import _postgres_url, execute
from transcoder_admin.config.notify import (
    HttpNotification,
    MailNotification,
    NotificationsSection,
    SqlNotification,
)
from transcoder_admin.notify import Notifier
from transcoder_admin.notify.http import HttpSender
from transcoder_admin.notify.mail import MailSender
from transcoder_admin.notify.render import render
from transcoder_admin.notify.sql import SqlSender
from transcoder_admin.notify.store import DELIVERED, FAILED, QUEUED, NotificationStore

#: Fast retries: the test waits fractions of a second, not minutes.
SETTINGS = NotificationsSection.model_validate(
    {
        "http-timeout": 0.5,
        "retry": {"attempts": 5, "first-delay": 0.05, "max-delay": 0.2},
        "smtp": {"host": "127.0.0.1", "starttls": "none", "timeout": 5},
        "emergency": ["ops@example.com"],
    }
)
SECRET = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def variables(**changes: Any) -> dict[str, Any]:
    """A file's variables (the few these tests read, the rest as a report gives them)."""
    from transcoder_admin.notify.variables import file_variables
    from transcoder_admin.records import FileFacts, Report, SourceFacts

    report = Report(
        job_id="J1",
        attempt=1,
        outcome="done",
        customer="acme",
        profile="web",
        relpath="news/clip one&two.mov",
        report_path="default:/reports/done/clip.J1.yaml",
        file=FileFacts(size=1234),
        source_info=SourceFacts(mime_type="video/mp4", duration=3723.5, has_video=True),
    )
    values = file_variables(
        report, source_final="default:/done/clip.mov", output_folder=None, locate=lambda v: None
    )
    return {**values, **changes}


async def until(predicate: Any, timeout: float = 10.0) -> None:
    """Wait (on the real reactor) until ``predicate()`` holds."""
    waited = 0.0
    while not predicate():
        if waited > timeout:
            raise AssertionError(f"timed out waiting for {predicate}")
        await task.deferLater(reactor, 0.02, lambda: None)
        waited += 0.02


async def settle() -> None:
    """Let the SMTP sessions just ended close on both sides."""
    await task.deferLater(reactor, 0.2, lambda: None)


class NotifierTests(unittest.TestCase):
    """A notifier on a real store, real senders and real servers."""

    timeout = 60

    def setUp(self) -> None:
        self.folder = tempfile.mkdtemp(prefix="notify-")
        self.secret_file = os.path.join(self.folder, "hooks.secret")
        with open(self.secret_file, "w") as f:
            f.write(SECRET + "\n")
        self.gave_up: list[Any] = []
        self.notifiers: list[Notifier] = []

    async def start_notifier(self, settings: NotificationsSection = SETTINGS) -> Notifier:
        store = NotificationStore(os.path.join(self.folder, "notifications.sqlite"), reactor)
        senders = {
            "http": HttpSender(reactor, settings.http_timeout),
            "mail": MailSender(reactor, settings.smtp, "farm@example.com"),
            "sql": SqlSender(reactor),
        }
        notifier = Notifier(store, settings, senders, reactor, gave_up=self.gave_up.append)
        await notifier.start()
        self.notifiers.append(notifier)
        self.addCleanup(self._stop, notifier)
        return notifier

    async def _stop(self, notifier: Notifier) -> None:
        if notifier in self.notifiers:
            self.notifiers.remove(notifier)
            await notifier.stop()

    async def stop_notifier(self, notifier: Notifier) -> None:
        await self._stop(notifier)

    def receiver(self, script: list[Any] | None = None, port: int = 0) -> Receiver:
        receiver = Receiver(script)
        if port >= 0:
            receiver.listen(port)
        self.addCleanup(receiver.close)
        return receiver

    async def state_of(self, notifier: Notifier, ident: str) -> dict[str, Any]:
        page = await notifier.listed(None, 100)
        [row] = [r for r in page["items"] if r["id"] == ident]
        return row

    # -- HTTP

    @defer.inlineCallbacks
    def test_a_post_is_retried_through_down_slow_and_500_then_delivered_once_signed(self):
        """Down (refused), slow (timeout), 500, then 200: four attempts with one
        webhook-id, each correctly signed; delivered; nothing given up."""
        port = free_port()
        notifier = yield defer.ensureDeferred(self.start_notifier())
        entry = HttpNotification(
            url=f"http://127.0.0.1:{port}/hook?f=%(inputRelPath)s",
            method="POST",
            secret_file="hooks.secret",
            headers={"X-Customer": "%(customerName)s"},
        )
        message = render(entry, variables(), secret_path=self.secret_file)
        yield defer.ensureDeferred(notifier.add([message]))
        yield defer.ensureDeferred(
            until(lambda: self._attempts(notifier, message.id) >= 1)
        )  # refused: nobody listens yet
        receiver = self.receiver(["hang", 500], port=port)
        yield defer.ensureDeferred(until(lambda: len(receiver.received) == 3))
        # The third request has arrived; its answer is written to the store a moment later.
        yield defer.ensureDeferred(until(lambda: self._state(notifier, message.id) != QUEUED))
        row = yield defer.ensureDeferred(self.state_of(notifier, message.id))
        assert (row["state"], row["attempts"]) == (DELIVERED, 4), row
        ids = {r.headers["webhook-id"] for r in receiver.received}
        assert ids == {message.id}
        for request in receiver.received:
            event = Webhook(SECRET).verify(request.body, request.headers)
            assert event["data"]["inputRelPath"] == "news/clip one&two.mov"
            assert request.headers["x-customer"] == "acme"
            assert request.uri == "/hook?f=news%2Fclip%20one%26two.mov"
        assert self.gave_up == []

    def _attempts(self, notifier: Notifier, ident: str) -> int:
        """Attempts made so far, read from the store's file (as an operator could)."""
        with sqlite3.connect(notifier.store.path) as conn:
            found = conn.execute("SELECT attempts FROM notifications WHERE id = ?", (ident,))
            value = found.fetchone()
        return value[0] if value else 0

    @defer.inlineCallbacks
    def test_a_404_gives_up_at_once_and_is_listed_failed_then_retried_by_hand(self):
        """A 4xx other than 408/429 will not change: failed after one attempt, handed to
        the emergency path; retried by hand it is delivered."""
        receiver = self.receiver([404])
        notifier = yield defer.ensureDeferred(self.start_notifier())
        url = f"http://127.0.0.1:{receiver.port.getHost().port}/x?ok=%(success)d"
        message = render(HttpNotification(url=url), variables())
        yield defer.ensureDeferred(notifier.add([message]))
        yield defer.ensureDeferred(until(lambda: len(self.gave_up) == 1))
        row = yield defer.ensureDeferred(self.state_of(notifier, message.id))
        assert (row["state"], row["attempts"]) == (FAILED, 1)
        assert row["last_error"].startswith("HTTP 404")
        failed = yield notifier.listed(FAILED, 10)
        assert [r["id"] for r in failed["items"]] == [message.id] and failed["total"] == 1
        again = yield defer.ensureDeferred(notifier.retry(message.id))
        assert again is not None and again["state"] == QUEUED
        yield defer.ensureDeferred(until(lambda: len(receiver.received) == 2))
        yield defer.ensureDeferred(until(lambda: self._attempts(notifier, message.id) == 1))
        row = yield defer.ensureDeferred(self.state_of(notifier, message.id))
        assert row["state"] == DELIVERED
        assert receiver.received[1].uri == "/x?ok=1"
        missing = yield defer.ensureDeferred(notifier.retry("msg_nope"))
        assert missing is None

    @defer.inlineCallbacks
    def test_a_hanging_endpoint_delays_no_other_endpoint(self):
        """One endpoint never answers; another is notified at once, several times over."""
        hanging = self.receiver(["hang"] * 20)
        fine = self.receiver()
        patient = SETTINGS.model_copy(update={"http_timeout": 10.0})
        notifier = yield defer.ensureDeferred(self.start_notifier(patient))
        slow_url = f"http://127.0.0.1:{hanging.port.getHost().port}/slow"
        fast_url = f"http://127.0.0.1:{fine.port.getHost().port}/fast"
        messages = [render(HttpNotification(url=slow_url), variables()) for _ in range(5)]
        messages += [render(HttpNotification(url=fast_url), variables()) for _ in range(5)]
        started = reactor.seconds()
        yield defer.ensureDeferred(notifier.add(messages))
        yield defer.ensureDeferred(until(lambda: len(fine.received) == 5, timeout=9))
        # Long before the hanging requests time out (10 s), the others were all answered.
        assert reactor.seconds() - started < patient.http_timeout / 2

    @defer.inlineCallbacks
    def test_queued_notifications_survive_a_restart_and_arrive_once_each(self):
        """Stopped with three notifications queued (their endpoint down): a new notifier on
        the same file delivers each once, by its delivery id."""
        port = free_port()
        notifier = yield defer.ensureDeferred(self.start_notifier())
        url = f"http://127.0.0.1:{port}/n/%(jobId)s"
        messages = [render(HttpNotification(url=url), variables(jobId=f"J{i}")) for i in range(3)]
        yield defer.ensureDeferred(notifier.add(messages))
        yield defer.ensureDeferred(
            until(lambda: all(self._attempts(notifier, m.id) >= 1 for m in messages))
        )
        yield defer.ensureDeferred(self.stop_notifier(notifier))
        receiver = self.receiver(port=port)
        again = yield defer.ensureDeferred(self.start_notifier())
        yield defer.ensureDeferred(
            until(lambda: all(self._state(again, m.id) == DELIVERED for m in messages))
        )
        yield task.deferLater(reactor, 0.3, lambda: None)  # nothing more comes
        ids = sorted(r.headers["webhook-id"] for r in receiver.received)
        assert ids == sorted(m.id for m in messages)
        counts = yield again.counts()
        assert counts == {QUEUED: 0, DELIVERED: 3, FAILED: 0}

    # -- mail

    @defer.inlineCallbacks
    def test_a_mail_reaches_a_real_smtp_server_with_its_attachment(self):
        """Subject and body from templates, the report attached, the id as Message-ID."""
        smtp_server = SmtpServer()
        self.addCleanup(smtp_server.close)
        port = smtp_server.listen()
        settings = SETTINGS.model_copy(
            update={"smtp": SETTINGS.smtp.model_copy(update={"port": port})}
        )
        notifier = yield defer.ensureDeferred(self.start_notifier(settings))
        entry = MailNotification(
            mail=["Jane Doe <jane@example.com>"], subject="Failed: %(inputRelPath)s"
        )
        values = variables(success=0, trigger="file-failed", errorMessage="not a media file")
        message = render(entry, values, attachments=(("clip.J1.yaml", "outcome: failed\n"),))
        yield defer.ensureDeferred(notifier.add([message]))
        yield defer.ensureDeferred(until(lambda: len(smtp_server.box.mails) == 1))
        mail = smtp_server.box.mails[0]
        assert mail["Subject"] == "Failed: news/clip one&two.mov"
        assert mail["Message-ID"] == f"<{message.id}@transcoder-admin>"
        parts = list(mail.walk())
        names = [p.get_filename() for p in parts if p.get_filename()]
        assert names == ["clip.J1.yaml"]
        body = next(
            p for p in parts if p.get_content_type() == "text/plain" and not p.get_filename()
        )
        assert "not a media file" in body.get_payload(decode=True).decode()
        assert smtp_server.box.envelopes[0][1] == ["jane@example.com"]

    @defer.inlineCallbacks
    def test_a_temporary_smtp_refusal_is_retried_and_a_permanent_one_gives_up(self):
        """451 then accepted: delivered on the second attempt; 550: failed at once."""
        smtp_server = SmtpServer(refuse=[451])
        self.addCleanup(smtp_server.close)
        port = smtp_server.listen()
        settings = SETTINGS.model_copy(
            update={"smtp": SETTINGS.smtp.model_copy(update={"port": port})}
        )
        notifier = yield defer.ensureDeferred(self.start_notifier(settings))
        first = render(MailNotification(mail=["a@example.com"]), variables())
        yield defer.ensureDeferred(notifier.add([first]))
        yield defer.ensureDeferred(until(lambda: len(smtp_server.box.mails) == 1))
        row = yield defer.ensureDeferred(self.state_of(notifier, first.id))
        yield defer.ensureDeferred(until(lambda: self._state(notifier, first.id) == DELIVERED))
        assert row["attempts"] >= 1
        smtp_server.refuse.append(550)
        second = render(MailNotification(mail=["b@example.com"]), variables())
        yield defer.ensureDeferred(notifier.add([second]))
        yield defer.ensureDeferred(until(lambda: self._state(notifier, second.id) == FAILED))
        assert self._attempts(notifier, second.id) == 1
        assert len(smtp_server.box.mails) == 1

    def _state(self, notifier: Notifier, ident: str) -> str | None:
        with sqlite3.connect(notifier.store.path) as conn:
            value = conn.execute(
                "SELECT state FROM notifications WHERE id = ?", (ident,)
            ).fetchone()
        return value[0] if value else None

    # -- SQL

    @defer.inlineCallbacks
    def test_an_sql_notification_binds_its_values_never_builds_them_into_the_text(self):
        """A file name with a quote arrives intact in its row (bound, not spliced)."""
        database = os.path.join(self.folder, "delivered.db")
        with sqlite3.connect(database) as conn:
            conn.execute("CREATE TABLE delivered (path TEXT, seconds REAL)")
        notifier = yield defer.ensureDeferred(self.start_notifier())
        entry = SqlNotification(
            sql="INSERT INTO delivered (path, seconds) VALUES (:inputRelPath, :sourceDuration)",
            database=f"sqlite:///{database}",
        )
        name = "it's'); DROP TABLE delivered; --.mov"
        message = render(entry, variables(inputRelPath=name))
        yield defer.ensureDeferred(notifier.add([message]))
        yield defer.ensureDeferred(until(lambda: self._state(notifier, message.id) == DELIVERED))
        with sqlite3.connect(database) as conn:
            rows = conn.execute("SELECT path, seconds FROM delivered").fetchall()
        assert rows == [(name, 3723.5)]

    @pytest.mark.postgres
    async def test_an_sql_notification_on_postgresql(self) -> None:
        """The same on PostgreSQL (a schema of this test's own): the row arrives."""
        server = _postgres_url()
        schema = f"notify_test_{uuid.uuid4().hex[:12]}"
        execute(server, f'CREATE SCHEMA "{schema}"')
        self.addCleanup(execute, server, f'DROP SCHEMA "{schema}" CASCADE')
        url = (
            sa.make_url(server)
            .update_query_dict({"options": f"-csearch_path={schema}"})
            .render_as_string(hide_password=False)
        )
        execute(url, "CREATE TABLE delivered (path TEXT, seconds DOUBLE PRECISION)")
        notifier = await self.start_notifier()
        entry = SqlNotification(
            sql="INSERT INTO delivered (path, seconds) VALUES (:inputRelPath, :sourceDuration)",
            database=url,
        )
        message = render(entry, variables(inputRelPath="a'b.mov"))
        await notifier.add([message])
        await until(lambda: self._state(notifier, message.id) == DELIVERED, timeout=30)
        engine = sa.create_engine(url, poolclass=sa.NullPool)
        try:
            with engine.connect() as conn:
                rows = conn.execute(sa.text("SELECT path, seconds FROM delivered")).fetchall()
        finally:
            engine.dispose()
        assert [tuple(r) for r in rows] == [("a'b.mov", 3723.5)]


class SecureMailTests(unittest.TestCase):
    """STARTTLS and login against a real ESMTP server with a test CA's certificate."""

    timeout = 60

    def setUp(self) -> None:
        from twisted.internet import ssl

        from tests.integration.test_distributed import make_ca

        self.folder = tempfile.mkdtemp(prefix="smtp-tls-")
        pki = make_ca(os.path.join(self.folder, "pki"))
        with open(pki["cert"]) as c, open(pki["key"]) as k:
            self.certificate = ssl.PrivateCertificate.loadPEM(c.read() + k.read())
        # The trust-roots file as an operator writes it: another CA first, then the farm's.
        other = make_ca(os.path.join(self.folder, "other"))
        self.trust_roots = os.path.join(self.folder, "smtp-cas.pem")
        with open(self.trust_roots, "w") as out:
            for path in (other["ca"], pki["ca"]):
                with open(path) as f:
                    out.write(f.read())
        self.password_file = os.path.join(self.folder, "smtp.password")
        with open(self.password_file, "w") as f:
            f.write("s3cret\n")

    def sender(self, port: int, **smtp: Any) -> MailSender:
        settings = SETTINGS.smtp.model_copy(
            update={
                "port": port,
                "starttls": "required",
                "username": "farm",
                "password_file": self.password_file,
                "trust_roots": self.trust_roots,
                **smtp,
            }
        )
        return MailSender(reactor, settings, "farm@example.com")

    async def test_a_mail_goes_over_starttls_after_a_login(self) -> None:
        """starttls required, username and password file: the server sees TLS and the
        login; the password is read from its file."""
        from tests.integration.notify_servers import SecureSmtpServer

        server = SecureSmtpServer(self.certificate, {"farm": "s3cret"})
        self.addCleanup(server.close)
        port = server.listen()
        message = render(MailNotification(mail=["ops@example.com"]), variables())
        await self.sender(port).send(message.id, dict(message.payload))
        await settle()
        assert len(server.box.mails) == 1
        assert (server.logins, server.tls) == (["farm"], [True])

    async def test_a_refused_login_or_a_server_without_tls_gives_up_at_once(self) -> None:
        """A wrong password, or no STARTTLS where it is required: not retried, and why."""
        from tests.integration.notify_servers import SecureSmtpServer
        from transcoder_admin.notify.delivery import DeliveryFailed

        server = SecureSmtpServer(self.certificate, {"farm": "another"})
        self.addCleanup(server.close)
        port = server.listen()
        message = render(MailNotification(mail=["ops@example.com"]), variables())
        with self.assertRaises(DeliveryFailed) as refused:
            await self.sender(port).send(message.id, dict(message.payload))
        await settle()
        assert not refused.exception.retryable and "login" in refused.exception.reason
        plain = SmtpServer()
        self.addCleanup(plain.close)
        plain_port = plain.listen()
        with self.assertRaises(DeliveryFailed) as no_tls:
            await self.sender(plain_port).send(message.id, dict(message.payload))
        await settle()
        assert not no_tls.exception.retryable, no_tls.exception.reason
        assert server.box.mails == [] and plain.box.mails == []

    async def test_a_server_the_trust_roots_do_not_vouch_for_gets_no_mail(self) -> None:
        """Without trust-roots the system's authorities decide, and they do not know the
        test CA: the mail is not sent (no login, no password over an unchecked link), and
        the reason says what to mend."""
        from tests.integration.notify_servers import SecureSmtpServer
        from transcoder_admin.notify.delivery import DeliveryFailed

        server = SecureSmtpServer(self.certificate, {"farm": "s3cret"})
        self.addCleanup(server.close)
        port = server.listen()
        message = render(MailNotification(mail=["ops@example.com"]), variables())
        with self.assertRaises(DeliveryFailed) as refused:
            await self.sender(port, trust_roots=None).send(message.id, dict(message.payload))
        await settle()
        reason = refused.exception.reason
        assert "certificate verify failed" in reason and "trust-roots" in reason, reason
        assert refused.exception.retryable, "mending the trust-roots file is enough"
        assert server.box.mails == [] and server.logins == []

    async def test_a_trust_roots_file_that_is_missing_or_not_pem_gives_up_and_says_so(
        self,
    ) -> None:
        """The key and the file are named, and no connection is made."""
        from tests.integration.notify_servers import SecureSmtpServer
        from transcoder_admin.notify.delivery import DeliveryFailed

        server = SecureSmtpServer(self.certificate, {"farm": "s3cret"})
        self.addCleanup(server.close)
        port = server.listen()
        message = render(MailNotification(mail=["ops@example.com"]), variables())
        not_pem = os.path.join(self.folder, "not.pem")
        with open(not_pem, "w") as f:
            f.write("just some text\n")
        for path, why in (
            (os.path.join(self.folder, "missing.pem"), "cannot read"),
            (not_pem, "holds no PEM certificate"),
        ):
            with self.assertRaises(DeliveryFailed) as refused:
                await self.sender(port, trust_roots=path).send(message.id, dict(message.payload))
            reason = refused.exception.reason
            assert not refused.exception.retryable, reason
            assert "trust-roots" in reason and path in reason and why in reason, reason
        await settle()
        assert server.box.mails == [] and server.tls == []
