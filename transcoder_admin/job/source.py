"""A job's source: opened once without following links, read through a private copy.

Runs in a thread.  The source in incoming is opened with ``O_NOFOLLOW`` (a link is a
source failure), checked against the identity the admin offered (device, inode, size,
mtime: a mismatch means it changed), and linked or copied from that handle into the
work folder; ffmpeg, the identity copy and the checksum read that private copy.
"""

from __future__ import annotations

import codecs
import hashlib
import os
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import puremagic

from ..context.paths import Roots, fit_name, name_bytes
from ..media.probe import NotMediaError, playlist_kind
from ..prognosis import source_changed, source_failure, system_failure
from ..records import JobSpec
from .safefs import (
    Identity,
    SourceIsLink,
    SourceNotRegular,
    folder_name_max,
    open_source,
    private_copy,
)

CHECKSUM_CHUNK = 1 << 20
#: Sources up to this size are hashed in the analysis' own trip to a thread; a bigger one
#: is hashed in a thread of its own while the job's programs read it (``Job``).
INLINE_CHECKSUM_BYTES = 4 << 20


class ChecksumStopped(Exception):
    """The checksum was abandoned (its job was aborted)."""


def file_checksum(path: str, stop: Callable[[], bool] | None = None) -> str:
    """``sha256:<hex>`` of a file (run off the reactor thread); ``stop`` is asked
    between chunks and ends the reading with ChecksumStopped when it says so."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHECKSUM_CHUNK):
            if stop is not None and stop():
                raise ChecksumStopped(path)
            digest.update(chunk)
    return "sha256:" + digest.hexdigest()


def source_facts(path: str, checksum: bool = True) -> dict[str, Any]:
    """Size, times and (unless told not to) checksum of a source (off the reactor)."""
    return facts(os.stat(path), path if checksum else None)


def facts(st: os.stat_result, checksum_of: str | None) -> dict[str, Any]:
    return {
        "size": st.st_size,
        "ctime": datetime.fromtimestamp(st.st_ctime, UTC).isoformat(),
        "mtime": datetime.fromtimestamp(st.st_mtime, UTC).isoformat(),
        "checksum": file_checksum(checksum_of) if checksum_of else None,
    }


#: The folder of the job's own copy of its source, in the work folder (apart from the
#: outputs, whose work names could otherwise be the source's own name).
PRIVATE_SOURCE = "source"


def private_name(relpath: str) -> str:
    """The source's own name (fitted): ffmpeg guesses some formats from the extension,
    and its command lines and errors name the file a person dropped."""
    return fit_name(relpath.rsplit("/", 1)[-1])


def prepare(
    work_dir: str,
    source: str,
    offered: Mapping[str, Any] | None,
    private_name: str,
) -> tuple[dict[str, Any], str, Identity]:
    """A job's first steps, in one trip to a thread.

    Make the work folder; open the source once without following a link and check it
    is the file offered; make the job's private copy from that handle (every later read
    uses it); note size, times, first bytes and (up to INLINE_CHECKSUM_BYTES) checksum.
    A playlist (a file that names
    others) is not media: NotMediaError before any program reads it.
    """
    try:
        os.makedirs(os.path.join(work_dir, PRIVATE_SOURCE), 0o755, exist_ok=True)
    except OSError as e:
        raise system_failure(f"cannot make the work folder {work_dir}: {e.strerror}") from None
    try:
        fd, st = open_source(source)
    except SourceIsLink:
        raise source_failure("the source is a link") from None
    except SourceNotRegular:
        raise source_failure("the source is not a regular file") from None
    try:
        identity = Identity.of(st)
        if not identity.matches(offered):
            raise source_changed()
        try:
            private = private_copy(fd, os.path.join(work_dir, PRIVATE_SOURCE), private_name)
        except OSError as e:
            raise system_failure(
                f"cannot make the job's copy of the source in {work_dir}: {e.strerror}"
            ) from None
    finally:
        os.close(fd)
    with open(private, "rb") as f:
        head = f.read(SNIFF_BYTES)
    inline = private if st.st_size <= INLINE_CHECKSUM_BYTES else None
    found = {**facts(st, inline), **sniff(head)}
    playlist = playlist_kind(head)
    if playlist:
        refused = NotMediaError(f"not a media file: a {playlist} playlist")
        refused.facts = found  # the report still says what the file was
        raise refused
    return found, private, identity


#: How much of a source's beginning its report shows (as hex).
HEAD_BYTES = 128
#: How much of a source's beginning the sniffing reads.
SNIFF_BYTES = 4096


def sniff(head: bytes) -> dict[str, Any]:
    """A file's first bytes (hex) and the MIME type they suggest (None: unknown).

    puremagic knows the magic numbers of media, images, documents and archives; text
    has none, so bytes that decode as UTF-8 without NULs are ``text/plain``.
    """
    mime = None
    try:
        mime = puremagic.from_string(head, mime=True) or None
    except (puremagic.PureError, ValueError):
        pass
    if mime is None and head and b"\x00" not in head:
        try:  # the last character may be cut: not final
            codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
            mime = "text/plain"
        except UnicodeDecodeError:
            pass
    return {"head": head[:HEAD_BYTES].hex(), "mime_guess": mime}


def check_name_limits(roots: Roots, spec: JobSpec) -> None:
    """A source failure if a folder of the source's path cannot exist where it must go.

    The folders of ``relpath`` are replicated under outgoing, done, failed and the
    reports; a file name can be shortened there, a folder name cannot.
    """
    parts = str(spec.relpath).split("/")[:-1]
    if not parts:
        return
    destinations: list[str | None] = [spec.done, spec.failed, spec.report_done, spec.report_failed]
    destinations += [t.get("output_folder") for t in spec.targets]
    limits: dict[str, int] = {}
    for virtual in destinations:
        if not virtual:
            continue
        folder = roots.local(virtual)
        if folder not in limits:
            limits[folder] = folder_name_max(folder)
        for part in parts:
            if name_bytes(part) > limits[folder]:
                raise source_failure(
                    f"the folder name {part!r} is {name_bytes(part)} bytes, over the "
                    f"{limits[folder]}-byte name limit of {folder}"
                )
