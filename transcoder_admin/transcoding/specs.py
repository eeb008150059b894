"""Job configurations, built from the profile as it is when the job starts.

Running jobs keep the settings they started with: a reload changes only jobs that
start after it.
"""

from __future__ import annotations

from typing import Any

from ..scheduler import QueueItem
from ..store import Store
from ..times import iso


class JobSpecs:
    """Builds the job configuration of a queued file."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def __call__(self, item: QueueItem, job_id: str, attempt: int) -> dict[str, Any]:
        """The job configuration (basic types) for one attempt at one file."""
        profile = self.store.profile(item.customer, item.profile)
        if profile is None:
            raise LookupError(f"profile {item.customer}/{item.profile} no longer exists")
        spec = profile.file(item.relpath).job_spec(job_id, attempt)
        spec["key"] = list(item.key)
        spec["priority"] = item.priority
        spec["detected_at"] = item.detected_at
        spec["detected"] = iso(item.detected_at)
        spec["queued"] = iso(item.queued_at)
        if item.identity is not None:
            # The file as it was offered: the job checks the source it opens against it.
            spec["source_identity"] = dict(item.identity)
        # The janitor's rule, applied by the worker: keep this many failed jobs' files.
        spec["keep_failed"] = self.store.config.admin.workers.keep_failed
        return spec
