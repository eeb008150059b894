"""The notifications part of the admin: its queue, its senders, what it listens to.

``create_notifications`` builds it from the configuration; the admin starts it before
the farm takes files and stops it after.  It subscribes to the scheduler's public
events (a file done, a file failed) and turns each finished file into its
notifications; :class:`AdminMails` sends the operators' own mails (emergency, debug),
at most a handful per period.
"""

from __future__ import annotations

import collections
import os
from typing import TYPE_CHECKING, Any

from twisted.internet import defer, task
from twisted.logger import Logger

from ..config.notify import NotificationsSection
from ..events import Subscription
from ..logs import printable
from ..prognosis import SYSTEM
from ..reactors import IFarmReactor
from ..scheduler import Finished
from . import Notifier, Sender, read_text
from .http import HttpSender
from .mail import MailSender
from .render import Message, new_delivery_id
from .sql import SqlSender
from .store import NotificationStore, Stored
from .triggers import file_messages, mails_attachments

if TYPE_CHECKING:
    from ..config.loader import Configuration
    from ..context.paths import Roots
    from ..scheduler import Scheduler
    from ..store import Store

#: Admin mails' kinds.
EMERGENCY, DEBUG = "emergency", "debug"


class AdminMails:
    """The operators' own mails, rate-limited per kind: an outage sends a handful."""

    log = Logger()

    def __init__(self, notifier: Notifier, settings: NotificationsSection, clock: Any) -> None:
        self.notifier = notifier
        self.settings = settings
        self.clock = clock
        self._sent: dict[str, collections.deque[float]] = collections.defaultdict(collections.deque)
        self._held_back: collections.Counter[str] = collections.Counter()

    def emergency(self, subject: str, body: str) -> None:
        """Something needs a person now."""
        self._mail(EMERGENCY, self.settings.emergency, subject, body)

    def debug(self, subject: str, body: str, attachments: tuple[tuple[str, str], ...] = ()) -> None:
        """Something a person may want to look at."""
        self._mail(DEBUG, self.settings.debug, subject, body, attachments)

    def _mail(
        self,
        kind: str,
        to: list[str],
        subject: str,
        body: str,
        attachments: tuple[tuple[str, str], ...] = (),
    ) -> None:
        if not to:
            return
        now = self.clock.seconds()
        sent = self._sent[kind]
        while sent and sent[0] <= now - self.settings.admin_mail_period:
            sent.popleft()
        if len(sent) >= self.settings.admin_mails:
            self._held_back[kind] += 1
            self.log.info(
                "{kind} mail not sent (rate limit): {subject}", kind=kind, subject=subject
            )
            return
        sent.append(now)
        held, self._held_back[kind] = self._held_back[kind], 0
        if held:
            body += f"\n({held} more {kind} mails were not sent: at most "
            body += f"{self.settings.admin_mails} per {self.settings.admin_mail_period:g} s.)\n"
        message = Message(
            new_delivery_id(),
            "mail",
            f"admin-{kind}",
            ", ".join(to),
            {"to": list(to), "subject": f"[transcoder-admin {kind}] {subject}", "body": body},
            attachments=attachments,
        )
        self.notifier.add_soon([message])


