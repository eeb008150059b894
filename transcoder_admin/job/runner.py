"""One transcoder job: analyse the source, produce every target, verify, then commit.

This module is what a worker runs for one file; it knows nothing of the admin.  A job
works in two phases, as the acknowledgement protocol of DESIGN.md §6 asks:

1. :meth:`Job.run` analyses the source and writes every output under the job's private
   *work* folder, verifying each one; it fires with the outcome (done or failed), having
   moved nothing.
2. :meth:`Job.commit`, called once the admin has acknowledged that outcome, renames the
   outputs into *outgoing* (all or nothing), writes the report and moves the source to
   *done* or *failed*, last.

:meth:`Job.abort` (shutdown, cancel) kills the job's processes and removes its work
files, leaving the source where it is.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
from typing import Any

from twisted.internet import defer, threads
from twisted.logger import Logger

from ..context.paths import PathEscapeError, Roots, expand, fit_name
from ..janitor import (
    KEPT_REPORT,
    KeptSnapshot,
    keep_failed_folder,
    kept_path,
    prune_kept,
    record_process,
)
from ..media.ffmpeg import (
    command_environment,
    decode_check_command,
    decoded_enough,
    find_ffmpeg,
    input_arg,
    target_command,
    target_settings,
    thumbnails_command,
)
from ..media.probe import MediaInfo, NotMediaError, probe
from ..media.progress import Progress
from ..prognosis import (
    CANCELLED,
    CHANGED,
    POST_PROCESS,
    SOURCE,
    SYSTEM,
    JobFailed,
    JobFailure,
    decode_failure,
    missing_stream,
    source_changed,
    source_failure,
    system_failure,
)
from ..records import report_spec
from ..reports.files import write_report
from ..times import now_iso
from .commit import (
    CommitFailed,
    SourceNotFailed,
    Undo,
    fail_source,
    move_source,
    place_outputs,
    rename_outputs,
    run_undo,
    write_committed_report,
)
from .process import ProcessResult, RunningProcess, spawn
from .safefs import Folders, Identity, current_identity, move_file
from .source import (
    check_name_limits,
    file_checksum,
    prepare,
    private_name,
    source_facts,
)


def move_into(src: str, dest: str, tag: str = "") -> None:
    """Move ``src`` to ``dest`` (its folder made), even across file systems, replacing it.

    For callers without roots (the benchmarks' null worker); jobs use :mod:`.commit`.
    """
    folder = os.path.dirname(dest)
    os.makedirs(folder, exist_ok=True)
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        move_file(src, fd, os.path.basename(dest))
    finally:
        os.close(fd)


def build_report(
    spec: dict[str, Any], worker: str, clock: Any, failure: JobFailure | None
) -> dict[str, Any]:
    """The report of a job, with what is known without running it."""
    success = failure is None
    return {
        "job_id": spec["job_id"],
        "attempt": spec["attempt"],
        "customer": spec["customer"],
        "profile": spec["profile"],
        "relpath": spec["relpath"],
        "source": spec["source"],
        "report_path": spec["report_done" if success else "report_failed"],
        "outcome": "done" if success else "failed",
        "failure": failure.to_dict() if failure else None,
        "backend": spec.get("backend", "ffmpeg"),
        "worker": worker,
        "machine": socket.gethostname(),
        "file": None,
        "source_info": None,
        "times": {
            "detected": spec.get("detected"),
            "queued": spec.get("queued"),
            "started": spec.get("started"),
            "finished": now_iso(clock),
        },
        "cpu_time": None,
        "real_time": None,
        "targets": [],
        "comment": None,
    }


def _checked_prepare(
    roots: Roots, spec: dict[str, Any], work_dir: str, source: str, needs_picture: bool
) -> tuple[dict[str, Any], MediaInfo, str, Identity]:
    """A job's first steps in one trip to a thread: its names' limits, then ``prepare``."""
    check_name_limits(roots, spec)
    return prepare(
        work_dir,
        source,
        needs_picture,
        spec.get("source_identity"),
        private_name(spec["relpath"]),
    )


#: Target types whose outputs are made from the decoded picture.
PICTURE_TARGETS = ("audio-video", "video", "thumbnails")


class Job:
    """A transcoder job for one file (``spec`` is the admin's job configuration)."""

    log = Logger()

    def __init__(self, spec: dict[str, Any], roots: Roots, worker: str, reactor: Any) -> None:
        self.spec = spec
        self.roots = roots
        self.worker = worker
        self.reactor = reactor
        self.job_id: str = spec["job_id"]
        self.progress: dict[str, Any] = {"percent": 0.0, "speed": None, "eta": None}
        self.outcome: dict[str, Any] | None = None
        self._process: RunningProcess | None = None
        self._aborted = False
        self._deadline: float | None = None
        self._outputs: list[tuple[str, str]] = []  # (work path, final local path)
        self._target_results: list[dict[str, Any]] = []
        self._info: MediaInfo | None = None
        self._source_file: dict[str, Any] | None = None
        self._started = ""
        self._started_at = 0.0
        self._cpu_time = 0.0
        self._committed = False
        self._last_progress: Progress | None = None
        #: The source as opened (device, inode, size, mtime), and the job's private copy.
        self._identity: Identity | None = None
        self._source_path: str | None = None
        #: What a successful commit removes at the end (the outputs it replaced).
        self._finish: Undo = []
        #: After a failed commit: this worker's kept failed jobs in that root, as then.
        self.kept: KeptSnapshot | None = None

    # -- paths -------------------------------------------------------------------

    def local(self, virtual: str) -> str:
        """The local path of a virtual path of this job (inside this worker's roots)."""
        return self.roots.local(virtual)

    @property
    def work_dir(self) -> str:
        """The job's private work folder."""
        return self.local(self.spec["work"])

    def _thread(self, f: Any, *args: Any) -> defer.Deferred[Any]:
        return threads.deferToThreadPool(self.reactor, self.reactor.getThreadPool(), f, *args)

    # -- phase 1 -----------------------------------------------------------------

    def run(self) -> defer.Deferred[dict[str, Any]]:
        """Produce and verify every output in the work folder; fire with the outcome."""
        return defer.Deferred.fromCoroutine(self._run())

    async def _run(self) -> dict[str, Any]:
        self._started = now_iso(self.reactor)
        self._started_at = self.reactor.seconds()
        timeout = float(self.spec["transcoding_timeout"])
        self._deadline = self._started_at + timeout
        failure: JobFailure | None = None
        try:
            await self._analyse()
            for target in self.spec["targets"]:
                self._check_streams(target)
            await self._run_targets()
        except JobFailed as e:
            failure = e.failure
        except PathEscapeError as e:
            failure = JobFailure("source", f"refused path: {e}")
        except Exception as e:  # a bug or the machine: say so, retry elsewhere
            self.log.failure("job {job_id} crashed", job_id=self.job_id)
            failure = JobFailure("system", f"job crashed: {type(e).__name__}: {e}")
        if self._aborted:
            failure = JobFailure(CANCELLED, "cancelled")
        elif (
            failure is not None
            and failure.kind == SOURCE
            and await self._thread(self._source_changed)
        ):
            # The file's fault only if it is still the file that was judged.
            failure = source_changed().failure
        self.outcome = self._report(failure)
        return self.outcome

    def _source_changed(self) -> bool:
        """Whether the path in incoming no longer holds the file this job opened."""
        if self._identity is None:
            return False
        return current_identity(self.local(self.spec["source"])) != self._identity

    @property
    def source_path(self) -> str:
        """What the job reads: its private copy of the source (the source until it exists)."""
        return self._source_path or self.local(self.spec["source"])

    async def _run_targets(self) -> None:
        """Produce every target's outputs in the work folder, one target after another."""
        for index, target in enumerate(self.spec["targets"]):
            if self._aborted:
                raise JobFailed(JobFailure(CANCELLED, "cancelled"))
            await self._run_target(index, target)

    async def _analyse(self) -> None:
        """Make the work folder, open and copy the source, note its facts, probe it."""
        source = self.local(self.spec["source"])
        try:
            (
                self._source_file,
                self._info,
                self._source_path,
                self._identity,
            ) = await self._thread(
                _checked_prepare,
                self.roots,
                self.spec,
                self.work_dir,
                source,
                self._needs_picture(),
            )
        except FileNotFoundError:
            raise source_failure("the source file disappeared before it was transcoded") from None
        except NotMediaError as e:
            raise source_failure(str(e) or "not a media file") from None
        except OSError as e:
            raise system_failure(f"cannot read the source: {e.strerror}") from None

    def _needs_picture(self) -> bool:
        """Whether a target scales or rotates the picture (the rotation must be known)."""
        return any(t["type"] in PICTURE_TARGETS for t in self.spec["targets"])

    def _check_streams(self, target: dict[str, Any]) -> None:
        info = self._info
        assert info is not None
        kind, name = target["type"], target["name"]
        if kind in ("video", "thumbnails") and info.video is None:
            raise missing_stream("video", kind, name)
        if kind == "audio" and info.audio is None:
            raise missing_stream("audio", kind, name)
        if kind == "audio-video":
            if info.video is None and not target.get("allow_without_video"):
                raise missing_stream("video", kind, name)
            if info.audio is None and not target.get("allow_without_audio"):
                raise missing_stream("audio", kind, name)

    def _remaining(self) -> float:
        assert self._deadline is not None
        return max(0.1, self._deadline - self.reactor.seconds())

    async def _exec(
        self,
        argv: list[str],
        *,
        target: str,
        timeout: float | None = None,
        duration: float | None = None,
    ) -> ProcessResult:
        """Run one program for this job, tracking progress, within the job's deadline."""
        limit = self._remaining() if timeout is None else min(timeout, self._remaining())
        job_limit = timeout is None or timeout >= self._remaining()

        self._last_progress = None

        def on_progress(p: Progress) -> None:
            self._last_progress = p
            self.progress = {
                "percent": p.percent(duration),
                "speed": p.speed,
                "eta": p.eta(duration),
                "target": target,
            }

        self._process = spawn(
            self.reactor,
            argv,
            timeout=limit,
            nice=int(self.spec.get("process_priority", 0)),
            on_progress=on_progress,
            env=command_environment(),
        )
        if self._process.pid is not None:
            # For the janitor after a crash; /proc and the work folder are read and
            # written off the reactor (reading a process's stat waits for its exec).
            self._thread(record_process, self.work_dir, self._process.pid).addErrback(
                lambda f: self.log.warn(
                    "job {job_id}: cannot record process {pid}: {error}",
                    job_id=self.job_id,
                    pid=self._process.pid if self._process else None,
                    error=f.getErrorMessage(),
                )
            )
        try:
            result = await self._process.result
        finally:
            self._process = None
        self._cpu_time += result.cpu_time or 0.0
        if result.cancelled or self._aborted:
            raise JobFailed(JobFailure(CANCELLED, "cancelled", target))
        if result.timed_out and job_limit:
            total = float(self.spec["transcoding_timeout"])
            raise system_failure(f"timed out after {total:g} s", target)
        return result

    def _ffmpeg(self) -> str:
        return find_ffmpeg(self.spec.get("ffmpeg"))

    async def _decode_check(
        self, source: str, target: str, commands: list[list[str]] | None = None
    ) -> float:
        """Decode the whole source; raise a source failure naming where it broke."""
        assert self._info is not None
        duration = self._info.duration
        argv = decode_check_command(self._ffmpeg(), source)
        if commands is not None:
            commands.append(argv)
        result = await self._exec(argv, target=target, duration=duration)
        last = self._last_progress
        decoded = last.out_time if last else 0.0
        percent = last.percent(duration) if last and duration else None
        if not result.ok:
            raise decode_failure(percent if percent is not None else 0.0)
        absolute, relative = self._tolerances()
        if duration and not decoded_enough(decoded, duration, absolute, relative):
            raise decode_failure(100.0 * decoded / duration)
        return decoded

    def _tolerances(self) -> tuple[float, float]:
        return (
            float(self.spec.get("duration_tolerance", 0.5)),
            float(self.spec.get("duration_tolerance_percent", 2.0)),
        )

    async def _run_target(self, index: int, target: dict[str, Any]) -> None:
        info = self._info
        assert info is not None
        source = self.source_path
        name = target["name"]
        final_folder = self.local(target["output_folder"])
        result: dict[str, Any] = {
            "name": name,
            "type": target["type"],
            "outcome": "failed",
            "reason": None,
            "outputs": [],
            "commands": [],
            "invalid_output": False,
        }
        self._target_results.append(result)
        tag = f"{index:02d}"
        try:
            produced: list[tuple[str, str]] = []
            if target["type"] == "identity":
                await self._decode_check(source, name, result["commands"])
                ext = os.path.splitext(target["output_name"])[1]
                work = os.path.join(self.work_dir, fit_name(f"{tag}-identity{ext}"))
                await self._thread(shutil.copyfile, source, work)
                produced.append((work, os.path.join(final_folder, target["output_name"])))
            elif target["type"] == "thumbnails":
                produced = await self._thumbnails(tag, target, source, final_folder, result)
            else:
                ext = target.get("extension") or "out"
                work = os.path.join(self.work_dir, f"{tag}-{target['type']}.{ext}")
                argv = target_command(self._ffmpeg(), source, work, target, info)
                result["settings"] = target_settings(target)
                result["commands"].append(argv)
                run = await self._exec(argv, target=name, duration=info.duration)
                if not run.ok:
                    await self._explain_ffmpeg_failure(source, name, run)
                await self._verify(work, target)
                produced.append((work, os.path.join(final_folder, target["output_name"])))
            for work, _final in produced:
                await self._post_process(target, work, result)
        except JobFailed as e:
            result["reason"] = e.failure.reason
            result["invalid_output"] = e.failure.invalid_output
            raise
        result["outcome"] = "done"
        result["outputs"] = [self._virtual_output(target, final) for _w, final in produced]
        self._outputs.extend(produced)

    def _virtual_output(self, target: dict[str, Any], final: str) -> str:
        return target["output_folder"].rstrip("/") + "/" + os.path.basename(final)

    async def _explain_ffmpeg_failure(self, source: str, target: str, run: ProcessResult) -> None:
        """ffmpeg failed: a source that does not decode is the source's fault."""
        await self._decode_check(source, target)
        code = run.exit_code if run.exit_code is not None else f"signal {run.signal}"
        raise system_failure(f"ffmpeg exited {code} for target {target!r}: {_tail(run)}", target)

    async def _verify(self, work: str, target: dict[str, Any]) -> None:
        """An output must open, have the expected streams and the source's duration."""
        assert self._info is not None
        name = target["name"]
        try:
            out = await self._thread(probe, work, False)
        except NotMediaError as e:
            raise system_failure(f"output of target {name!r} is invalid: {e}", name, True) from None
        want_video = target["type"] in ("audio-video", "video") and self._info.video is not None
        want_audio = target["type"] in ("audio-video", "audio") and self._info.audio is not None
        if want_video and out.video is None:
            raise system_failure(f"output of target {name!r} has no video stream", name, True)
        if want_audio and out.audio is None:
            raise system_failure(f"output of target {name!r} has no audio stream", name, True)
        expected = self._info.duration
        if expected and out.duration is not None:
            absolute, relative = self._tolerances()
            if abs(out.duration - expected) > max(absolute, expected * relative / 100.0):
                raise system_failure(
                    f"output of target {name!r} lasts {out.duration:.2f} s, "
                    f"the source {expected:.2f} s",
                    name,
                    True,
                )

    async def _thumbnails(
        self,
        tag: str,
        target: dict[str, Any],
        source: str,
        final_folder: str,
        result: dict[str, Any],
    ) -> list[tuple[str, str]]:
        assert self._info is not None
        ext = target.get("extension") or "jpg"
        pattern = os.path.join(self.work_dir, f"{tag}-thumb.%d.{ext}")
        argv = thumbnails_command(self._ffmpeg(), source, pattern, target, self._info)
        result["commands"].append(argv)
        run = await self._exec(argv, target=target["name"], duration=self._info.duration)
        if not run.ok:
            await self._explain_ffmpeg_failure(source, target["name"], run)
        prefix = os.path.join(self.work_dir, f"{tag}-thumb.")
        found = sorted(
            glob.glob(glob.escape(prefix) + "*"),
            key=lambda p: int(p[len(prefix) :].split(".")[0]),
        )
        if not found:
            raise system_failure(f"target {target['name']!r} produced no thumbnail", target["name"])
        source_name = os.path.basename(self.spec["relpath"])
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

    async def _post_process(
        self, target: dict[str, Any], work: str, result: dict[str, Any]
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
            "source": self.source_path,
            "target": target["name"],
            "customer": self.spec["customer"],
            "profile": self.spec["profile"],
            "job": self.job_id,
        }
        argv = [expand(arg, variables) for arg in command]
        result["commands"].append(argv)
        timeout = float(target.get("post_process_timeout") or 60)
        run = await self._exec(argv, target=target["name"], timeout=timeout)
        if run.timed_out:
            raise JobFailed(
                JobFailure(
                    POST_PROCESS, f"post-process timed out after {timeout:g} s", target["name"]
                )
            )
        if not run.ok:
            code = run.exit_code if run.exit_code is not None else f"signal {run.signal}"
            raise JobFailed(
                JobFailure(
                    POST_PROCESS, f"post-process exited {code}: {_tail(run)}", target["name"]
                )
            )

    def _report(self, failure: JobFailure | None) -> dict[str, Any]:
        report = build_report(self.spec, self.worker, self.reactor, failure)
        report.update(
            file=self._source_file,
            source_info=self._info.to_dict() if self._info else None,
            cpu_time=round(self._cpu_time, 3),
            real_time=round(self.reactor.seconds() - self._started_at, 3),
            targets=self._target_results,
        )
        report["times"]["started"] = self._started
        return report

    # -- phase 2 -----------------------------------------------------------------

    def commit(self) -> defer.Deferred[dict[str, Any]]:
        """Move outputs, write the report, move the source last; fire with the report.

        Never fails for the file system: a step that fails is undone (outputs it placed
        removed, earlier ones restored, no report file, the source left in incoming) and
        the report says so (``committed: False``, a ``system`` failure naming the step and
        the path); a source that changed since it was opened is not judged (``changed``).
        """
        if self.outcome is None:
            raise RuntimeError(f"job {self.job_id} has no outcome to commit")
        if self._committed:
            return defer.succeed(self.outcome)
        self._committed = True
        return self._thread(self._commit_files, self.outcome)

    def _commit_files(self, report: dict[str, Any]) -> dict[str, Any]:
        folders = Folders(self.roots)
        undo: Undo = []
        keep_work = False
        try:
            changed = (report.get("failure") or {}).get("kind") == CHANGED
            if changed or self._source_changed():
                return self._not_committed(report, source_changed().failure)
            try:
                keep_work = self._commit_steps(report, folders, undo)
            except CommitFailed as e:
                run_undo(undo)
                return self._not_committed(report, JobFailure(SYSTEM, str(e)))
            except JobFailed as e:  # the source changed while committing
                run_undo(undo)
                return self._not_committed(report, e.failure)
            except (OSError, PathEscapeError) as e:  # a step not named above: still undone
                run_undo(undo)
                why = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
                where = f" {e.filename}" if isinstance(e, OSError) and e.filename else ""
                return self._not_committed(
                    report, JobFailure(SYSTEM, f"cannot commit{where}: {why}")
                )
            for done in self._finish:
                with contextlib.suppress(OSError):
                    done()
            folders.sync()
            return report
        finally:
            folders.close()
            if not keep_work:
                self._cleanup()

    def _not_committed(self, report: dict[str, Any], failure: JobFailure) -> dict[str, Any]:
        """The report of a commit that did not happen: nothing moved, no report file."""
        self.log.warn(
            "job {job_id}: not committed: {reason}", job_id=self.job_id, reason=failure.reason
        )
        report.update(
            outcome="failed",
            failure=failure.to_dict(),
            committed=False,
            report_path=None,
        )
        report.pop("kept_for_inspection", None)
        return report

    def _commit_steps(self, report: dict[str, Any], folders: Folders, undo: Undo) -> bool:
        """Outputs, report, source (last); whether the work folder was kept."""
        spec = self.spec
        self._finish = []
        if report["outcome"] == "done":
            clash, renamed = self._place_outputs(folders, undo)
            rename_outputs(self._target_results, renamed)
            if clash is not None:
                for result in self._target_results:
                    result["outputs"] = []
                report.update(
                    outcome="failed",
                    failure=clash.to_dict(),
                    report_path=spec["report_failed"],
                )
        done = report["outcome"] == "done"
        keep = 0 if done else int(spec.get("keep_failed") or 0)
        kept = False
        # Kept first, so that the report names a folder only once it is there.
        # The kept folders are final (this one with its copy of the report, older ones
        # pruned) before the report that names it appears.
        if keep and os.path.isdir(self.work_dir):
            self._drop_private_source()
            if self._keep_work():
                kept = True
                report["kept_for_inspection"] = kept_path(spec["work"], self.worker, self.job_id)
                self._write_kept_report(report)
        if not done:
            self.kept = self._prune_kept(keep)
        write_committed_report(folders, self.local(report["report_path"]), report, undo)
        source = self.local(spec["source"])
        if self._source_changed():  # replaced while the outputs moved: judge nothing
            raise source_changed()
        if os.path.lexists(source):
            destination = self.local(spec["done"] if done else spec["failed"])
            move_source(folders, source, destination, "done" if done else "failed", undo)
        return kept

    def _place_outputs(
        self, folders: Folders, undo: Undo
    ) -> tuple[JobFailure | None, dict[str, str]]:
        """Move every output into outgoing (see :func:`place_outputs`)."""
        # A name already in done was delivered before: its outputs without an owner are
        # its own, made before owners were recorded (upgrades re-deliver as before).
        earlier = os.path.lexists(self.local(self.spec["done"]))
        return place_outputs(
            self._outputs, self.spec["source"], folders, undo, self._finish, earlier
        )

    def _drop_private_source(self) -> None:
        """The private copy is not kept for inspection (the source is in failed)."""
        if self._source_path is not None:
            with contextlib.suppress(OSError):
                os.unlink(self._source_path)

    # -- failed jobs kept for inspection (the janitor's rule, applied here) -----------------

    def _work_root(self) -> tuple[str, str]:
        """The work folder's root: its name and its local folder."""
        root = str(self.spec["work"]).split(":", 1)[0]
        return root, self.roots.mapping[root]

    def _keep_work(self) -> bool:
        return keep_failed_folder(self.work_dir, self._work_root()[1], self.worker, self.job_id)

    def _write_kept_report(self, report: dict[str, Any]) -> None:
        """A copy of the report beside the kept files (never fails the commit)."""
        try:
            kept = self.local(report["kept_for_inspection"])
            write_report(os.path.join(kept, KEPT_REPORT), report)
        except (OSError, PathEscapeError) as e:
            self.log.warn(
                "job {job_id}: cannot write {name}: {error}",
                job_id=self.job_id,
                name=KEPT_REPORT,
                error=e,
            )

    def _prune_kept(self, keep: int) -> KeptSnapshot | None:
        """Keep only the newest ``keep`` failed jobs of this worker (0: remove them all)."""
        try:
            root, root_dir = self._work_root()
            return prune_kept(root, root_dir, self.worker, keep)
        except (OSError, KeyError) as e:
            self.log.warn(
                "job {job_id}: cannot prune the kept failed jobs: {error}",
                job_id=self.job_id,
                error=e,
            )
            return None

    def _cleanup(self) -> None:
        shutil.rmtree(self.work_dir, ignore_errors=True)

    # -- abort -------------------------------------------------------------------

    def abort(self) -> defer.Deferred[None]:
        """Kill the job's running program and remove its work files; the source stays."""
        self._aborted = True
        if self._process is not None:
            self._process.cancel()
        if self._committed:
            return defer.succeed(None)
        return self._thread(self._cleanup)


def _tail(run: ProcessResult, limit: int = 400) -> str:
    text = " | ".join(line for line in run.stderr_tail.splitlines()[-5:] if line.strip())
    return text[-limit:] if text else "(no error output)"


__all__ = [
    "Job",
    "SourceNotFailed",
    "fail_source",
    "file_checksum",
    "input_arg",
    "report_spec",
    "source_facts",
]
