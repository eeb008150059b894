"""Report files: YAML written atomically beside the job's outputs, and replayed into the DB.

A report is a mapping of basic types produced by a job (see ``row_from_report``
for the keys used here). Report files are the source of truth: rows can always be
rebuilt from them with ``replay_reports``, which is safe to run at any time because
saving a row is idempotent.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import stat
from collections.abc import Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

import yaml
from twisted.internet import defer, threads
from twisted.logger import Logger

from ..records import FileFacts, Report, SourceFacts
from ..records.fields import file_name
from ..times import parse_time

if TYPE_CHECKING:
    from .db import ReportsDB

REPORT_SUFFIX = ".yaml"
#: A failed job's diagnosis beside its report (``job.diagnosis``): not a report.
DIAGNOSIS_SUFFIX = ".diagnosis.yaml"
_REPLAY_BATCH = 100

log = Logger(namespace="transcoder_admin.reports.files")


def write_report(
    path: str, report: dict[str, Any], folder_fd: int | None = None, sync_folder: bool = True
) -> None:
    """Write ``report`` as YAML to ``path`` atomically, creating its folders.

    The file appears complete or not at all: a temporary file in the same folder is
    written, flushed to disk and renamed over ``path``.  With ``folder_fd`` (the folder
    of ``path``, opened by the caller without following links) nothing is looked up by
    path: the file is made in that folder, and a link or folder at ``path`` is refused;
    ``sync_folder`` False leaves the folder's fsync to the caller (a commit fsyncs each
    folder it changed once, at its end).
    """
    text = _dump(report)
    if folder_fd is not None:
        _write_in(folder_fd, path, text, sync_folder)
        return
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    # One writer serves both callers: the folder is opened here and the file made in it.
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        _write_in(fd, path, text)
    finally:
        os.close(fd)


def _write_in(folder_fd: int, path: str, text: str, sync_folder: bool = True) -> None:
    """Write a report file in an opened folder: temporary dot-name, fsync, rename, fsync."""
    name = os.path.basename(path)
    try:
        st = os.stat(name, dir_fd=folder_fd, follow_symlinks=False)
    except FileNotFoundError:
        pass
    else:
        if not stat.S_ISREG(st.st_mode):
            if stat.S_ISLNK(st.st_mode):
                what = "a link; refusing to write through it"
            elif stat.S_ISDIR(st.st_mode):
                what = "a folder, a file is needed"
            else:
                what = "not a regular file"
            raise PathProblem(f"{path} is {what}")
    tmp = f".report-{secrets.token_hex(6)}.tmp"
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    fd = os.open(tmp, flags, 0o644, dir_fd=folder_fd)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as stream:
            stream.write(text)
            stream.flush()
            os.fchmod(stream.fileno(), 0o644)
            os.fsync(stream.fileno())
        os.replace(tmp, name, src_dir_fd=folder_fd, dst_dir_fd=folder_fd)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp, dir_fd=folder_fd)
        raise
    if sync_folder:
        with contextlib.suppress(OSError):
            os.fsync(folder_fd)


class PathProblem(OSError):
    """A destination that cannot be used as it is (a link, a folder); the message names it."""

    def __init__(self, message: str) -> None:
        super().__init__(errno.EINVAL, message)
        self.message = message

    def __str__(self) -> str:
        return self.message


# libyaml's emitter when PyYAML was built with it (about 4x faster per report).
_SafeDumper: Any = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


class _Dumper(_SafeDumper):  # type: ignore[misc]
    """SafeDumper whose strings always load back unchanged."""


class _PyDumper(yaml.SafeDumper):
    """The pure-Python emitter, for the rare report libyaml cannot write."""


def _dump(report: dict[str, Any]) -> str:
    options: dict[str, Any] = dict(allow_unicode=True, sort_keys=False, default_flow_style=False)
    try:
        return yaml.dump(report, Dumper=_Dumper, **options)
    except UnicodeEncodeError:
        # A file name that is not UTF-8 (kept as surrogate escapes): libyaml cannot
        # encode it, the Python emitter writes it as a "\udcff" escape.
        return yaml.dump(report, Dumper=_PyDumper, **options)


def _represent_str(dumper: yaml.SafeDumper, data: str) -> yaml.Node:
    # PyYAML emits these line separators raw in plain or single-quoted scalars and
    # reads them back as line breaks; double quotes escape them.
    if any(c in data for c in "\x85\u2028\u2029"):
        return dumper.represent_scalar("tag:yaml.org,2002:str", data, style='"')
    return dumper.represent_str(data)


_Dumper.add_representer(str, _represent_str)
_PyDumper.add_representer(str, _represent_str)


def read_report(path: str) -> dict[str, Any]:
    """Read a report file; raise ValueError naming the file if it is not a YAML mapping."""
    with open(path, encoding="utf-8") as stream:
        try:
            report = yaml.safe_load(stream)
        except yaml.YAMLError as e:
            raise ValueError(f"{path}: not valid YAML: {e}") from e
    if not isinstance(report, dict):
        raise ValueError(f"{path}: a report must be a mapping, not {type(report).__name__}")
    return report


def read_diagnosis(report_file: str) -> dict[str, Any]:
    """The diagnosis named by a report file, read from beside it (blocking).

    Raise LookupError when the report names none or a file is missing, ValueError when
    one is not a YAML mapping or the name is not a plain file name.
    """
    try:
        report = read_report(report_file)
    except FileNotFoundError:
        raise LookupError(f"the report file {report_file} is missing") from None
    name = file_name(report, "diagnosis")
    if name is None:
        raise LookupError(f"the report {report_file} names no diagnosis")
    path = os.path.join(os.path.dirname(report_file), name)
    try:
        return read_report(path)
    except FileNotFoundError:
        raise LookupError(f"the diagnosis {path} is missing") from None


def find_reports(folder: str) -> Iterator[str]:
    """Yield every report file (``*.yaml``, not hidden, not a ``*.diagnosis.yaml``) below
    ``folder``, in sorted order."""
    for parent, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if (
                name.endswith(REPORT_SUFFIX)
                and not name.startswith(".")
                and not name.endswith(DIAGNOSIS_SUFFIX)
            ):
                yield os.path.join(parent, name)


def row_from_report(report: Report | Mapping[str, Any]) -> dict[str, Any]:
    """The ``transcode_reports`` row of a report (a record, or a report file's mapping).

    Times become timezone-aware UTC datetimes; missing optional parts become None.
    Raise ValueError naming the key when a required key is missing or a value is wrong.
    """
    if not isinstance(report, Report):
        report = Report.from_document(report)
    file = report.file or FileFacts()
    info = report.source_info or SourceFacts()
    times = report.times
    failure = report.failure
    return {
        "job_id": report.job_id,
        "customer": report.customer,
        "profile": report.profile,
        "relative_path": report.relpath,
        "report_path": report.report_path,
        "checksum": file.checksum,
        "file_size": file.size,
        "file_type": info.file_type,
        "mime_type": info.mime_type or file.mime_guess,
        "audio_codec": info.audio_codec,
        "video_codec": info.video_codec,
        "creation_time": parse_time(file.ctime, "file.ctime"),
        "modification_time": parse_time(file.mtime, "file.mtime"),
        "detection_time": parse_time(times.detected, "times.detected"),
        "queueing_time": parse_time(times.queued, "times.queued"),
        "start_time": parse_time(times.started, "times.started"),
        "finish_time": parse_time(times.finished, "times.finished"),
        "cpu_time": report.cpu_time,
        "real_time": report.real_time,
        "attempt_count": report.attempt,
        "machine_name": report.machine,
        "worker_name": report.worker,
        "outcome": report.outcome,
        "failure_kind": failure.kind if failure else None,
        "failure_reason": failure.reason if failure else None,
        "invalid_output": any(t.invalid_output for t in report.targets),
        "comment": report.comment,
        "backend": report.backend,
        "source_duration": info.duration,
        "qmaster_batch_id": report.qmaster_batch_id,
        "qmaster_cluster": report.qmaster_cluster,
        "verdict": report.verdict,
    }


def replay_reports(db: ReportsDB, paths: Iterable[str]) -> defer.Deferred[int]:
    """Save the row of every report file in ``paths``; fire with how many were saved.

    Files are read (and ``paths`` iterated, which may walk a tree) off the reactor
    thread, in batches. A file that cannot be read or mapped is logged and skipped;
    the replay goes on.
    """
    return defer.Deferred.fromCoroutine(_replay(db, iter(paths)))


async def _replay(db: ReportsDB, paths: Iterator[str]) -> int:
    reactor = db.reactor
    saved = skipped = 0
    while True:
        batch, bad = await threads.deferToThreadPool(
            reactor, reactor.getThreadPool(), _read_batch, paths, _REPLAY_BATCH
        )
        for path, error in bad:
            log.warn("skipping report {path}: {error}", path=path, error=error)
        skipped += len(bad)
        if not batch and not bad:
            break
        results = await defer.DeferredList([db.save(row) for row in batch], consumeErrors=True)
        for ok, _ in results:
            if ok:
                saved += 1
            else:
                skipped += 1  # save() has logged why
    log.info(
        "replayed {saved} report(s) into the database, {skipped} skipped",
        saved=saved,
        skipped=skipped,
    )
    return saved


def _read_batch(
    paths: Iterator[str], size: int
) -> tuple[list[dict[str, Any]], list[tuple[str, str]]]:
    """Read up to ``size`` reports (in a thread): their rows, and (path, error) of bad ones."""
    rows: list[dict[str, Any]] = []
    bad: list[tuple[str, str]] = []
    for path in paths:
        try:
            rows.append(row_from_report(read_report(path)))
        except (OSError, ValueError) as e:
            bad.append((path, str(e)))
        if len(rows) + len(bad) >= size:
            break
    return rows, bad
