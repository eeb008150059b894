"""TranscoderAdmin: wires the parts, runs the start-up chain, owns nothing else.

States: ``stopped → starting → started ⇄ paused (via pausing/resuming) → terminated``.
Parts hear of each other only through events; the admin subscribes the handlers that
connect them.
"""

from __future__ import annotations

import collections
import os
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from twisted.application.service import MultiService
from twisted.internet import defer
from twisted.logger import Logger

from . import __version__
from .config.errors import ConfigError
from .config.loader import Configuration
from .context import Roots
from .errors import InvalidStateError
from .intake import Intake, RemovalCheck
from .janitor import Janitor
from .monitoring import FileOffer, Monitoring, ScanProblem
from .proxy import WorkerProxy
from .proxy.cluster import Cluster, HeldJob
from .proxy.components import MONITOR
from .reports.db import ReportsDB
from .reports.files import row_from_report
from .scheduler import Finished, QueueItem, Scheduler, Stuck
from .store import Store
from .times import iso
from .transcoding import Transcoding
from .transcoding.specs import JobSpecs

T = TypeVar("T")

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
    (STARTING, "stop"): TERMINATED,
    (STARTED, "stop"): TERMINATED,
    (PAUSED, "stop"): TERMINATED,
    (PAUSING, "stop"): TERMINATED,
    (RESUMING, "stop"): TERMINATED,
}
RECENT_FILES = 500
FILE_STATES = ("pending", "ignored", "queued", "transcoding", "done", "failed", "stuck")
FINISHED = ("done", "failed")
#: Rows per page of /queue and /files unless the client asks for another limit.
PAGE_LIMIT = 100


