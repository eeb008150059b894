"""The ffmpeg backend: each target made by ffmpeg on this worker, one after another.

An identity target copies the (fully decoded) source; a thumbnails target writes
numbered images; the others transcode, and their outputs are verified together by one
ffmpeg once every target is made.  Each output is then handed to its target's
post-process command before it counts.
"""

from __future__ import annotations

import glob
import os
import shutil
from typing import TYPE_CHECKING, Any

from zope.interface import implementer

from ..context.paths import expand, fit_name
from ..media.ffmpeg import target_command, target_settings, thumbnails_command
from ..prognosis import CANCELLED, POST_PROCESS, JobFailed, JobFailure, system_failure
from .analyse import checks_describe
from .backend import IJobBackend
from .process import ProcessResult
from .report import note_failure, tail, target_result
from .verify import decode_check, verify_outputs

if TYPE_CHECKING:
    from .job import Job

Made = list[tuple[str, str]]  # (work path, final local path)
#: Target types whose outputs ``verify_outputs`` does not describe: an identity copy is
#: the source its decode check read, thumbnails are counted.
UNDESCRIBED = frozenset({"identity", "thumbnails"})


@implementer(IJobBackend)
class FfmpegBackend:
    """Targets made by ffmpeg on this worker."""

    name = "ffmpeg"

    def describes_source(self, job: Job) -> bool:
        """Whether only identity targets: the first one's decode check describes it."""
        return checks_describe(job.spec.targets)

    async def make_targets(self, job: Job) -> None:
        """Each target in turn, in the work folder; then one check of every output that
        ffmpeg transcoded (``verify_outputs``); then each target's post-process."""
        made: list[tuple[dict[str, Any], dict[str, Any], Made]] = []
        for index, target in enumerate(job.spec.targets):
            _stop_if_aborted(job)
            made.append((target, *await self._make_target(job, index, target)))
        await verify_outputs(
            job, [(produced[0][0], t) for t, _r, produced in made if t["type"] not in UNDESCRIBED]
        )
        for target, result, produced in made:
            _stop_if_aborted(job)
            try:
                for work, _final in produced:
                    await _post_process(job, target, work, result)
            except JobFailed as e:
                note_failure(result, e)
                raise
            result["outcome"] = "done"
            job.add_outputs(target, produced, result)

    def add_to_report(self, job: Job, report: dict[str, Any]) -> None:
        """Nothing to add: the commands are in each target's entry."""

    def abort(self, job: Job) -> None:
        """Nothing of its own runs: the job kills its programs."""

    async def _make_target(
        self, job: Job, index: int, target: dict[str, Any]
    ) -> tuple[dict[str, Any], Made]:
        """Make one target's outputs: (its entry in the report, what it made)."""
        source = job.source_path
        name = target["name"]
        final_folder = job.local(target["output_folder"])
        result = target_result(target)
        job.results.append(result)
        tag = f"{index:02d}"
        try:
            if target["type"] == "identity":
                await decode_check(job, source, name, result["commands"])
                ext = os.path.splitext(target["output_name"])[1]
                work = os.path.join(job.work_dir, fit_name(f"{tag}-identity{ext}"))
                await job.thread(shutil.copyfile, source, work)
                return result, [(work, os.path.join(final_folder, target["output_name"]))]
            if target["type"] == "thumbnails":
                return result, await self._thumbnails(
                    job, tag, target, source, final_folder, result
                )
            info = job.info
            assert info is not None  # described before any target that transcodes
            ext = target.get("extension") or "out"
            work = os.path.join(job.work_dir, f"{tag}-{target['type']}.{ext}")
            argv = target_command(job.ffmpeg(), source, work, target, info)
            result["settings"] = target_settings(target)
            result["commands"].append(argv)
            run = await job.run_program(argv, target=name, duration=info.duration)
            if not run.ok:
                await _explain_ffmpeg_failure(job, source, name, run)
            return result, [(work, os.path.join(final_folder, target["output_name"]))]
        except JobFailed as e:
            note_failure(result, e)
            raise

    async def _thumbnails(
        self,
        job: Job,
        tag: str,
        target: dict[str, Any],
        source: str,
        final_folder: str,
        result: dict[str, Any],
    ) -> Made:
        assert job.info is not None
        ext = target.get("extension") or "jpg"
        pattern = os.path.join(job.work_dir, f"{tag}-thumb.%d.{ext}")
        argv = thumbnails_command(job.ffmpeg(), source, pattern, target, job.info)
        result["commands"].append(argv)
        run = await job.run_program(argv, target=target["name"], duration=job.info.duration)
        if not run.ok:
            await _explain_ffmpeg_failure(job, source, target["name"], run)
        prefix = os.path.join(job.work_dir, f"{tag}-thumb.")
        found = sorted(
            glob.glob(glob.escape(prefix) + "*"),
            key=lambda p: int(p[len(prefix) :].split(".")[0]),
        )
        if not found:
            raise system_failure(f"target {target['name']!r} produced no thumbnail", target["name"])
        source_name = os.path.basename(job.spec.relpath)
        stem, dot, _ = source_name.rpartition(".")
        if not dot:
            stem = source_name
        produced = []
        for index, path in enumerate(found, start=1):
            variables = {
                "stem": stem,
                "name": source_name,
                "extension": ext,
                "ext": ext,
                "index": index,
                "target": target["name"],
            }
            name = fit_name(expand(target["output_template"], variables))
            produced.append((path, os.path.join(final_folder, name)))
        return produced


def _stop_if_aborted(job: Job) -> None:
    if job.aborted:
        raise JobFailed(JobFailure(CANCELLED, "cancelled"))


async def _explain_ffmpeg_failure(job: Job, source: str, target: str, run: ProcessResult) -> None:
    """ffmpeg failed: a source that does not decode is the source's fault."""
    await decode_check(job, source, target)
    code = run.exit_code if run.exit_code is not None else f"signal {run.signal}"
    raise system_failure(f"ffmpeg exited {code} for target {target!r}: {tail(run)}", target)


async def _post_process(
    job: Job, target: dict[str, Any], work: str, result: dict[str, Any]
) -> None:
    """Run the target's post-process command on its outputs in the work folder.

    ``%(source)s`` is the job's private copy (work/<job>/source/<name>), the file the
    job checked and transcoded; the incoming path is never handed out.
    """
    command = target.get("post_process") or []
    if not command:
        return
    variables = {
        "output": work,
        "outputs": work,
        # The private copy, never the incoming path: a command that re-opened the
        # name could read a file swapped in after the job checked it (or a link).
        "source": job.source_path,
        "target": target["name"],
        "customer": job.spec.customer,
        "profile": job.spec.profile,
        "job": job.job_id,
    }
    argv = [expand(arg, variables) for arg in command]
    result["commands"].append(argv)
    timeout = float(target.get("post_process_timeout") or 60)
    run = await job.run_program(argv, target=target["name"], timeout=timeout)
    if run.timed_out:
        raise JobFailed(
            JobFailure(POST_PROCESS, f"post-process timed out after {timeout:g} s", target["name"])
        )
    if not run.ok:
        code = run.exit_code if run.exit_code is not None else f"signal {run.signal}"
        raise JobFailed(
            JobFailure(POST_PROCESS, f"post-process exited {code}: {tail(run)}", target["name"])
        )
