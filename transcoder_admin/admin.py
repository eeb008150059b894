"""TranscoderAdmin: the root of the service tree, and the factory that builds it.

``create_admin`` builds every part from the configuration (no I/O) and adds them to the
admin in their start order; the admin starts them one after the other and stops them in
reverse.  States: ``stopped → starting → started ⇄ paused (via pausing/resuming) →
terminated``.  Parts hear of each other only through events; the subscriptions that
connect them are made here (file intake makes its own).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.internet import defer
from twisted.logger import Logger

from . import __version__
from .config.loader import Configuration
from .context.paths import Roots
from .errors import InvalidStateError
from .events import Subscription
from .intake.files import FileIntake
from .janitor import Janitor
from .metrics import FarmMetrics
from .monitoring import Monitoring
from .notify.service import Notifications, create_notifications
from .operations import Operations
from .parts import start_order
from .proxy import WorkerProxy
from .proxy.cluster import Cluster
from .proxy.components import MONITOR
from .reactors import IFarmReactor, default_reactor
from .reports.db import ReportsDB
from .scheduler import Scheduler
from .service import PartsService
from .store import Store
from .transcoding import Transcoding
from .transcoding.specs import JobSpecs

STOPPED, STARTING, STARTED, PAUSING, PAUSED, RESUMING, TERMINATED = (
    "stopped", "starting", "started", "pausing", "paused", "resuming", "terminated",
)  # fmt: skip
# The admin's state machine, declared in one table: (state, input) → next state.
TRANSITIONS = {
    (STOPPED, "start"): STARTING,
    (STARTING, "started"): STARTED,
    (STARTING, "failed"): TERMINATED,
    (STARTED, "pause"): PAUSING,
    (PAUSING, "paused"): PAUSED,
    (PAUSED, "resume"): RESUMING,
    (RESUMING, "resumed"): STARTED,
    **{(state, "stop"): TERMINATED for state in (STARTING, STARTED, PAUSED, PAUSING, RESUMING)},
}


class TranscoderAdmin(PartsService):
    """The admin service: the root of the service tree."""

    log = Logger()

    def __init__(
        self,
        config: Configuration,
        store: Store,
        db: ReportsDB,
        monitoring: Any,
        transcoding: Transcoding,
        scheduler: Scheduler,
        cluster: Cluster,
        files: FileIntake,
        reactor: IFarmReactor,
        qmaster: Any = None,
        notifications: Notifications | None = None,
    ) -> None:
        super().__init__()
        self.config, self.store, self.db, self.reactor = config, store, db, reactor
        self.monitoring, self.transcoding, self.scheduler = monitoring, transcoding, scheduler
        self.cluster, self.files, self.qmaster = cluster, files, qmaster
        self.notifications = notifications
        self.janitor = Janitor(cluster.components, reactor)
        self.operations = Operations(self)
        self.metrics = FarmMetrics(self.operations.metric_values, reactor.seconds)
        #: What is re-read with the customers (SIGHUP, POST /reload): the API's tokens.
        self.reloads: list[Callable[[], defer.Deferred[Any]]] = []
        self.state = STOPPED
        self.started_at: float | None = None
        self.boot: defer.Deferred[None] | None = None
        self.boot_error: str | None = None
        self._subscriptions: list[Subscription] = []
        self._auto_paused = False

    def _input(self, name: str) -> None:
        key = (self.state, name)
        if key not in TRANSITIONS:
            raise InvalidStateError(f"cannot {name} while {self.state}")
        self.state = TRANSITIONS[key]
        self.log.info("admin {state}", state=self.state)

    # -- start and stop -------------------------------------------------------------

    def startService(self) -> None:  # noqa: N802 (Twisted API)
        """Start the parts in order; ``self.boot`` fires when the admin is started."""
        self.running = 1  # the parts start one by one in start_parts, not all at once here
        self.boot = defer.Deferred.fromCoroutine(self._start())
        self.boot.addErrback(self._boot_failed)

    async def _start(self) -> None:
        self._input("start")
        self.started_at = self.reactor.seconds()
        self._wire()
        try:
            await self.start_parts(self.config.admin.admin.startup_timeout, self.reactor)
        except Exception:
            self._input("failed")
            raise
        self._input("started")
        # The dashboard's chart: the minutes before this start, from the database.
        seeding = self.metrics.per_minute.seed(self.db.query, self.started_at)
        defer.Deferred.fromCoroutine(seeding).addErrback(
            lambda f: self.log.warn(
                "the chart's last hour was not read from the reports database: {error}",
                error=f.getErrorMessage(),
            )
        )
        self.log.info(
            "transcoder admin {version} started: {customers} customers, {slots} slots",
            version=__version__,
            customers=len(self.store.config.customers),
            slots=self.transcoding.capacity(),
        )

    def _boot_failed(self, failure: Any) -> None:
        if failure.check(defer.CancelledError):
            return
        self.boot_error = failure.getErrorMessage()
        self.log.critical("start-up failed: {error}", error=self.boot_error)
        if self.reactor.running:
            self.reactor.stop()

    def stopService(self) -> defer.Deferred[None]:  # noqa: N802 (Twisted API)
        """Orderly stop: no new jobs, running ones killed (sources stay), parts stopped."""
        return defer.Deferred.fromCoroutine(self._stop())

    async def _stop(self) -> None:
        if self.state in (STOPPED, TERMINATED):
            self.running = 0
            return
        self._input("stop")
        self.log.info("stopping: running jobs are killed, their files stay in incoming")
        if self.boot is not None and not self.boot.called:
            self.boot.cancel()
        await self.stop_parts()
        for subscription in self._subscriptions:
            subscription.unsubscribe()
        self.files.unsubscribe()
        self.running = 0
        self.log.info("admin stopped")

    def _wire(self) -> None:
        workers, managers, store = self.cluster.workers, self.cluster.managers, self.store
        dispatch = self.scheduler.dispatch
        self._subscriptions += [
            workers.link_up.subscribe(self._on_worker_up),
            workers.link_down.subscribe(lambda proxy: self.transcoding.remove_worker(proxy.name)),
            managers.attached.subscribe(self._on_manager_attached),
            managers.detached.subscribe(self._on_manager_detached),
            self.transcoding.capacity_changed.subscribe(lambda _: dispatch()),
            store.customer_added.subscribe(self._on_customers_changed),
            store.customer_removed.subscribe(self._on_customer_removed),
            store.profile_removed.subscribe(lambda key: self.scheduler.dequeue_where(*key)),
            store.profile_changed.subscribe(self._on_profile_changed),
            self.scheduler.transcoding_done.subscribe(self.metrics.job_ended),
            self.scheduler.transcoding_failed.subscribe(self.metrics.job_ended),
        ]
        self.janitor.claim(MONITOR, self.monitoring.claims)
        self.files.subscribe()

    # -- what the parts say -------------------------------------------------------------

    def _on_worker_up(self, proxy: WorkerProxy) -> None:
        self.cluster.release_missing(proxy, proxy.reported)
        self.transcoding.add_worker(proxy)

    def _on_manager_detached(self, where: str) -> None:
        if self.state == STARTED:
            self.log.warn("manager detached: pausing until it is back (running jobs go on)")
            self._auto_paused = True
            self.pause()

    def _on_manager_attached(self, where: str) -> None:
        if self._auto_paused and self.state == PAUSED:
            self._auto_paused = False
            self.log.info("manager attached again: resuming")
            self.resume()

    def _on_customers_changed(self, customer: Any) -> None:
        self.monitoring.set_customers(self.store.customers())
        for profile in customer.profiles():
            self.scheduler.reprioritize(customer.name, profile.name, profile.priority)

    def _on_customer_removed(self, name: str) -> None:
        self.scheduler.dequeue_where(name)
        self.monitoring.set_customers(self.store.customers())

    def _on_profile_changed(self, profile: Any) -> None:
        self.scheduler.reprioritize(profile.customer.name, profile.name, profile.priority)

    # -- commands ----------------------------------------------------------------------

    def pause(self) -> defer.Deferred[dict[str, Any]]:
        """Start no new jobs (running jobs continue)."""
        return self._change("pause", self.scheduler.pause, "paused")

    def resume(self) -> defer.Deferred[dict[str, Any]]:
        """Start jobs again."""
        return self._change("resume", self.scheduler.resume, "resumed")

    def _change(self, begin: str, act: Any, end: str) -> defer.Deferred[dict[str, Any]]:
        try:
            self._input(begin)
        except InvalidStateError as e:
            return defer.fail(e)
        act()
        self._input(end)
        return defer.succeed({"state": self.state})

    def install_sighup(self) -> None:
        """Reload the customers and the API's tokens on SIGHUP (call from the main thread first)."""
        import signal

        def on_hup(_signum: int, _frame: Any) -> None:
            self.reactor.callFromThread(
                lambda: self.operations.reload().addErrback(lambda _: None)  # logged
            )

        signal.signal(signal.SIGHUP, on_hup)