class TranscoderAdmin(MultiService):
    """The admin service: the root of the service tree."""

    log = Logger()

    def __init__(
        self,
        config: Configuration,
        store: Store,
        db: ReportsDB,
        monitoring: Monitoring,
        transcoding: Transcoding,
        scheduler: Scheduler,
        cluster: Cluster,
        api: Any,
        reactor: Any,
    ) -> None:
        super().__init__()
        self.config = config
        self.store = store
        self.db = db
        self.monitoring = monitoring
        self.transcoding = transcoding
        self.scheduler = scheduler
        self.cluster = cluster
        self.api = api
        self.reactor = reactor
        self.state = STOPPED
        self.started_at: float | None = None
        self.recent: collections.deque[dict[str, Any]] = collections.deque(maxlen=RECENT_FILES)
        self.boot: defer.Deferred[None] | None = None
        self.boot_error: str | None = None
        self._subscriptions: list[Any] = []
        self._offers: dict[tuple[str, str, str], FileOffer] = {}  # offered while held
        self._attempts_made: dict[tuple[str, str, str], int] = {}  # released, not yet offered
        #: Files held as stuck, attempts carried to a file's next offer.
        self.intake = Intake(reactor)
        self.qmaster: Any = None  # the Compressor backend, when configured
        self.janitor = Janitor(cluster.components, reactor)
        self._auto_paused = False
        self.removal_check = RemovalCheck(self.intake, self.stuck_path, reactor)

    # -- state machine -------------------------------------------------------------

    def _input(self, name: str) -> None:
        key = (self.state, name)
        if key not in TRANSITIONS:
            raise InvalidStateError(f"cannot {name} while {self.state}")
        self.state = TRANSITIONS[key]
        self.log.info("admin {state}", state=self.state)

    # -- start-up ------------------------------------------------------------------

    def startService(self) -> None:  # noqa: N802 (Twisted API)
        """Start the boot chain; ``self.boot`` fires when the admin is started."""
        super().startService()
        self.boot = defer.Deferred.fromCoroutine(self._start())
        self.boot.addErrback(self._boot_failed)

    def _boot_failed(self, failure: Any) -> None:
        if failure.check(defer.CancelledError):
            return
        self.boot_error = failure.getErrorMessage()
        self.log.critical("start-up failed: {error}", error=self.boot_error)
        if self.reactor.running:
            self.reactor.stop()

    def install_sighup(self) -> None:
        """Reload the customers on SIGHUP (call from the main thread before running)."""
        import signal

        def on_hup(_signum: int, _frame: Any) -> None:
            self.reactor.callFromThread(self._reload_logged)

        signal.signal(signal.SIGHUP, on_hup)

    def _reload_logged(self) -> defer.Deferred[Any]:
        return self.reload().addErrback(lambda _: None)  # reload() logged why

    async def _step(self, what: str, awaitable: Coroutine[Any, Any, T] | defer.Deferred[T]) -> T:
        timeout = self.config.admin.admin.startup_timeout
        self.log.info("start-up: {what}", what=what)
        d: defer.Deferred[T] = defer.ensureDeferred(awaitable)
        d.addTimeout(timeout, self.reactor)
        try:
            return await d
        except defer.TimeoutError:
            raise RuntimeError(f"start-up step {what!r} took longer than {timeout:g} s") from None

    async def _start(self) -> None:
        self._input("start")
        self.started_at = self.reactor.seconds()
        self._wire()
        try:
            await self._step("open the reports database", self.db.start())
            # Rows a killed admin left waiting are written in the background from here.
            await self._step(
                "open the spool of waiting report rows",
                self.db.open_spool(self.config.state_dir()),
            )
            cluster = self.cluster
            await self._step("read the journal of running jobs", cluster.open_journal())
            self.transcoding.journal = cluster.journal
            await self._step("start the manager", cluster.start_manager())
            cluster.start_liveness()
            await self._step("start the local workers", cluster.start_local_workers())
            if self.qmaster is not None:
                self.transcoding.add_worker(self.qmaster)
            await self._step("remove work files left by a crash", self._clean_work())
            if self.api is not None:
                await self._step("start the API", defer.maybeDeferred(self.api.startService))
            self.monitoring.set_customers(self.store.customers())
            await self._step(
                "start monitoring and wait for the first scans", self.monitoring.start()
            )
            self.janitor.sweep()  # monitors on workers that monitoring did not place
            if not self.config.admin.monitoring.on_workers:  # it sees incoming itself
                self.removal_check.start(self.config.admin.monitoring.poll_interval)
            self.scheduler.start()
        except Exception:
            self._input("failed")
            raise
        self._input("started")
        self.log.info(
            "transcoder admin {version} started: {customers} customers, {slots} slots",
            version=__version__,
            customers=len(self.store.config.customers),
            slots=self.transcoding.capacity(),
        )

    async def _clean_work(self) -> None:
        """Remove work folders of jobs no worker runs (and kill their leftover processes)."""
        roots = Roots(self.config.roots())
        folders = {
            roots.local(profile.folder("work"))
            for customer in self.store.customers()
            for profile in customer.profiles()
        }
        keep = {held.job_id for held in self.cluster.held.values()}
        for proxy in self.cluster.workers.proxies.values():
            keep |= proxy.reported | set(proxy.jobs)
        await self.janitor.remove_stale_work(folders, keep)

    def _wire(self) -> None:
        subs = self._subscriptions
        workers, managers = self.cluster.workers, self.cluster.managers
        subs.append(workers.link_up.subscribe(self._on_worker_up))
        subs.append(workers.link_down.subscribe(self._on_worker_down))
        subs.append(managers.attached.subscribe(self._on_manager_attached))
        subs.append(managers.detached.subscribe(self._on_manager_detached))
        subs.append(self.cluster.released.subscribe(self._on_held_released))
        self.cluster.on_unknown_job(self._on_unknown_job)
        self.janitor.claim(MONITOR, self.monitoring.claims)
        subs.append(self.monitoring.file_added.subscribe(self._on_file_added))
        subs.append(self.monitoring.file_removed.subscribe(self._on_file_removed))
        subs.append(self.monitoring.fail_to_run.subscribe(self._on_fail_to_run))
        subs.append(self.scheduler.transcoding_started.subscribe(self._on_started))
        subs.append(self.scheduler.transcoding_done.subscribe(self._on_finished))
        subs.append(self.scheduler.transcoding_failed.subscribe(self._on_finished))
        subs.append(self.scheduler.transcoding_abandoned.subscribe(self._on_abandoned))
        subs.append(self.scheduler.transcoding_stuck.subscribe(self._on_stuck))
        subs.append(
            self.transcoding.capacity_changed.subscribe(lambda _: self.scheduler.dispatch())
        )
        subs.append(self.store.customer_added.subscribe(self._on_customers_changed))
        subs.append(self.store.customer_removed.subscribe(self._on_customer_removed))
        subs.append(self.store.profile_removed.subscribe(self._on_profile_removed))
        subs.append(self.store.profile_changed.subscribe(self._on_profile_changed))

    # -- event handlers ---------------------------------------------------------------

    def _on_file_added(self, offer: FileOffer) -> None:
        # Offered again: it changed (or an operator retried it), so it is no longer stuck.
        carried = self.intake.offered(offer.key)
        if self.cluster.held_job(offer.key) is not None:
            self._offers[offer.key] = offer  # its job may still run on a worker
            return
        profile = self.store.profile(offer.customer, offer.profile)
        if profile is None:
            return
        self.scheduler.enqueue(
            offer.key,
            profile.priority,
            offer.detected_at,
            attempts=max(self._attempts_made.pop(offer.key, 0), carried),
            backend=profile.config.backend,
            identity=offer.identity,
        )

    # -- workers and their jobs ------------------------------------------------------

    def _on_worker_up(self, proxy: WorkerProxy) -> None:
        self.cluster.release_missing(proxy, proxy.reported)
        self.transcoding.add_worker(proxy)

    def _on_worker_down(self, proxy: WorkerProxy) -> None:
        self.transcoding.remove_worker(proxy.name)

    def _on_unknown_job(self, proxy: WorkerProxy, job: dict[str, Any]) -> bool:
        """A worker runs a job this admin did not start: adopt it if the journal holds it.

        The worker's report only has to match the journal (job id, attempt, file and
        worker); the adopted job's spec is built again from this admin's configuration,
        never taken from the worker.  Not adopted: the worker set cancels the job, and
        a held file whose job cannot be adopted is released (that attempt failed).
        """
        held = next((h for h in self.cluster.held.values() if h.job_id == job.get("job_id")), None)
        if held is None or held.worker != proxy.name:
            return False  # a stale attempt, or not this worker's
        problem = _contradiction(held, job)
        if problem is None:
            item = QueueItem(held.key, held.priority, held.detected_at, self.reactor.seconds())
            try:
                spec = self.transcoding.make_spec(item, held.job_id, held.attempt)
            except Exception as e:  # its profile is gone
                problem = f"it cannot be adopted: {e}"
        if problem is not None:
            self.cluster.release(held.key, problem)
            return False
        if held.identity is not None:
            spec["source_identity"] = held.identity
        self.cluster.take(held.key)
        self._offers.pop(held.key, None)

        def adopt(item: QueueItem) -> defer.Deferred[dict[str, Any]]:
            proxy.expect(spec)
            return self.transcoding.adopt(item, spec, proxy)

        return self.scheduler.adopt(held.key, held.priority, held.detected_at, adopt) is not None

    def _on_held_released(self, held: HeldJob) -> None:
        offer = self._offers.pop(held.key, None)
        if offer is None:
            # Not offered yet: when it is, it is queued with the attempts already made.
            self._attempts_made[held.key] = held.attempt
            return
        self.scheduler.enqueue(
            held.key, held.priority, offer.detected_at, held.attempt, identity=offer.identity
        )

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

    def _on_file_removed(self, offer: FileOffer) -> None:
        self.intake.removed(offer.key)
        if self.scheduler.dequeue(offer.key):
            self.log.info(
                "{customer}/{profile}/{relpath} disappeared before it was transcoded: dequeued",
                customer=offer.customer,
                profile=offer.profile,
                relpath=offer.relpath,
            )

    def _on_fail_to_run(self, problem: ScanProblem) -> None:
        self.log.error(
            "monitoring of {customer}/{profile} cannot run: {message}",
            customer=problem.customer,
            profile=problem.profile,
            message=problem.message,
        )

    def _on_started(self, item: QueueItem) -> None:
        self.log.debug("transcoding {key}", key=item.key)

    def _on_finished(self, finished: Finished) -> defer.Deferred[Any] | None:
        item, report = finished.item, finished.report
        failure = report.get("failure") or {}
        # Bookkeeping first, each step on its own: none may cost the report its row.
        try:
            self.monitoring.release(*item.key)
        except Exception:
            self.log.failure("cannot release {relpath} to monitoring", relpath=item.relpath)
        try:
            self.recent.append(
                {
                    "customer": item.customer,
                    "profile": item.profile,
                    "relpath": item.relpath,
                    "state": report.get("outcome"),
                    "job_id": report.get("job_id"),
                    "reason": failure.get("reason"),
                    "finished": (report.get("times") or {}).get("finished"),
                    "report": report.get("report_path"),
                }
            )
            self.log.info(
                "{outcome}: {customer}/{profile}/{relpath} (job {job_id}){reason}",
                outcome=report.get("outcome"),
                customer=item.customer,
                profile=item.profile,
                relpath=item.relpath,
                job_id=report.get("job_id"),
                reason=f": {failure['reason']}" if failure.get("reason") else "",
            )
        except Exception:
            self.log.failure("cannot note the end of {relpath}", relpath=item.relpath)
        # A worker process sends the row ready-made; an in-process job the whole report.
        row = report["row"] if isinstance(report.get("row"), dict) else row_from_report(report)
        return self.db.save(row)

    def _on_abandoned(self, item: QueueItem) -> None:
        if item.attempts:
            self.intake.carry(item.key, item.attempts)  # the next offer goes on from there
        self.monitoring.forget(*item.key)

    def _on_stuck(self, stuck: Stuck) -> None:
        """Hold the file in incoming: not taken again until it changes or is retried."""
        item = stuck.item
        self.intake.hold(item.key, stuck.reason)
        self.monitoring.release(*item.key)
        self.log.error(
            "{customer}/{profile}/{relpath} is stuck in incoming: {reason}; it is taken "
            "again when it changes, or on POST /api/v1/files/retry",
            customer=item.customer,
            profile=item.profile,
            relpath=item.relpath,
            reason=stuck.reason,
        )

    def stuck_path(self, key: tuple[str, str, str]) -> str | None:
        """The local path of a stuck file; None when its profile is gone."""
        profile = self.store.profile(key[0], key[1])
        if profile is None:
            return None
        return os.path.join(Roots(self.config.roots()).local(profile.folder("incoming")), key[2])

    def _on_customers_changed(self, customer: Any) -> None:
        self.monitoring.set_customers(self.store.customers())
        for profile in customer.profiles():
            self.scheduler.reprioritize(customer.name, profile.name, profile.priority)

    def _on_customer_removed(self, name: str) -> None:
        self.scheduler.dequeue_where(name)
        self.monitoring.set_customers(self.store.customers())

    def _on_profile_removed(self, key: tuple[str, str]) -> None:
        self.scheduler.dequeue_where(*key)

    def _on_profile_changed(self, profile: Any) -> None:
        self.scheduler.reprioritize(profile.customer.name, profile.name, profile.priority)

    # -- stop -----------------------------------------------------------------------------

    def stopService(self) -> defer.Deferred[None]:  # noqa: N802 (Twisted API)
        """Orderly stop: no new jobs, running ones killed (sources stay), parts stopped."""
        return defer.Deferred.fromCoroutine(self._stop())

    async def _stop(self) -> None:
        if self.state in (STOPPED, TERMINATED):
            if self.running:
                await defer.maybeDeferred(super().stopService)
            return
        self._input("stop")
        self.log.info("stopping: running jobs are killed, their files stay in incoming")
        if self.boot is not None and not self.boot.called:
            self.boot.cancel()
        self.removal_check.stop()
        await self.scheduler_stop()
        await self.cluster.stop()
        await self.monitoring.stop()
        if self.api is not None and self.api.running:
            await defer.maybeDeferred(self.api.stopService)
        await self.db.stop()
        for sub in self._subscriptions:
            sub.unsubscribe()
        await defer.maybeDeferred(super().stopService)
        self.log.info("admin stopped")

    async def scheduler_stop(self) -> None:
        """Stop dispatching and kill running jobs."""
        self.scheduler.pause()
        await self.transcoding.cancel_all()
        await self.scheduler.stop()
        if self.qmaster is not None:
            await self.qmaster.disconnect()

    # -- public API used by the JSON API ------------------------------------------------------

    def pause(self) -> defer.Deferred[dict[str, Any]]:
        """Start no new jobs (running jobs continue)."""
        try:
            self._input("pause")
        except InvalidStateError as e:
            return defer.fail(e)
        self.scheduler.pause()
        self._input("paused")
        return defer.succeed({"state": self.state})

    def resume(self) -> defer.Deferred[dict[str, Any]]:
        """Start jobs again."""
        try:
            self._input("resume")
        except InvalidStateError as e:
            return defer.fail(e)
        self.scheduler.resume()
        self._input("resumed")
        return defer.succeed({"state": self.state})

    def reload(self) -> defer.Deferred[dict[str, Any]]:
        """Re-read the customer files; errbacks with ConfigError if they are invalid."""

        def refused(f: Any) -> Any:
            if f.check(ConfigError):
                self.log.error(
                    "reload refused, keeping the old customers:\n{errors}", errors=f.value.render()
                )
            else:
                self.log.failure("reload failed", f)
            return f  # the API answers with the problems

        d = self.store.reload()
        return d.addCallbacks(lambda result: result.to_dict(), refused)

    def health(self) -> dict[str, Any]:
        """Whether the admin runs and its parts are healthy."""
        checks = {
            "workers": "ok" if self.cluster.workers.proxies else "no workers",
            "database": "ok" if self.db.pending == 0 else f"{self.db.pending} rows waiting",
        }
        ok = self.state in (STARTED, PAUSED) and all(v == "ok" for v in checks.values())
        return {"status": "ok" if ok else "degraded", "state": self.state, "checks": checks}

    def status(self) -> dict[str, Any]:
        """Counts and capacity; cheap whatever the length of the queue."""
        running = self.scheduler.running_count()
        queued = self.scheduler.queued_count()
        counts = {
            "pending": len(self.monitoring.pending()),
            "queued": queued,
            "transcoding": running,
            **{state: sum(1 for r in self.recent if r["state"] == state) for state in FINISHED},
            "stuck": self.intake.stuck_count(),
        }
        return {
            "state": self.state,
            "version": __version__,
            "uptime": (self.reactor.seconds() - self.started_at) if self.started_at else 0.0,
            "customers": len(self.store.config.customers),
            "files": counts,
            "capacity": self.transcoding.capacity(),
            "free_slots": self.transcoding.free_slots(),
            "running": running,
            "queued": queued,
            "reports_pending": self.db.pending,
        }

    def workers(self) -> list[dict[str, Any]]:
        """Each worker with its host, roots, capacity, load, state and last heartbeat."""
        rows = []
        workers: list[Any] = [p for _n, p in sorted(self.cluster.workers.proxies.items())]
        if self.qmaster is not None:
            workers.append(self.qmaster)
        for worker in workers:
            info = worker.info()
            info["load"] = self.transcoding.load.get(worker.name, 0)
            info["components"] = self.cluster.components.counts(worker.name)
            rows.append(info)
        return rows

    def components(
        self, kind: str | None = None, worker: str | None = None
    ) -> list[dict[str, Any]]:
        """What runs on the workers: monitors, jobs, failed jobs kept for inspection."""
        return self.cluster.components.describe(kind, worker)

    def queue(self, offset: int = 0, limit: int = PAGE_LIMIT) -> dict[str, Any]:
        """One page of the queued files in dispatch order."""
        return _page([self._queued_source()], offset, limit)

    def tasks(self) -> list[dict[str, Any]]:
        """Running jobs with their progress."""
        return self.transcoding.describe()

    def files(
        self, state: str | None = None, offset: int = 0, limit: int = PAGE_LIMIT
    ) -> dict[str, Any]:
        """One page of the files the admin knows of, optionally of one state.

        In the order pending, ignored (links in incoming), queued (dispatch order),
        transcoding, recently finished, stuck (oldest first, with ``reason`` and ``since``).
        """
        if state is not None and state not in FILE_STATES:
            raise ValueError(f"unknown state {state!r}; allowed: {', '.join(FILE_STATES)}")
        sources: list[_Source] = []
        if state in (None, "pending"):
            pending = self.monitoring.pending()
            sources.append(_listed([{**r, "detected": iso(r["detected"])} for r in pending]))
        if state in (None, "ignored"):
            ignored = self.monitoring.ignored()
            sources.append(_listed([{**r, "detected": iso(r["detected"])} for r in ignored]))
        if state in (None, "queued"):
            count, rows = self._queued_source()
            sources.append((count, lambda n: [{**q, "state": "queued"} for q in rows(n)]))
        if state in (None, "transcoding"):
            running = [
                {
                    "customer": t["customer"],
                    "profile": t["profile"],
                    "relpath": t["relpath"],
                    "state": "transcoding",
                    "job_id": t["job_id"],
                    "worker": t["worker"],
                }
                for t in self.tasks()
            ]
            sources.append(_listed(running))
        if state in (None, "done", "failed"):
            sources.append(_listed([r for r in self.recent if state in (None, r["state"])]))
        if state in (None, "stuck"):
            sources.append(_listed([s.to_dict() for s in self.intake.stuck()]))
        return _page(sources, offset, limit)

    def retry_file(self, customer: str, profile: str, relpath: str) -> dict[str, Any]:
        """Offer a stuck file again (at the next scan); NotStuck if it is not stuck."""
        key = (customer, profile, relpath)
        stuck = self.intake.retry(key)
        self.log.info(
            "{customer}/{profile}/{relpath}: retried by an operator (was stuck: {reason})",
            customer=customer,
            profile=profile,
            relpath=relpath,
            reason=stuck.reason,
        )
        self.monitoring.forget(*key)
        return {"customer": customer, "profile": profile, "relpath": relpath, "state": "offered"}

    def _queued_source(self) -> _Source:
        def rows(first: int) -> list[dict[str, Any]]:
            return [
                {
                    "customer": item.customer,
                    "profile": item.profile,
                    "relpath": item.relpath,
                    "priority": item.priority,
                    "detected": iso(item.detected_at),
                    "queued": iso(item.queued_at),
                }
                for item in self.scheduler.queue(first)
            ]

        return self.scheduler.queued_count(), rows

    def reports(self, **filters: Any) -> defer.Deferred[dict[str, Any]]:
        """Report rows from the database (filtered, paginated)."""
        return self.db.query(**filters)


