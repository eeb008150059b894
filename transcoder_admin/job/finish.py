"""A job's last stage, once the admin acknowledged its outcome: commit it.

Outputs into outgoing (all or nothing), the report, the source into done or failed,
last.  A step that fails is undone and the report says so (``committed: False``); a
failed job's work folder may be kept for inspection (the janitor's rule, applied here).
Runs in a thread: everything here is blocking file work.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from typing import TYPE_CHECKING, Any

from twisted.logger import Logger

from ..context.paths import PathEscapeError
from ..janitor import KEPT_REPORT, KeptSnapshot, keep_failed_folder, kept_path, prune_kept
from ..prognosis import CHANGED, SYSTEM, JobFailed, JobFailure, source_changed
from ..reports.files import write_report
from . import diagnosis
from .commit import (
    CommitFailed,
    Undo,
    move_source,
    rename_outputs,
    run_undo,
    write_committed_report,
)
from .safefs import Folders

if TYPE_CHECKING:
    from .job import Job

log = Logger(namespace="transcoder_admin.job.finish")


def commit_files(job: Job, report: dict[str, Any]) -> dict[str, Any]:
    """Commit the outcome ``report``; the report as committed, or as not committed."""
    folders = Folders(job.roots)
    undo: Undo = []
    keep_work = False
    try:
        changed = (report.get("failure") or {}).get("kind") == CHANGED
        if changed or job.source_changed():
            return _not_committed(job, report, source_changed().failure)
        try:
            keep_work = _commit_steps(job, report, folders, undo)
        except CommitFailed as e:
            run_undo(undo)
            return _not_committed(job, report, JobFailure(SYSTEM, str(e)))
        except JobFailed as e:  # the source changed while committing
            run_undo(undo)
            return _not_committed(job, report, e.failure)
        except (OSError, PathEscapeError) as e:  # a step not named above: still undone
            run_undo(undo)
            why = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
            where = f" {e.filename}" if isinstance(e, OSError) and e.filename else ""
            return _not_committed(job, report, JobFailure(SYSTEM, f"cannot commit{where}: {why}"))
        for done in job.on_success:
            with contextlib.suppress(OSError):
                done()
        folders.sync()
        return report
    finally:
        folders.close()
        if not keep_work:
            cleanup(job)


def cleanup(job: Job) -> None:
    """Remove the job's work folder."""
    shutil.rmtree(job.work_dir, ignore_errors=True)


def _not_committed(job: Job, report: dict[str, Any], failure: JobFailure) -> dict[str, Any]:
    """The report of a commit that did not happen: nothing moved, no report file."""
    log.warn("job {job_id}: not committed: {reason}", job_id=job.job_id, reason=failure.reason)
    report.update(outcome="failed", failure=failure.to_dict(), committed=False, report_path=None)
    report.pop("kept_for_inspection", None)
    return report


def _commit_steps(job: Job, report: dict[str, Any], folders: Folders, undo: Undo) -> bool:
    """Outputs, report, source (last); whether the work folder was kept."""
    spec = job.spec
    job.on_success = []
    if report["outcome"] == "done":
        clash, renamed = job.place_outputs(folders, undo)
        rename_outputs(job.results, renamed)
        if clash is not None:
            for result in job.results:
                result["outputs"] = []
            report.update(outcome="failed", failure=clash.to_dict(), report_path=spec.report_failed)
    done = report["outcome"] == "done"
    keep = 0 if done else int(spec.keep_failed or 0)
    kept = False
    # Kept first, so that the report names a folder only once it is there.
    # The kept folders are final (this one with its copy of the report, older ones
    # pruned) before the report that names it appears.
    if keep and os.path.isdir(job.work_dir):
        _drop_private_source(job)
        if keep_failed_folder(job.work_dir, _work_root(job)[1], job.worker, job.job_id):
            kept = True
            report["kept_for_inspection"] = kept_path(spec.work, job.worker, job.job_id)
            _write_kept_report(job, report)
    if not done:
        job.kept = _prune_kept(job, keep)
    if not done:  # named in the report, written beside it
        report_file = job.local(report["report_path"])
        report["diagnosis"] = os.path.basename(diagnosis.diagnosis_path(report_file, job.job_id))
    write_committed_report(folders, job.local(report["report_path"]), report, undo)
    if not done:
        _write_diagnosis(job, report, folders, undo)
    source = job.local(spec.source)
    if job.source_changed():  # replaced while the outputs moved: judge nothing
        raise source_changed()
    if os.path.lexists(source):
        destination = job.local(spec.done if done else spec.failed)
        move_source(folders, source, destination, "done" if done else "failed", undo)
    return kept


def _write_diagnosis(job: Job, report: dict[str, Any], folders: Folders, undo: Undo) -> None:
    """The failed job's diagnosis beside its report (an aid: a diagnosis that cannot be
    written is logged, and the commit goes on)."""
    report_file = job.local(report["report_path"])
    folder = os.path.dirname(report_file)
    path = os.path.join(folder, report["diagnosis"])
    try:
        fd = folders.open(folder)
        write_report(
            path, diagnosis.build(job, report, report_file), folder_fd=fd, sync_folder=False
        )
    except (OSError, PathEscapeError) as e:
        log.warn("job {job_id}: no diagnosis written: {error}", job_id=job.job_id, error=e)
        return
    name = os.path.basename(path)
    undo.append(lambda: os.unlink(name, dir_fd=fd))


def _drop_private_source(job: Job) -> None:
    """The private copy is not kept for inspection (the source is in failed)."""
    if job.private_source is not None:
        with contextlib.suppress(OSError):
            os.unlink(job.private_source)


def _work_root(job: Job) -> tuple[str, str]:
    """The work folder's root: its name and its local folder."""
    root = str(job.spec.work).split(":", 1)[0]
    return root, job.roots.mapping[root]


def _write_kept_report(job: Job, report: dict[str, Any]) -> None:
    """A copy of the report beside the kept files (never fails the commit)."""
    try:
        kept = job.local(report["kept_for_inspection"])
        write_report(os.path.join(kept, KEPT_REPORT), report)
    except (OSError, PathEscapeError) as e:
        log.warn(
            "job {job_id}: cannot write {name}: {error}",
            job_id=job.job_id,
            name=KEPT_REPORT,
            error=e,
        )


def _prune_kept(job: Job, keep: int) -> KeptSnapshot | None:
    """Keep only the newest ``keep`` failed jobs of this worker (0: remove them all)."""
    try:
        root, root_dir = _work_root(job)
        return prune_kept(root, root_dir, job.worker, keep)
    except (OSError, KeyError) as e:
        log.warn(
            "job {job_id}: cannot prune the kept failed jobs: {error}", job_id=job.job_id, error=e
        )
        return None
