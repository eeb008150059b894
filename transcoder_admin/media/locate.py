"""Which ffmpeg runs, and how a file is named to it."""

from __future__ import annotations

import os
import shutil

__all__ = ["INPUT_OPTIONS", "find_ffmpeg", "input_arg"]

# Demuxers such as HLS open files named inside the source: keep them to local files.
INPUT_OPTIONS = ["-protocol_whitelist", "file"]


def find_ffmpeg(configured: str | None = None) -> str:
    """The ffmpeg to run: the configured one, the PyPI wheel's, or the one on PATH."""
    if configured:
        path = os.path.expanduser(configured)
        if os.sep not in path:
            path = shutil.which(path) or path
        if os.path.isfile(path) and os.access(path, os.X_OK):
            return os.path.abspath(path)
        raise FileNotFoundError(f"configured ffmpeg {configured!r} is not an executable file")
    try:
        import imageio_ffmpeg

        exe = imageio_ffmpeg.get_ffmpeg_exe()
        if exe and os.path.isfile(exe) and os.access(exe, os.X_OK):
            return str(exe)
    except (ImportError, RuntimeError, OSError):
        pass
    found = shutil.which("ffmpeg")
    if found:
        return found
    raise FileNotFoundError(
        "no ffmpeg found: set transcoding.ffmpeg in the admin config, install the "
        "imageio-ffmpeg package, or put ffmpeg on PATH"
    )


def input_arg(path: str) -> str:
    """``path`` as an ffmpeg URL that cannot be an option or another protocol."""
    return "file:" + os.path.abspath(path)
