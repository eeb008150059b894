"""Every virtual path of one incoming file, and the job spec of one attempt at it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..records import JobSpec
from .paths import (
    DEFAULT_REPORT_FILE,
    PathEscapeError,
    expand,
    fit_name,
    join_virtual,
)
from .targets import TargetContext

if TYPE_CHECKING:
    from .customers import ProfileContext


class FileContext:
    """Every virtual path of one incoming file of one profile."""

    def __init__(self, profile: ProfileContext, relpath: str) -> None:
        parts = [p for p in relpath.split("/") if p]
        if not parts or any(p in (".", "..") or "\x00" in p for p in parts):
            raise PathEscapeError(f"{relpath!r} is not a relative file path")
        self.profile = profile
        self.relpath = "/".join(parts)
        self.name = parts[-1]
        self.subfolder = "/".join(parts[:-1])

    @property
    def source(self) -> str:
        """The file in incoming."""
        return join_virtual(self.profile.folder("incoming"), self.relpath)

    def in_folder(self, key: str) -> str:
        """The file's subfolder replicated under another folder (done, failed, …)."""
        return join_virtual(self.profile.folder(key), self.subfolder)

    def done(self) -> str:
        """Where the source ends when every target succeeded."""
        return join_virtual(self.in_folder("done"), fit_name(self.name))

    def failed(self) -> str:
        """Where the source ends when the job failed."""
        return join_virtual(self.in_folder("failed"), fit_name(self.name))

    def output_folder(self, target: TargetContext) -> str:
        """The outgoing folder of one target for this file."""
        return join_virtual(self.in_folder("outgoing"), target.subdir)

    def report(self, job_id: str, success: bool) -> str:
        """The report file of one job."""
        template = self.profile.config.report_file or DEFAULT_REPORT_FILE
        stem = self.name.rpartition(".")[0] or self.name
        name = expand(template, {"name": self.name, "stem": stem, "job": job_id})
        if not name or "/" in name:
            raise PathEscapeError(f"report file name {name!r} is not a plain file name")
        # The job id and the extension stay whole: a shortened name still says whose it is.
        name = fit_name(name, tail=f".{job_id}.yaml" if name.endswith(f".{job_id}.yaml") else None)
        folder = self.in_folder("done-reports" if success else "failed-reports")
        return join_virtual(folder, name)

    def work(self, job_id: str) -> str:
        """The job's private work folder."""
        return join_virtual(self.profile.folder("work"), job_id)

    def job_spec(
        self, job_id: str, attempt: int, ffmpeg: str | None = None, **about: Any
    ) -> JobSpec:
        """The job's whole configuration, as basic types a worker can run from.

        ``about`` sets what the file's offer adds (``detected``, ``queued``,
        ``source_identity``, ``keep_failed``).
        """
        prof = self.profile
        eff = prof.effective()
        config = prof.customer.store.config.admin.transcoding
        targets = []
        for target in prof.targets():
            spec = target.media_spec()
            spec["output_folder"] = self.output_folder(target)
            if target.type == "thumbnails":
                spec["output_template"] = target.output_template()
            else:
                spec["output_name"] = target.output_name(self.name)
            targets.append(spec)
        return JobSpec(
            job_id=job_id,
            attempt=attempt,
            customer=prof.customer.name,
            profile=prof.name,
            relpath=self.relpath,
            source=self.source,
            done=self.done(),
            failed=self.failed(),
            report_done=self.report(job_id, True),
            report_failed=self.report(job_id, False),
            work=self.work(job_id),
            backend=prof.config.backend,
            process_priority=eff.process_priority,
            transcoding_timeout=eff.transcoding_timeout,
            max_attempts=eff.max_attempts,
            duration_tolerance=config.duration_tolerance,
            duration_tolerance_percent=config.duration_tolerance_percent,
            ffmpeg=ffmpeg or config.ffmpeg,
            targets=tuple(targets),
            **about,
        )