def _contradiction(held: HeldJob, job: dict[str, Any]) -> str | None:
    """How a worker's report of a held job contradicts the journal, or None.

    The report must name the job's id, attempt and file; a spec sent along with it must
    not say otherwise (it is not used either way).
    """
    own = {"job_id": held.job_id, "attempt": held.attempt, "key": list(held.key)}
    spec = job.get("spec")
    spec = spec if isinstance(spec, dict) else {}
    for field, value in own.items():
        if job.get(field) != value or spec.get(field, value) != value:
            return f"its worker reports another {field} than the journal's"
    return None


#: A part of a listing: how many rows it has, and a function giving its first n rows.
_Source = tuple[int, Callable[[int], list[dict[str, Any]]]]


def _listed(rows: list[dict[str, Any]]) -> _Source:
    """A part of a listing that is already a list."""
    return len(rows), lambda first: rows[:first]


def _page(sources: list[_Source], offset: int, limit: int) -> dict[str, Any]:
    """``limit`` rows from ``offset`` of the sources one after the other, and the total.

    Only the sources the page reaches are asked for rows.
    """
    total = sum(count for count, _rows in sources)
    items: list[dict[str, Any]] = []
    skip, want = offset, limit
    for count, rows in sources:
        if want <= 0:
            break
        if skip >= count:
            skip -= count
            continue
        part = rows(skip + want)[skip:]
        items += part
        want -= len(part)
        skip = 0
    return {"total": total, "offset": offset, "limit": limit, "items": items}


