"""Job configurations, built from the profile as it is when the job starts.

Running jobs keep the settings they started with: a reload changes only jobs that
start after it.
"""

from __future__ import annotations

from typing import Any

from ..config.notify import DiagnosisSection
from ..prognosis import Rules
from ..records import JobSpec
from ..scheduler import QueueItem
from ..store import Store
from ..times import iso


class JobSpecs:
    """Builds the job configuration of a queued file."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def __call__(self, item: QueueItem, job_id: str, attempt: int) -> JobSpec:
        """The job's spec for one attempt at one file."""
        profile = self.store.profile(item.customer, item.profile)
        if profile is None:
            raise LookupError(f"profile {item.customer}/{item.profile} no longer exists")
        return profile.file(item.relpath).job_spec(
            job_id,
            attempt,
            detected=iso(item.detected_at),
            queued=iso(item.queued_at),
            # The file as it was offered: the job checks the source it opens against it.
            source_identity=dict(item.identity) if item.identity is not None else None,
            # The janitor's rule, applied by the worker: keep this many failed jobs' files.
            keep_failed=self.store.config.admin.workers.keep_failed,
            prognosis=job_rules(self.store.config.admin.diagnosis),
        )


def job_rules(section: DiagnosisSection) -> dict[str, Any] | None:
    """The prognostician's rules a job carries; None (not sent) when they are the defaults."""
    rules = Rules(
        mime_types=tuple(section.mime_types),
        file_types=tuple(section.file_types),
        min_video_size=section.min_video_size,
        min_audio_size=section.min_audio_size,
    )
    return None if rules == Rules() else rules.to_wire()
