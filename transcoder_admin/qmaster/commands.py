"""The command lines of Compressor and Batch Monitor: argv lists, never shell strings.

With a command prefix (``["ssh", "mac-encoder"]``) the tool runs through another
program that hands one command line to a remote shell; every argument after the prefix
is then quoted with :func:`shlex.quote`, so names with spaces, quotes, ``$()``, ``;`` or
newlines reach Compressor unchanged.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Sequence

from .errors import (
    DestinationError,
    QmasterCommandNotFound,
    SettingFileError,
    SourceFileError,
)
from .model import BatchJob
from .settings import QmasterSettings


def with_prefix(settings: QmasterSettings, argv: Sequence[str]) -> list[str]:
    """``argv`` as run on this host: as is, or after the command prefix, quoted."""
    if not settings.command_prefix:
        return [str(a) for a in argv]
    return [*settings.command_prefix, *(shlex.quote(str(a)) for a in argv)]


def submit_argv(
    settings: QmasterSettings,
    cluster: str,
    batch_name: str,
    priority: str,
    jobs: Sequence[BatchJob],
) -> list[str]:
    """Compressor's submission: the job triple repeated per target, priority always given."""
    argv = [
        settings.compressor,
        "-clustername",
        cluster,
        "-batchname",
        batch_name,
        "-priority",
        priority,
    ]
    for job in jobs:
        argv += ["-jobpath", job.source, "-settingpath", job.setting]
        argv += ["-destinationpath", job.destination]
    return with_prefix(settings, argv)


def status_argv(settings: QmasterSettings, cluster: str, batch_id: str) -> list[str]:
    """Batch Monitor's status query of one batch."""
    argv = [settings.batch_monitor, "-clustername", cluster, "-batchid", batch_id, "-query", "0"]
    return with_prefix(settings, argv)


def cancel_argv(settings: QmasterSettings, cluster: str, batch_id: str) -> list[str]:
    """Batch Monitor's cancel of one batch (the flag is ``settings.cancel_flag``)."""
    argv = [settings.batch_monitor, "-clustername", cluster, "-batchid", batch_id]
    return with_prefix(settings, [*argv, settings.cancel_flag])


def destination_for(
    source: str,
    destination_file: str = "",
    destination_directory: str = "",
    suffix: str = ".mov",
) -> str:
    """The output path: the file given, else the folder plus the source's stem and suffix."""
    if destination_file:
        return destination_file
    if destination_directory:
        if not source:
            raise SourceFileError("no source file given")
        stem = os.path.splitext(os.path.basename(source))[0]
        if not stem:
            raise DestinationError(f"cannot name an output after source {source!r}")
        return os.path.join(destination_directory, stem + suffix)
    raise DestinationError("no destination: give a destination file or a destination directory")


def check_tool(settings: QmasterSettings, path: str, what: str, key: str) -> None:
    """Raise QmasterCommandNotFound unless ``path`` is executable here.

    Skipped with a command prefix (the tool is on the other host) or ``check_paths`` off.
    """
    if settings.command_prefix or not settings.check_paths:
        return
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        raise QmasterCommandNotFound(
            f"{what} not found at {path!r}: set qmaster.{key} (or --{key}) to its path",
            text=path,
        )


def check_job(settings: QmasterSettings, job: BatchJob) -> BatchJob:
    """Check one job's files on this host; the job with absolute paths when run locally.

    With ``check_paths`` off (paths that only exist on the Mac) the job is returned as is.
    """
    if not job.source:
        raise SourceFileError("no source file given")
    if not job.setting:
        raise SettingFileError("no Compressor setting file given")
    if not job.destination:
        raise DestinationError("no destination file given")
    if not settings.check_paths:
        return job
    if not os.path.isfile(job.source):
        raise SourceFileError(f"source file {job.source!r} does not exist or is not a file")
    if not os.access(job.source, os.R_OK):
        raise SourceFileError(f"source file {job.source!r} cannot be read")
    if not os.path.exists(job.setting):
        raise SettingFileError(f"setting file {job.setting!r} does not exist", text=job.setting)
    folder = os.path.dirname(os.path.abspath(job.destination))
    if not os.path.isdir(folder):
        raise DestinationError(f"destination folder {folder!r} does not exist")
    if not os.access(folder, os.W_OK):
        raise DestinationError(f"destination folder {folder!r} cannot be written")
    if os.path.isdir(job.destination):
        raise DestinationError(f"destination {job.destination!r} is a folder, not a file")
    if settings.command_prefix:
        return job
    return BatchJob(
        os.path.abspath(job.source),
        os.path.abspath(job.setting),
        os.path.abspath(job.destination),
    )


__all__ = [
    "cancel_argv",
    "check_job",
    "check_tool",
    "destination_for",
    "status_argv",
    "submit_argv",
    "with_prefix",
]
