"""The seam between a job and what makes its outputs: ffmpeg on the worker, or a
Compressor batch (``qmaster.backend``).

A job analyses, verifies, reports and commits the same way whatever its backend; the
backend only makes the targets' outputs in the work folder (each verified) and adds its
own facts to the report.  One backend object serves one job.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from zope.interface import Attribute, Interface

if TYPE_CHECKING:
    from .job import Job


class IJobBackend(Interface):
    """What makes one job's outputs.  Called on the reactor thread."""

    name = Attribute("The backend's name in reports: 'ffmpeg' or 'qmaster'.")

    def describes_source(job: Job) -> bool:
        """Whether the backend's first program describes the source (``job.info``), so
        that the job need not have ffmpeg describe it before ``make_targets``."""

    async def make_targets(job: Job) -> None:
        """Make and verify every target's outputs in the job's work folder.

        Each made output is added with ``job.add_outputs``; each target's entry in
        ``job.results`` says how it went.  Raises ``JobFailed`` to end the job.
        """

    def add_to_report(job: Job, report: dict[str, Any]) -> None:
        """Add what the backend knows (a batch id, a cluster) to the job's report."""

    def abort(job: Job) -> None:
        """Stop what the backend runs for the job (the job kills its own programs)."""
