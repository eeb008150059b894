"""File intake: from a file monitoring offers to its job's end, on the admin's side.

A file offered while its job from before a restart may still run on a worker is kept
aside until that job is adopted or released; a released file is queued with the
attempts its job had made.  A job a worker reports that this admin did not start is
adopted only when the journal holds it (its spec is built again from this admin's
configuration).  At a job's end the file is released to monitoring, noted among the
recently finished, and its report row is saved; a stuck file is held in incoming until
it changes or an operator retries it.
"""

from __future__ import annotations

import collections
import os
from dataclasses import replace
from typing import Any

from twisted.internet import defer, threads
from twisted.logger import Logger

from ..context.paths import Roots
from ..errors import NotStuck
from ..events import Subscription
from ..monitoring import FileOffer, ScanProblem
from ..proxy import WorkerProxy
from ..proxy.cluster import Cluster, HeldJob
from ..reactors import IFarmReactor
from ..records import Report
from ..reports.db import ReportsDB
from ..reports.files import row_from_report
from ..scheduler import Finished, QueueItem, Scheduler, Stuck
from ..store import Store
from ..transcoding import Transcoding
from .returns import return_failed
from .stuck import FileKey, Intake, RemovalCheck

#: Finished files remembered for /api/v1/files and the status counts.
RECENT_FILES = 500