class Alarms:
    """What needs a person now, from the core's public events, as emergency mails: a
    folder monitoring cannot scan, a worker lost, the reports database unreachable for
    longer than ``notifications.database-alarm-after``."""

    def __init__(
        self,
        mails: AdminMails,
        settings: NotificationsSection,
        clock: Any,
        *,
        monitoring: Any = None,
        workers: Any = None,
        db: Any = None,
    ) -> None:
        self.mails = mails
        self.settings = settings
        self.clock = clock
        #: What it listens to: monitoring's fail_to_run, the worker set's worker_lost and
        #: worker_message, the reports database's unreachable_since (each may be None).
        self.monitoring, self.workers, self.db = monitoring, workers, db
        self._subscriptions: list[Subscription] = []
        self._told: dict[tuple[str, ...], float] = {}
        self._database_told = False
        self._check: task.LoopingCall | None = None

    def start(self) -> None:  # noqa: D102
        monitoring, workers = self.monitoring, self.workers
        if monitoring is not None:
            self._subscriptions.append(monitoring.fail_to_run.subscribe(self.scan_failed))
        if workers is not None:
            self._subscriptions.append(workers.worker_lost.subscribe(self.worker_lost))
            self._subscriptions.append(workers.worker_message.subscribe(self.worker_said))
        if self.db is not None:
            self._check = task.LoopingCall(self.check_database)
            self._check.clock = self.clock
            self._check.start(min(30.0, self.settings.database_alarm_after / 4), now=False)

    def stop(self) -> None:  # noqa: D102
        for subscription in self._subscriptions:
            subscription.unsubscribe()
        self._subscriptions = []
        if self._check is not None and self._check.running:
            self._check.stop()

    def _once(self, key: tuple[str, ...]) -> bool:
        """Whether ``key`` was not told within the admin-mail period (then it is now)."""
        now = self.clock.seconds()
        if now - self._told.get(key, -1e18) < self.settings.admin_mail_period:
            return False
        self._told[key] = now
        return True

    def scan_failed(self, problem: Any) -> None:
        """Monitoring cannot scan a folder (on this host or on a worker)."""
        if self._once(("scan", problem.customer, problem.profile, problem.folder)):
            self.mails.emergency(
                f"monitoring cannot scan {problem.customer}/{problem.profile}",
                f"The incoming folder {problem.folder} of {problem.customer}/"
                f"{problem.profile} cannot be scanned: {problem.message}\n"
                "Its files are not taken until it can.\n",
            )

    def worker_lost(self, lost: tuple[str, str]) -> None:
        """A worker fell silent; its jobs start again elsewhere."""
        name, why = lost
        if self._once(("worker", name)):
            self.mails.emergency(
                f"worker {name} lost",
                f"Worker {name} is lost ({why}); its jobs start again elsewhere.\n",
            )

    def worker_said(self, said: tuple[str, dict[str, Any]]) -> None:
        """A worker's warning or error, for the debug recipients."""
        name, message = said
        text = printable(message.get("text", ""))
        level = printable(message.get("level", "warn"))
        self.mails.debug(f"worker {name}: {level}: {text[:80]}", f"{name} ({level}): {text}\n")

    def check_database(self) -> None:
        """Mail once when the database has been unreachable too long (again after it
        answered in between)."""
        since = self.db.unreachable_since
        if since is None:
            self._database_told = False
            return
        down = self.clock.seconds() - since
        if down >= self.settings.database_alarm_after and not self._database_told:
            self._database_told = True
            self.mails.emergency(
                "the reports database is unreachable",
                f"The reports database has not answered for {down:.0f} s. Rows wait in "
                "the spool and are written when it answers; nothing is lost.\n",
            )


