"""What operators may ask of the farm: the admin's public queries and commands.

The JSON API calls only these (``api.table.Admin``); each one reads or steers a part
through its public methods, and the listings are shaped and paged by ``api.views``.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any

from twisted.internet import defer, threads
from twisted.python.failure import Failure

from . import __version__
from .api.views import PAGE_LIMIT, Source, file_counts, files_page, page, queued_rows
from .config.errors import ConfigError
from .context.describe import describe_customer
from .context.paths import PathEscapeError
from .errors import NoDiagnosis, NoSuchNotification, NotStuck
from .metrics import queued_by_profile
from .records import Report
from .reports.files import read_diagnosis
from .scheduler import JobAbandoned, SourceStuck

if TYPE_CHECKING:
    from .admin import TranscoderAdmin


class Operations:
    """The admin's public queries and commands (the API's ``Admin``)."""

    def __init__(self, admin: TranscoderAdmin) -> None:
        self.admin = admin
        self._notification_counts: dict[str, int] = {}

    @property
    def state(self) -> str:
        """The admin's state (started, paused, …)."""
        return self.admin.state

    # -- commands

    def pause(self) -> defer.Deferred[dict[str, Any]]:
        """Start no new jobs (running jobs continue)."""
        return self.admin.pause()

    def resume(self) -> defer.Deferred[dict[str, Any]]:
        """Start jobs again."""
        return self.admin.resume()

    def reload(self) -> defer.Deferred[dict[str, Any]]:
        """Re-read the customer files (and the API's tokens); ConfigError if they are invalid."""
        log = self.admin.log

        def refused(f: Any) -> Any:
            if f.check(ConfigError):
                log.error(
                    "reload refused, keeping the old customers:\n{errors}", errors=f.value.render()
                )
            else:
                log.failure("reload failed", f)
            return f  # the API answers with the problems

        for reload in self.admin.reloads:
            reload().addErrback(lambda _: None)  # logged; the old values stay
        d = self.admin.store.reload()
        return d.addCallbacks(lambda result: result.to_dict(), refused)

    def retry_file(
        self, customer: str, profile: str, relpath: str
    ) -> defer.Deferred[dict[str, Any]]:
        """Offer a stuck file again (at the next scan), or send a failed one back to
        incoming; NotStuck if it is neither."""
        key = (customer, profile, relpath)
        try:
            return defer.succeed(self.admin.files.retry(key))
        except NotStuck:
            return self.admin.files.return_failed(key)

    def set_priority(
        self, customer: str, profile: str, relpath: str, priority: int
    ) -> dict[str, Any]:
        """Give one queued file a priority of its own; NotQueued if it is not queued."""
        scheduler = self.admin.scheduler
        key = (customer, profile, relpath)
        item = scheduler.set_priority(key, priority)
        self.admin.log.info(
            "priority of {customer}/{profile}: {relpath} set to {priority}",
            customer=customer,
            profile=profile,
            relpath=relpath,
            priority=priority,
        )
        [row] = queued_rows([item])
        if scheduler.state_of(key) == "queued":
            return {**row, "state": "queued", "position": scheduler.position(key)}
        return {**row, "state": "transcoding", "position": None}  # dispatched at once

    def cancel_task(
        self, customer: str, profile: str, relpath: str, by: str, then: str
    ) -> defer.Deferred[dict[str, Any]]:
        """Cancel a file's running job; fires once its source is failed or back in
        incoming (NotRunning if it has no job, InvalidStateError if it is too late)."""
        key = (customer, profile, relpath)
        task = self.admin.transcoding.tasks.get(key)
        answer = {
            "customer": customer,
            "profile": profile,
            "relpath": relpath,
            "job_id": task.job_id if task is not None else "",
            "cancelled_by": by,
            "reason": None,
            "report": None,
        }

        def failed(report: Report) -> dict[str, Any]:
            reason = report.failure.reason if report.failure else None
            path = report.report_path
            return {
                **answer,
                "job_id": report.job_id,
                "state": "failed",
                "reason": reason,
                "report": path,
            }

        def other(f: Failure) -> dict[str, Any]:
            if f.check(JobAbandoned):
                return {**answer, "state": "returned"}
            if f.check(SourceStuck):
                return {**answer, "state": "stuck", "reason": str(f.value)}
            return {
                **answer,
                "state": "stuck",
                "reason": f"unexpected error: {f.getErrorMessage()}",
            }

        d = self.admin.transcoding.cancel(key, by, then)
        return d.addCallbacks(failed, other)

    def retry_notification(self, ident: str) -> defer.Deferred[dict[str, Any]]:
        """Queue a notification that gave up again; NoSuchNotification if there is none."""
        notifications = self.admin.notifications
        if notifications is None:
            return defer.fail(NoSuchNotification(f"no notification {ident!r}"))

        def found(stored: dict[str, Any] | None) -> dict[str, Any]:
            if stored is None:
                raise NoSuchNotification(f"no notification {ident!r}")
            return stored

        d = defer.Deferred.fromCoroutine(notifications.notifier.retry(ident))
        return d.addCallback(found)

    # -- queries

    def metrics(self) -> defer.Deferred[bytes]:
        """The Prometheus text exposition of the farm (notification counts read first)."""
        notifications = self.admin.notifications
        counts = notifications.notifier.counts() if notifications is not None else defer.succeed({})

        def render(found: dict[str, int]) -> bytes:
            self._notification_counts = dict(found)
            return self.admin.metrics.render()

        return counts.addCallback(render)

    def throughput(self) -> dict[str, Any]:
        """Files ended per minute over the last hour (see ``metrics.PerMinute``)."""
        minutes = self.admin.metrics.per_minute.last()
        return {
            "minutes": minutes,
            "done": sum(m["done"] for m in minutes),
            "failed": sum(m["failed"] for m in minutes),
        }

    def metric_values(self) -> dict[str, Any]:
        """The gauges' values now (``metrics.Snapshot`` reads them at each scrape)."""
        admin = self.admin
        return {
            "queued": queued_by_profile(admin.scheduler.queued_keys()),
            "running": admin.scheduler.running_count(),
            "workers": dict(Counter(str(row.get("state")) for row in self.workers())),
            "capacity": admin.transcoding.capacity(),
            "free_slots": admin.transcoding.free_slots(),
            "rows_waiting": admin.db.rows_waiting,
            "notifications": self._notification_counts,
        }

    def customers(self) -> list[dict[str, Any]]:
        """Every customer with its profiles, folders, targets and settings in force."""
        return [describe_customer(customer) for customer in self.admin.store.customers()]

    def diagnosis(self, job_id: str) -> defer.Deferred[dict[str, Any]]:
        """A failed job's diagnosis; NoDiagnosis when there is none to read."""
        return defer.Deferred.fromCoroutine(self._diagnosis(job_id))

    async def _diagnosis(self, job_id: str) -> dict[str, Any]:
        admin = self.admin
        row = await admin.db.get(job_id)
        if row is None or not row.get("report_path"):
            raise NoDiagnosis(f"no report of job {job_id!r}")
        if row.get("outcome") != "failed":
            raise NoDiagnosis(f"job {job_id!r} did not fail: it has no diagnosis")
        try:
            report_file = admin.files.roots.local(str(row["report_path"]))
        except PathEscapeError as e:
            raise NoDiagnosis(f"the report of job {job_id!r} is not here: {e}") from None
        pool = admin.reactor.getThreadPool()
        try:
            found: dict[str, Any] = await threads.deferToThreadPool(
                admin.reactor, pool, read_diagnosis, report_file
            )
        except LookupError as e:
            raise NoDiagnosis(str(e)) from None
        return found

    def notifications(
        self, state: str | None = None, offset: int = 0, limit: int = PAGE_LIMIT
    ) -> defer.Deferred[dict[str, Any]]:
        """One page of notifications, newest first (in one state, or all)."""
        notifications = self.admin.notifications
        if notifications is None:
            return defer.succeed({"items": [], "total": 0, "offset": offset, "limit": limit})
        d: defer.Deferred[dict[str, Any]] = notifications.notifier.listed(state, limit, offset)
        return d

    def health(self) -> dict[str, Any]:
        """Whether the admin runs and its parts are healthy."""
        admin = self.admin
        waiting = admin.db.rows_waiting
        checks = {
            "workers": "ok" if admin.cluster.workers.proxies else "no workers",
            "database": "ok" if waiting == 0 else f"{waiting} rows waiting",
        }
        ok = admin.state in ("started", "paused") and all(v == "ok" for v in checks.values())
        return {"status": "ok" if ok else "degraded", "state": admin.state, "checks": checks}

    def status(self) -> dict[str, Any]:
        """Counts and capacity; cheap whatever the length of the queue."""
        admin = self.admin
        running = admin.scheduler.running_count()
        queued = admin.scheduler.queued_count()
        started = admin.started_at
        return {
            "state": admin.state,
            "version": __version__,
            "uptime": (admin.reactor.seconds() - started) if started else 0.0,
            "customers": len(admin.store.config.customers),
            "files": file_counts(
                len(admin.monitoring.pending()),
                queued,
                running,
                admin.files.recent,
                admin.files.intake.stuck_count(),
            ),
            "capacity": admin.transcoding.capacity(),
            "free_slots": admin.transcoding.free_slots(),
            "running": running,
            "queued": queued,
            "reports_pending": admin.db.rows_waiting,
        }

    def workers(self) -> list[dict[str, Any]]:
        """Each worker with its host, roots, capacity, load, state and last heartbeat."""
        admin = self.admin
        workers: list[Any] = [p for _n, p in sorted(admin.cluster.workers.proxies.items())]
        if admin.qmaster is not None:
            workers.append(admin.qmaster)
        rows = []
        for worker in workers:
            info = worker.info()
            info["load"] = admin.transcoding.load.get(worker.name, 0)
            info["components"] = admin.cluster.components.counts(worker.name)
            rows.append(info)
        return rows

    def components(
        self, kind: str | None = None, worker: str | None = None
    ) -> list[dict[str, Any]]:
        """What runs on the workers: monitors, jobs, failed jobs kept for inspection."""
        return self.admin.cluster.components.describe(kind, worker)

    def queue(self, offset: int = 0, limit: int = PAGE_LIMIT) -> dict[str, Any]:
        """One page of the queued files in dispatch order."""
        return page([self._queued()], offset, limit)

    def tasks(self) -> list[dict[str, Any]]:
        """Running jobs with their progress."""
        return self.admin.transcoding.describe()

    def files(
        self, state: str | None = None, offset: int = 0, limit: int = PAGE_LIMIT
    ) -> dict[str, Any]:
        """One page of the files the admin knows of, optionally of one state."""
        admin = self.admin
        return files_page(
            state,
            offset,
            limit,
            pending=admin.monitoring.pending,
            ignored=admin.monitoring.ignored,
            queued=self._queued(),
            running=self.tasks,
            finished=lambda: list(admin.files.recent),
            stuck=lambda: [s.to_dict() for s in admin.files.intake.stuck()],
        )

    def reports(self, **filters: Any) -> defer.Deferred[dict[str, Any]]:
        """Report rows from the database (filtered, paginated)."""
        return self.admin.db.query(**filters)

    def _queued(self) -> Source:
        scheduler = self.admin.scheduler
        return scheduler.queued_count(), lambda first: queued_rows(scheduler.queue(first))
