"""Report files: YAML written atomically beside the job's outputs, and replayed into the DB.

A report is a mapping of basic types produced by the job runner (see ``row_from_report``
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
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

import yaml
from twisted.internet import defer, threads
from twisted.logger import Logger

from .model import FAILURE_KINDS, OUTCOMES, parse_time

if TYPE_CHECKING:
    from .db import ReportsDB

REPORT_SUFFIX = ".yaml"
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


def find_reports(folder: str) -> Iterator[str]:
    """Yield every report file (``*.yaml``, not hidden) below ``folder``, in sorted order."""
    for parent, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if name.endswith(REPORT_SUFFIX) and not name.startswith("."):
                yield os.path.join(parent, name)


def row_from_report(report: dict[str, Any]) -> dict[str, Any]:
    """Map a report (the job runner's shape) to a ``transcode_reports`` row.

    Times become timezone-aware UTC datetimes; missing optional parts become None.
    Raise ValueError naming the key when a required key is missing or a value is wrong.
    """
    file = _mapping(report, "file")
    info = _mapping(report, "source_info")
    video = _mapping(info, "video", "source_info.video")
    audio = _mapping(info, "audio", "source_info.audio")
    times = _mapping(report, "times")
    failure = _mapping(report, "failure")
    qmaster = _mapping(report, "qmaster")
    targets = report.get("targets") or []
    if not isinstance(targets, list) or not all(isinstance(t, dict) for t in targets):
        raise ValueError("targets: expected a list of mappings")

    outcome = _required_str(report, "outcome")
    if outcome not in OUTCOMES:
        raise ValueError(f"outcome: {outcome!r} is not one of {', '.join(OUTCOMES)}")
    failure_kind = _optional(failure, "kind", str, "failure.kind")
    if failure_kind is not None and failure_kind not in FAILURE_KINDS:
        raise ValueError(f"failure.kind: {failure_kind!r} is not one of {', '.join(FAILURE_KINDS)}")
    attempt = report.get("attempt", 1)
    if isinstance(attempt, bool) or not isinstance(attempt, int) or attempt < 1:
        raise ValueError(f"attempt: expected a positive integer, not {attempt!r}")

    if video:
        file_type = "video"
    elif audio:
        file_type = "audio"
    else:
        file_type = "unknown"
    return {
        "job_id": _required_str(report, "job_id"),
        "customer": _required_str(report, "customer"),
        "profile": _required_str(report, "profile"),
        "relative_path": _required_str(report, "relpath"),
        "report_path": _optional(report, "report_path", str),
        "checksum": _optional(file, "checksum", str, "file.checksum"),
        "file_size": _optional(file, "size", int, "file.size"),
        "file_type": file_type,
        "mime_type": _optional(info, "mime_type", str, "source_info.mime_type"),
        "audio_codec": _optional(audio, "codec", str, "source_info.audio.codec"),
        "video_codec": _optional(video, "codec", str, "source_info.video.codec"),
        "creation_time": parse_time(file.get("ctime"), "file.ctime"),
        "modification_time": parse_time(file.get("mtime"), "file.mtime"),
        "detection_time": parse_time(times.get("detected"), "times.detected"),
        "queueing_time": parse_time(times.get("queued"), "times.queued"),
        "start_time": parse_time(times.get("started"), "times.started"),
        "finish_time": parse_time(times.get("finished"), "times.finished"),
        "cpu_time": _optional_float(report, "cpu_time"),
        "real_time": _optional_float(report, "real_time"),
        "attempt_count": attempt,
        "machine_name": _optional(report, "machine", str),
        "worker_name": _optional(report, "worker", str),
        "outcome": outcome,
        "failure_kind": failure_kind,
        "failure_reason": _optional(failure, "reason", str, "failure.reason"),
        "invalid_output": any(bool(t.get("invalid_output")) for t in targets),
        "comment": _optional(report, "comment", str),
        "backend": _optional(report, "backend", str),
        "source_duration": _optional_float(info, "duration", "source_info.duration"),
        "qmaster_batch_id": _optional(qmaster, "batch_id", str, "qmaster.batch_id"),
        "qmaster_cluster": _optional(qmaster, "cluster", str, "qmaster.cluster"),
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


def _mapping(parent: dict[str, Any], key: str, name: str | None = None) -> dict[str, Any]:
    value = parent.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValueError(f"{name or key}: expected a mapping, not {value!r}")
    return value


def _required_str(parent: dict[str, Any], key: str) -> str:
    value = parent.get(key)
    if not isinstance(value, str) or not value:
        raise ValueError(f"{key}: required, a non-empty string (got {value!r})")
    return value


def _optional(parent: dict[str, Any], key: str, kind: type, name: str | None = None) -> Any:
    value = parent.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, kind):
        raise ValueError(f"{name or key}: expected {kind.__name__}, not {value!r}")
    return value


def _optional_float(parent: dict[str, Any], key: str, name: str | None = None) -> float | None:
    value = parent.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{name or key}: expected a number, not {value!r}")
    return float(value)