def create_admin(config: Configuration, reactor: IFarmReactor | None = None) -> TranscoderAdmin:
    """Build the admin and its parts from a configuration (no I/O happens here)."""
    reactor = reactor or default_reactor()
    roots = Roots(config.roots())
    store = Store(config, reactor)
    db = ReportsDB(config.reports_url(), config.admin.reports.pool_size, reactor=reactor)
    cluster = Cluster(config, reactor)
    transcoding = Transcoding(JobSpecs(store), reactor, journal=cluster.journal)
    scheduler = Scheduler(transcoding, reactor)
    monitoring: Any
    if config.admin.monitoring.on_workers:
        from .monitoring.remote import RemoteMonitoring

        monitoring = RemoteMonitoring(
            config.admin.monitoring, cluster.workers, cluster.components.monitors, reactor
        )
    else:
        monitoring = Monitoring(config.admin.monitoring, roots, reactor)
    files = FileIntake(store, roots, monitoring, scheduler, transcoding, cluster, db, reactor)
    qmaster = None
    if config.admin.qmaster is not None:
        from .qmaster.backend import qmaster_worker
        from .qmaster.settings import QmasterSettings

        section = config.admin.qmaster
        settings = QmasterSettings.from_mapping(section.client_settings())
        qmaster = qmaster_worker(settings, section.max_batches, roots, reactor)
    notifications = create_notifications(
        config,
        store,
        roots,
        scheduler,
        reactor,
        monitoring=monitoring,
        workers=cluster.workers,
        db=db,
    )
    admin = TranscoderAdmin(
        config,
        store,
        db,
        monitoring,
        transcoding,
        scheduler,
        cluster,
        files,
        reactor,
        qmaster,
        notifications,
    )
    for part in start_order(admin, roots):
        part.setServiceParent(admin)
    return admin


__all__ = ["TranscoderAdmin", "create_admin"]