class FileIntake:
    """Offers, held files, attempts made, adoption, and each file's end."""

    log = Logger()

    def __init__(
        self,
        store: Store,
        roots: Roots,
        monitoring: Any,
        scheduler: Scheduler,
        transcoding: Transcoding,
        cluster: Cluster,
        db: ReportsDB,
        clock: IFarmReactor,
    ) -> None:
        self.store = store
        self.roots = roots
        self.monitoring = monitoring
        self.scheduler = scheduler
        self.transcoding = transcoding
        self.cluster = cluster
        self.db = db
        self.clock = clock
        #: Files held as stuck, attempts carried to a file's next offer.
        self.intake = Intake(clock)
        self.removal_check = RemovalCheck(self.intake, self.stuck_path, clock)
        self.recent: collections.deque[dict[str, Any]] = collections.deque(maxlen=RECENT_FILES)
        self.offers: dict[FileKey, FileOffer] = {}  # offered while their job is held
        self.attempts_made: dict[FileKey, int] = {}  # released, not offered yet
        self._subscriptions: list[Subscription] = []

    def subscribe(self) -> None:
        """Hear of offers, of jobs' ends and of held jobs released."""
        monitoring, scheduler = self.monitoring, self.scheduler
        self._subscriptions += [
            monitoring.file_added.subscribe(self.file_added),
            monitoring.file_removed.subscribe(self.file_removed),
            monitoring.fail_to_run.subscribe(self._fail_to_run),
            scheduler.transcoding_started.subscribe(self._started),
            scheduler.transcoding_done.subscribe(self.finished),
            scheduler.transcoding_failed.subscribe(self.finished),
            scheduler.transcoding_abandoned.subscribe(self.abandoned),
            scheduler.transcoding_stuck.subscribe(self.stuck),
            self.cluster.released.subscribe(self.held_released),
        ]
        self.cluster.on_unknown_job(self.unknown_job)

    def unsubscribe(self) -> None:
        """Hear of nothing any more (at stop)."""
        for subscription in self._subscriptions:
            subscription.unsubscribe()
        self._subscriptions = []

    # -- offers --------------------------------------------------------------------

    def file_added(self, offer: FileOffer) -> None:
        """Queue an offered file, unless its job from before a restart may still run."""
        # Offered again: it changed (or an operator retried it), so it is no longer stuck.
        carried = self.intake.offered(offer.key)
        if self.cluster.held_job(offer.key) is not None:
            self.offers[offer.key] = offer  # its job may still run on a worker
            return
        profile = self.store.profile(offer.customer, offer.profile)
        if profile is None:
            return
        self.scheduler.enqueue(
            offer.key,
            profile.priority,
            offer.detected_at,
            attempts=max(self.attempts_made.pop(offer.key, 0), carried),
            backend=profile.config.backend,
            identity=offer.identity,
        )

    def file_removed(self, offer: FileOffer) -> None:
        """A file gone before its job took it: no longer queued nor stuck."""
        self.intake.removed(offer.key)
        if self.scheduler.dequeue(offer.key):
            self.log.info(
                "{customer}/{profile}/{relpath} disappeared before it was transcoded: dequeued",
                customer=offer.customer,
                profile=offer.profile,
                relpath=offer.relpath,
            )

    def _fail_to_run(self, problem: ScanProblem) -> None:
        self.log.error(
            "monitoring of {customer}/{profile} cannot run: {message}",
            customer=problem.customer,
            profile=problem.profile,
            message=problem.message,
        )

    # -- held jobs ------------------------------------------------------------------

    def held_released(self, held: HeldJob) -> None:
        """A held job was not adopted: its file is queued with the attempts it made."""
        offer = self.offers.pop(held.key, None)
        if offer is None:
            # Not offered yet: when it is, it is queued with the attempts already made.
            self.attempts_made[held.key] = held.attempt
            return
        self.scheduler.enqueue(
            held.key, held.priority, offer.detected_at, held.attempt, identity=offer.identity
        )

    def unknown_job(self, proxy: WorkerProxy, job: dict[str, Any]) -> bool:
        """A worker runs a job this admin did not start: adopt it if the journal holds it.

        The worker's report only has to match the journal (job id, attempt, file and
        worker); the adopted job's spec is built again from this admin's configuration,
        never taken from the worker.  Not adopted: the worker set cancels the job, and
        a held file whose job cannot be adopted is released (that attempt failed).
        """
        held = next((h for h in self.cluster.held.values() if h.job_id == job.get("job_id")), None)
        if held is None or held.worker != proxy.name:
            return False  # a stale attempt, or not this worker's
        problem = contradiction(held, job)
        if problem is None:
            item = QueueItem(held.key, held.priority, held.detected_at, self.clock.seconds())
            try:
                spec = self.transcoding.make_spec(item, held.job_id, held.attempt)
            except Exception as e:  # its profile is gone
                problem = f"it cannot be adopted: {e}"
        if problem is not None:
            self.cluster.release(held.key, problem)
            return False
        if held.identity is not None:
            spec = replace(spec, source_identity=held.identity)
        self.cluster.take(held.key)
        self.offers.pop(held.key, None)

        def adopt(item: QueueItem) -> defer.Deferred[Report]:
            proxy.expect(spec)
            return self.transcoding.adopt(item, spec, proxy)

        return self.scheduler.adopt(held.key, held.priority, held.detected_at, adopt) is not None

    # -- each file's end -------------------------------------------------------------

    def _started(self, item: QueueItem) -> None:
        self.log.debug("transcoding {key}", key=item.key)

    def finished(self, finished: Finished) -> defer.Deferred[Any] | None:
        """A job ended (done or failed): note it, and save its report's row."""
        item, report = finished.item, finished.report
        failure = report.failure
        reason = failure.reason if failure else None
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
                    "state": report.outcome,
                    "job_id": report.job_id,
                    "reason": reason,
                    "finished": report.times.finished,
                    "report": report.report_path,
                }
            )
            self.log.info(
                "{outcome}: {customer}/{profile}/{relpath} (job {job_id}){reason}",
                outcome=report.outcome,
                customer=item.customer,
                profile=item.profile,
                relpath=item.relpath,
                job_id=report.job_id,
                reason=f": {reason}" if reason else "",
            )
        except Exception:
            self.log.failure("cannot note the end of {relpath}", relpath=item.relpath)
        # The admin builds the row from the report, whichever worker sent it.
        try:
            row = row_from_report(report)
        except ValueError:
            self.log.failure("cannot make the row of job {job_id}", job_id=report.job_id)
            return None
        return self.db.save(row)

    def abandoned(self, item: QueueItem) -> None:
        """A job given up at stop or after a change: its file is offered again later."""
        if item.attempts:
            self.intake.carry(item.key, item.attempts)  # the next offer goes on from there
        self.monitoring.forget(*item.key)

    def stuck(self, stuck: Stuck) -> None:
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

    def stuck_path(self, key: FileKey) -> str | None:
        """The local path of a stuck file; None when its profile is gone."""
        profile = self.store.profile(key[0], key[1])
        if profile is None:
            return None
        return os.path.join(self.roots.local(profile.folder("incoming")), key[2])

    def retry(self, key: FileKey) -> dict[str, Any]:
        """Offer a stuck file again (at the next scan); NotStuck if it is not stuck."""
        stuck = self.intake.retry(key)
        customer, profile, relpath = key
        self.log.info(
            "{customer}/{profile}/{relpath}: retried by an operator (was stuck: {reason})",
            customer=customer,
            profile=profile,
            relpath=relpath,
            reason=stuck.reason,
        )
        self.monitoring.forget(*key)
        return {"customer": customer, "profile": profile, "relpath": relpath, "state": "offered"}

    def return_failed(self, key: FileKey) -> defer.Deferred[dict[str, Any]]:
        """Move a failed file's source back to incoming (a new arrival); NotStuck if there
        is no such failed file, InvalidStateError if it cannot go back."""
        profile = self.store.profile(key[0], key[1])
        if profile is None:
            return defer.fail(NotStuck(f"{key[0]}/{key[1]}: no such profile"))
        failed = self.roots.local(profile.folder("failed"))
        incoming = self.roots.local(profile.folder("incoming"))
        d = threads.deferToThreadPool(
            self.clock, self.clock.getThreadPool(), return_failed, failed, incoming, key[2]
        )

        def returned(_: None) -> dict[str, Any]:
            self.log.info(
                "{customer}/{profile}/{relpath}: sent back from failed to incoming by an operator",
                customer=key[0],
                profile=key[1],
                relpath=key[2],
            )
            self.monitoring.forget(*key)
            return _returned(key)

        return d.addCallback(returned)


def _returned(key: FileKey) -> dict[str, Any]:
    customer, profile, relpath = key
    return {"customer": customer, "profile": profile, "relpath": relpath, "state": "returned"}


def contradiction(held: HeldJob, job: dict[str, Any]) -> str | None:
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
