"""One transcoder job: analyse the source, make every target, verify, then commit.

This module is what a worker runs for one file; it knows nothing of the admin.  A job
works in two phases, as the acknowledgement protocol of DESIGN.md §6 asks:

1. :meth:`Job.run` analyses the source (``analyse``) and has its backend make every
   target's outputs under the job's private *work* folder, each verified (``targets``
   for ffmpeg, ``qmaster.backend`` for Compressor); it fires with the outcome (done or
   failed, ``report``), having moved nothing.
2. :meth:`Job.commit`, called once the admin has acknowledged that outcome, renames the
   outputs into *outgoing* (all or nothing), writes the report and moves the source to
   *done* or *failed*, last (``finish``).

:meth:`Job.abort` (shutdown, cancel) kills the job's processes and removes its work
files, leaving the source where it is.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from twisted.internet import defer, threads
from twisted.logger import Logger

from ..context.paths import PathEscapeError, Roots
from ..janitor import KeptSnapshot, record_process
from ..media.ffmpeg import command_environment, find_ffmpeg, input_arg
from ..media.probe import MediaInfo, NotMediaError, refuse_empty
from ..media.progress import Progress
from ..prognosis import (
    CANCELLED,
    SOURCE,
    JobFailed,
    JobFailure,
    Rules,
    prognose,
    source_changed,
    source_failure,
    system_failure,
)
from ..reactors import IFarmReactor
from ..records import JobSpec
from ..times import now_iso
from .analyse import check_streams, checked_prepare, probe
from .backend import IJobBackend
from .commit import SourceNotFailed, Undo, fail_source, move_into, place_outputs
from .finish import cleanup, commit_files
from .process import ProcessResult, RunningProcess, spawn
from .report import build_report
from .safefs import Folders, Identity, current_identity
from .source import ChecksumStopped, file_checksum, source_facts
from .targets import FfmpegBackend

Made = list[tuple[str, str]]  # (work path, final local path)


class Job:
    """A transcoder job for one file (``spec`` is the admin's job configuration)."""

    log = Logger()

    def __init__(
        self,
        spec: JobSpec,
        roots: Roots,
        worker: str,
        reactor: IFarmReactor,
        backend: IJobBackend | None = None,
    ) -> None:
        self.spec = spec
        self.roots = roots
        self.worker = worker
        self.reactor = reactor
        self.backend: IJobBackend = backend if backend is not None else FfmpegBackend()
        self.job_id: str = spec.job_id
        self.progress: dict[str, Any] = {"percent": 0.0, "speed": None, "eta": None}
        self.outcome: dict[str, Any] | None = None
        self.aborted = False
        #: What the job made (work path, final path) and each target's entry in the report.
        self.outputs: Made = []
        self.results: list[dict[str, Any]] = []
        self.info: MediaInfo | None = None  # the source's media facts
        self.last_progress: Progress | None = None
        #: The source as opened (device, inode, size, mtime), and the job's private copy.
        self.identity: Identity | None = None
        self.private_source: str | None = None
        #: What a successful commit removes at the end (the outputs it replaced).
        self.on_success: Undo = []
        #: After a failed commit: this worker's kept failed jobs in that root, as then.
        self.kept: KeptSnapshot | None = None
        self._process: RunningProcess | None = None
        self._deadline = 0.0
        #: The source as analysis found it: size, times, checksum, first bytes, MIME guess.
        self.source_file: dict[str, Any] | None = None
        #: The error output's tail of the last program the job ran (for the diagnosis).
        self.log_tail: str | None = None
        self._started = ""
        self._started_at = 0.0
        self._cpu_time = 0.0
        self._committed = False
        self._checksum: defer.Deferred[str] | None = None

    # -- what the stages use ------------------------------------------------------------

    def local(self, virtual: str) -> str:
        """The local path of a virtual path of this job (inside this worker's roots)."""
        return self.roots.local(virtual)

    @property
    def work_dir(self) -> str:
        """The job's private work folder."""
        return self.local(self.spec.work)

    @property
    def source_path(self) -> str:
        """What the job reads: its private copy of the source (the source until it exists)."""
        return self.private_source or self.local(self.spec.source)

    def thread(self, f: Any, *args: Any) -> defer.Deferred[Any]:
        """``f(*args)`` in the reactor's thread pool (blocking file and media work)."""
        return threads.deferToThreadPool(self.reactor, self.reactor.getThreadPool(), f, *args)

    def ffmpeg(self) -> str:
        """The ffmpeg program the job runs."""
        return find_ffmpeg(self.spec.ffmpeg)

    def program_stderr(self) -> bytes:
        """The beginning of the running program's standard error (empty: none runs)."""
        return self._process.stderr_head if self._process is not None else b""

    def remaining(self) -> float:
        """Seconds left before the job's deadline (transcoding-timeout)."""
        return max(0.1, self._deadline - self.reactor.seconds())

    def source_changed(self) -> bool:
        """Whether the path in incoming no longer holds the file this job opened."""
        if self.identity is None:
            return False
        return current_identity(self.local(self.spec.source)) != self.identity

    def add_outputs(self, target: dict[str, Any], made: Made, result: dict[str, Any]) -> None:
        """A target's outputs are made and verified: they count, and its entry names them."""
        folder = target["output_folder"].rstrip("/")
        result["outputs"] = [f"{folder}/{os.path.basename(final)}" for _work, final in made]
        self.outputs.extend(made)

    async def run_program(
        self,
        argv: list[str],
        *,
        target: str | None,
        timeout: float | None = None,
        duration: float | Callable[[], float | None] | None = None,
    ) -> ProcessResult:
        """Run one program for this job, tracking progress, within the job's deadline.

        ``duration`` (to show progress in percent) may be a function, asked at each
        progress report, when it is known only once the program has described its input.
        """
        limit = self.remaining() if timeout is None else min(timeout, self.remaining())
        job_limit = timeout is None or timeout >= self.remaining()
        self.last_progress = None

        def on_progress(p: Progress) -> None:
            self.last_progress = p
            known = duration() if callable(duration) else duration
            self.progress = {
                "percent": p.percent(known),
                "speed": p.speed,
                "eta": p.eta(known),
                "target": target,
            }

        self._process = process = spawn(
            self.reactor,
            argv,
            timeout=limit,
            nice=int(self.spec.process_priority),
            on_progress=on_progress,
            env=command_environment(),
        )
        if process.pid is not None:
            # For the janitor after a crash; /proc and the work folder are read and
            # written off the reactor (reading a process's stat waits for its exec).
            self.thread(record_process, self.work_dir, process.pid).addErrback(
                lambda f: self.log.warn(
                    "job {job_id}: cannot record process {pid}: {error}",
                    job_id=self.job_id,
                    pid=process.pid,
                    error=f.getErrorMessage(),
                )
            )
        try:
            result = await process.result
        finally:
            self._process = None
        self.log_tail = result.stderr_tail
        self._cpu_time += result.cpu_time or 0.0
        if result.cancelled or self.aborted:
            raise JobFailed(JobFailure(CANCELLED, "cancelled", target))
        if result.timed_out and job_limit:
            total = float(self.spec.transcoding_timeout)
            raise system_failure(f"timed out after {total:g} s", target)
        return result

    # -- phase 1 ---------------------------------------------------------------------------

    def run(self) -> defer.Deferred[dict[str, Any]]:
        """Produce and verify every output in the work folder; fire with the outcome."""
        return defer.Deferred.fromCoroutine(self._run())

    async def _run(self) -> dict[str, Any]:
        self._started = now_iso(self.reactor)
        self._started_at = self.reactor.seconds()
        self._deadline = self._started_at + float(self.spec.transcoding_timeout)
        failure: JobFailure | None = None
        try:
            await self._analyse()
            if self.info is not None:  # else the backend's first program describes it
                for target in self.spec.targets:
                    check_streams(self.info, target)
            await self.backend.make_targets(self)
        except JobFailed as e:
            failure = e.failure
        except PathEscapeError as e:
            failure = JobFailure("source", f"refused path: {e}")
        except Exception as e:  # a bug or the machine: say so, retry elsewhere
            self.log.failure("job {job_id} crashed", job_id=self.job_id)
            failure = JobFailure("system", f"job crashed: {type(e).__name__}: {e}")
        if self.aborted:
            failure = JobFailure(CANCELLED, "cancelled")
        elif (
            failure is not None
            and failure.kind == SOURCE
            and await self.thread(self.source_changed)
        ):
            # The file's fault only if it is still the file that was judged.
            failure = source_changed().failure
        await self._add_checksum()
        self.outcome = self._report(failure)
        return self.outcome

    async def _add_checksum(self) -> None:
        """The checksum made beside the job's programs, into the source's facts."""
        pending, self._checksum = self._checksum, None
        if pending is None or self.source_file is None:
            return
        try:
            self.source_file["checksum"] = await pending
        except (ChecksumStopped, OSError) as e:
            self.log.warn(
                "job {job_id}: no checksum of the source: {error}", job_id=self.job_id, error=e
            )

    async def _analyse(self) -> None:
        """Make the work folder, open and copy the source, note its facts; have ffmpeg
        describe it, unless the backend's first program does (``describes_source``)."""
        source = self.local(self.spec.source)
        try:
            (
                self.source_file,
                self.private_source,
                self.identity,
            ) = await self.thread(checked_prepare, self.roots, self.spec, self.work_dir, source)
            if self.source_file["checksum"] is None:  # a big one: hashed beside the programs
                self._checksum = self.thread(
                    file_checksum, self.private_source, lambda: self.aborted
                )
            refuse_empty(self.source_file["size"])
            if not self.backend.describes_source(self):
                self.info = await probe(self, self.source_path, self.source_file["size"])
        except FileNotFoundError:
            raise source_failure("the source file disappeared before it was transcoded") from None
        except NotMediaError as e:
            self.source_file = e.facts or self.source_file
            raise source_failure(str(e) or "not a media file") from None
        except OSError as e:
            raise system_failure(f"cannot read the source: {e.strerror}") from None

    def _report(self, failure: JobFailure | None) -> dict[str, Any]:
        report = build_report(self.spec, self.worker, self.reactor, failure)
        report.update(
            backend=self.backend.name,
            file=self.source_file,
            source_info=self.info.to_dict() if self.info else None,
            cpu_time=round(self._cpu_time, 3),
            real_time=round(self.reactor.seconds() - self._started_at, 3),
            targets=self.results,
        )
        report["times"]["started"] = self._started
        report["verdict"] = self._verdict(failure)
        self.backend.add_to_report(self, report)
        return report

    def _verdict(self, failure: JobFailure | None) -> str | None:
        """The prognostician's verdict on a source failure (None: not the upload's)."""
        if failure is None or failure.kind != SOURCE or self.source_file is None:
            return None
        name = self.spec.relpath.rsplit("/", 1)[-1]
        extension = name.rsplit(".", 1)[-1].lower() if "." in name else ""
        formats = tuple(self.info.format_name.split(",")) if self.info else ()
        rules = Rules.from_wire(dict(self.spec.prognosis)) if self.spec.prognosis else Rules()
        return prognose(
            rules,
            mime_type=(self.info.mime_type if self.info else None)
            or self.source_file.get("mime_guess"),
            file_types=(extension, *formats),
            has_video=bool(self.info and self.info.video),
            has_audio=bool(self.info and self.info.audio),
            size=self.source_file.get("size"),
        )

    # -- phase 2 ---------------------------------------------------------------------------

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
        return self.thread(self.commit_files, self.outcome)

    def commit_files(self, report: dict[str, Any]) -> dict[str, Any]:
        """The commit itself, blocking (``finish.commit_files``)."""
        return commit_files(self, report)

    def place_outputs(
        self, folders: Folders, undo: Undo
    ) -> tuple[JobFailure | None, dict[str, str]]:
        """Move every output into outgoing (see :func:`commit.place_outputs`)."""
        # A name already in done was delivered before: its outputs without an owner are
        # its own, made before owners were recorded (upgrades re-deliver as before).
        earlier = os.path.lexists(self.local(self.spec.done))
        return place_outputs(
            self.outputs, self.spec.source, folders, undo, self.on_success, earlier
        )

    # -- abort -----------------------------------------------------------------------------

    def abort(self) -> defer.Deferred[None]:
        """Kill the job's running program and remove its work files; the source stays."""
        self.aborted = True
        self.backend.abort(self)
        if self._process is not None:
            self._process.cancel()
        if self._committed:
            return defer.succeed(None)
        return self.thread(cleanup, self)


__all__ = [
    "Job",
    "SourceNotFailed",
    "build_report",
    "fail_source",
    "file_checksum",
    "input_arg",
    "move_into",
    "source_facts",
]