class Notifications:
    """The notifier with its hooks on the core's events."""

    log = Logger()

    def __init__(
        self,
        notifier: Notifier,
        mails: AdminMails,
        store: Store,
        roots: Roots,
        scheduler: Scheduler,
        *,
        admin_dir: str,
        customers_dir: str,
        alarms: Alarms | None = None,
    ) -> None:
        self.alarms = alarms
        self.notifier = notifier
        self.mails = mails
        self.store = store
        self.roots = roots
        self.scheduler = scheduler
        self.admin_dir = admin_dir
        self.customers_dir = customers_dir
        self._subscriptions: list[Subscription] = []
        notifier.gave_up = self._gave_up

    async def start(self) -> None:
        """Open the queue, deliver what is left, and listen to files ending."""
        await self.notifier.start()

        def finished(event: Finished) -> defer.Deferred[None]:
            return defer.Deferred.fromCoroutine(self.file_finished(event))

        self._subscriptions = [
            self.scheduler.transcoding_done.subscribe(finished),
            self.scheduler.transcoding_failed.subscribe(finished),
        ]
        if self.alarms is not None:
            self.alarms.start()

    async def stop(self) -> None:
        """Stop listening and delivering (what is queued stays for the next start)."""
        for subscription in self._subscriptions:
            subscription.unsubscribe()
        self._subscriptions = []
        if self.alarms is not None:
            self.alarms.stop()
        await self.notifier.stop()

    async def file_finished(self, finished: Finished) -> None:
        """Write down every notification of a finished file, then deliver them."""
        report = finished.report
        profile = self.store.profile(report.customer, report.profile)
        if profile is None:
            self.log.warn(
                "no notifications for {relpath}: profile {customer}/{profile} is gone",
                relpath=printable(report.relpath),
                customer=report.customer,
                profile=report.profile,
            )
            return
        attachments: tuple[tuple[str, str], ...] = ()
        path = self._local(report.report_path) if report.report_path else None
        farm_problem = report.failure is not None and report.failure.kind == SYSTEM
        if path is not None and (farm_problem or mails_attachments(report, profile)):
            # A failed file's mail carries its report and its diagnosis.
            attachments = await self._documents(path, report.diagnosis)
        if farm_problem and report.failure is not None:
            # The farm's failure, not the upload's: the operators may want to look.
            self.mails.debug(
                f"job {report.job_id} failed on {report.worker}: {report.failure.reason}",
                f"{report.customer}/{report.profile}/{report.relpath} failed for a system "
                f"reason after {report.attempt} attempts: {report.failure.reason}\n",
                attachments,
            )
        messages = file_messages(
            report,
            profile,
            self._local,
            admin_dir=self.admin_dir,
            customers_dir=self.customers_dir,
            attachments=lambda: attachments,
        )
        await self.notifier.add(messages)

    async def _documents(
        self, report_file: str, diagnosis: str | None
    ) -> tuple[tuple[str, str], ...]:
        """A report's text and its diagnosis's (those that can be read), as attachments."""
        files = [report_file]
        if diagnosis:
            files.append(os.path.join(os.path.dirname(report_file), diagnosis))
        found: tuple[tuple[str, str], ...] = ()
        for file in files:
            text = await read_text(file)
            if text is not None:
                found += ((os.path.basename(file), text),)
        return found

    def _local(self, virtual: str) -> str | None:
        try:
            return self.roots.local(virtual)
        except Exception:
            return None

    def _gave_up(self, stored: Stored) -> None:
        if stored.trigger.startswith("admin-"):
            return  # an admin mail that failed is logged, never mailed about
        self.mails.emergency(
            f"a notification gave up: {stored.trigger} of {stored.relpath}",
            f"Notification {stored.id} ({stored.kind}) to {stored.destination}\n"
            f"for {stored.customer}/{stored.profile}/{stored.relpath}"
            + (f" (target {stored.target})" if stored.target else "")
            + f"\ngave up after {stored.attempts} attempts: {stored.last_error}\n"
            f'Retry it with POST /api/v1/notifications/retry {{"id": "{stored.id}"}}.\n',
        )


def create_notifications(
    config: Configuration,
    store: Store,
    roots: Roots,
    scheduler: Scheduler,
    reactor: IFarmReactor,
    *,
    monitoring: Any = None,
    workers: Any = None,
    db: Any = None,
) -> Notifications:
    """The notifications part for a configuration (nothing opens until it starts)."""
    settings = config.admin.notifications
    queue = NotificationStore(os.path.join(config.state_dir(), "notifications.sqlite"), reactor)
    senders: dict[str, Sender] = {
        "http": HttpSender(reactor, settings.http_timeout),
        "mail": MailSender(reactor, config.smtp_settings(), settings.sender),
        "sql": SqlSender(reactor),
    }
    notifier = Notifier(queue, settings, senders, reactor)
    mails = AdminMails(notifier, settings, reactor)
    alarms = Alarms(mails, settings, reactor, monitoring=monitoring, workers=workers, db=db)
    return Notifications(
        notifier,
        mails,
        store,
        roots,
        scheduler,
        admin_dir=config.base_dir,
        customers_dir=config.customers_dir(),
        alarms=alarms,
    )


__all__ = ["AdminMails", "Notifications", "create_notifications"]