def create_admin(config: Configuration, reactor: Any = None) -> TranscoderAdmin:
    """Build the admin and its parts from a configuration (no I/O happens here)."""
    if reactor is None:
        from twisted.internet import reactor as default_reactor

        reactor = default_reactor
    roots = Roots(config.roots())
    store = Store(config, reactor)
    db = ReportsDB(config.reports_url(), config.admin.reports.pool_size, reactor=reactor)
    transcoding = Transcoding(JobSpecs(store), reactor)
    scheduler = Scheduler(transcoding, reactor)
    cluster = Cluster(config, reactor)
    monitoring: Any
    if config.admin.monitoring.on_workers:
        from .monitoring.remote import RemoteMonitoring

        monitoring = RemoteMonitoring(
            config.admin.monitoring, cluster.workers, cluster.components.monitors, reactor
        )
    else:
        monitoring = Monitoring(config.admin.monitoring, roots, reactor)
    admin = TranscoderAdmin(
        config, store, db, monitoring, transcoding, scheduler, cluster, None, reactor
    )
    if config.admin.qmaster is not None:
        from .qmaster.backend import qmaster_worker
        from .qmaster.settings import QmasterSettings

        section = config.admin.qmaster
        settings = QmasterSettings.from_mapping(section.client_settings())
        admin.qmaster = qmaster_worker(settings, section.max_batches, roots, reactor)
    if config.admin.api.enabled:
        from .api import APIService

        admin.api = APIService(admin, config.admin.api.listen, reactor=reactor)
    return admin


__all__ = ["TranscoderAdmin", "create_admin"]
