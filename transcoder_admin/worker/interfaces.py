"""The seam between the admin and its workers (CONVENTIONS.md 9).

Domain code talks to an :class:`IWorkerConnection`; the in-process implementation is in
:mod:`transcoder_admin.worker.local`, the Perspective Broker one puts the same calls on
the wire.  What comes back is a typed record (:mod:`transcoder_admin.records`).
Every method is called on the reactor thread and returns a Deferred.
"""

from __future__ import annotations

from typing import Any

from twisted.internet import defer
from zope.interface import Attribute, Interface

from ..prognosis import JobFailure
from ..records import JobSpec, Outcome, Report


class WorkerGone(Exception):
    """The worker went away (disconnected, stopped) while a call was in flight."""


class UnknownJob(Exception):
    """The worker has no job with that id (finished and acknowledged, or never started)."""


class IWorkerConnection(Interface):
    """The admin's handle on one worker.

    mypy reads the annotations through mypy-zope: a variable typed ``IWorkerConnection``
    takes any class declared ``@implementer(IWorkerConnection)``.
    """

    name: str = Attribute("The worker's unique name.")
    max_jobs: int = Attribute("How many jobs the worker runs at once.")

    def info() -> dict[str, Any]:  # type: ignore[misc]
        """Basic facts as a dict: name, host, roots, max_jobs, running, state."""

    def running_jobs() -> list[str]:  # type: ignore[misc]
        """Ids of the jobs the worker runs now (including finished, unacknowledged ones)."""

    def start_job(spec: JobSpec) -> defer.Deferred[Outcome]:  # type: ignore[misc]
        """Start a job from its configuration; Deferred fires with its outcome.

        The outcome is final for the job's work but nothing has moved yet: the worker
        waits for :meth:`acknowledge` before it touches outgoing, done or failed.
        Errbacks with WorkerGone if the worker is lost.
        """

    def job_outcome(job_id: str, attempt: int) -> defer.Deferred[Outcome]:  # type: ignore[misc]
        """Wait for the outcome of a job the worker already runs (adopted after a restart).

        Errbacks with WorkerGone if the worker is lost or no longer has the job.
        """

    def acknowledge(job_id: str) -> defer.Deferred[Report]:  # type: ignore[misc]
        """The admin has the outcome: commit it (move files, write the report).

        Fires with the final report. Its ``committed`` is True when the files moved as
        the report says; False when committing failed and was undone (no output in
        outgoing, the source still in incoming, no report file): the report is then
        ``failed`` with a ``system`` failure naming the step and the path (retried
        within max-attempts) or a ``changed`` one (the source is no longer the file
        offered: the attempt does not count). Errbacks with UnknownJob or WorkerGone.
        """

    def job_progress(job_id: str) -> dict[str, Any]:  # type: ignore[misc]
        """Progress of a running job: {percent, speed, eta, target} (sync, may be stale)."""

    def cancel_job(job_id: str) -> defer.Deferred[None]:  # type: ignore[misc]
        """Kill the job's processes and remove its work files; the source stays.

        Fires when the job is quiet.
        """

    def fail_source(spec: JobSpec, failure: JobFailure) -> defer.Deferred[Report]:  # type: ignore[misc]
        """Move a job's source to failed and write its failure report (the job is gone).

        Used when a job died without an acknowledged outcome. Fires with the report;
        errbacks (naming the step and the path) when the source cannot be failed, for
        example a failed folder that cannot be written: the admin then holds the file
        as ``stuck``.
        """

    def clean_job(spec: JobSpec) -> defer.Deferred[int]:  # type: ignore[misc]
        """Kill what a dead attempt left running and remove its work folder (best effort).

        Fires with the number of process groups killed.
        """

    def when_disconnected() -> defer.Deferred[None]:  # type: ignore[misc]
        """A Deferred that fires when the connection is lost."""
