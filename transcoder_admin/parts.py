"""The admin's parts in the order they start, each with what stops it (in reverse).

The order is the boot sequence (CONVENTIONS.md 2): the reports database and its spool,
the journal of running jobs, the manager, the local workers, the cleaning of work files
a crash left, the API, monitoring and its first scans, and last the scheduler.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .context.paths import Roots
from .service import Part

if TYPE_CHECKING:
    from .admin import TranscoderAdmin


def start_order(admin: TranscoderAdmin, roots: Roots) -> list[Part]:
    """The admin's parts in start order (they stop in reverse)."""
    config, db, cluster, monitoring = admin.config, admin.db, admin.cluster, admin.monitoring
    qmaster, scheduler, transcoding = admin.qmaster, admin.scheduler, admin.transcoding
    notifications = admin.notifications

    async def start_manager() -> None:
        await cluster.start_manager()
        cluster.start_liveness()

    async def start_workers() -> None:
        await cluster.start_local_workers()
        if qmaster is not None:
            transcoding.add_worker(qmaster)

    async def clean_work() -> None:
        """Remove work folders of jobs no worker runs (and kill their leftover processes)."""
        folders = {
            roots.local(profile.folder("work"))
            for customer in admin.store.customers()
            for profile in customer.profiles()
        }
        keep = {held.job_id for held in cluster.held.values()}
        for proxy in cluster.workers.proxies.values():
            keep |= proxy.reported | set(proxy.jobs)
        await admin.janitor.remove_stale_work(folders, keep)

    async def start_monitoring() -> None:
        monitoring.set_customers(admin.store.customers())
        await monitoring.start()
        admin.janitor.sweep()  # monitors on workers that monitoring did not place
        if not config.admin.monitoring.on_workers:  # it sees incoming itself
            admin.files.removal_check.start(config.admin.monitoring.poll_interval)

    async def stop_monitoring() -> None:
        admin.files.removal_check.stop()
        await monitoring.stop()

    async def stop_scheduler() -> None:
        """Stop dispatching and kill running jobs."""
        scheduler.pause()
        await transcoding.cancel_all()
        await scheduler.stop()
        if qmaster is not None:
            await qmaster.disconnect()

    parts = [
        Part("open the reports database", db.start, db.stop),
        # Rows a killed admin left waiting are written in the background from here.
        Part("open the spool of waiting report rows", lambda: db.open_spool(config.state_dir())),
    ]
    if notifications is not None:  # before files end, so none goes unnotified
        parts.append(Part("open the notification queue", notifications.start, notifications.stop))
    parts += [
        Part("read the journal of running jobs", cluster.open_journal),
        Part("start the manager", start_manager, cluster.stop),
        Part("start the local workers", start_workers),
        Part("remove work files left by a crash", clean_work),
    ]
    if config.admin.api.enabled:
        from .api import Access, APIService

        access = Access(config.api_tokens_file(), config.admin.api.allowed_hosts, admin.reactor)
        api = APIService(admin.operations, config.admin.api.listen, admin.reactor, access)
        admin.reloads.append(access.reload)  # the tokens are re-read with the customers
        parts.append(Part("start the API", api.startService, api.stopService))
    parts += [
        Part("start monitoring and wait for the first scans", start_monitoring, stop_monitoring),
        Part("start the scheduler", scheduler.start, stop_scheduler),
    ]
    return parts
