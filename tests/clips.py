"""Generators of tiny test clips (and broken copies of them) with the bundled ffmpeg."""

from __future__ import annotations

import os
import random
import subprocess
from fractions import Fraction

import imageio_ffmpeg

FFMPEG = imageio_ffmpeg.get_ffmpeg_exe()
BASE = [FFMPEG, "-hide_banner", "-nostdin", "-y", "-v", "error"]
ENV = {**os.environ, "SVT_LOG": "1"}


def _run(args: list[str]) -> None:
    subprocess.run(args, check=True, env=ENV, capture_output=True, timeout=120)


def make_clip(
    path: str,
    *,
    duration: float = 2.0,
    width: int = 320,
    height: int = 240,
    fps: int = 25,
    video: bool = True,
    audio: bool = True,
    vcodec: str = "libx264",
    acodec: str = "aac",
    sar: str | Fraction | None = None,
    rotate: int | None = None,
    fmt: str | None = None,
    rate: int = 48000,
) -> str:
    """Write a testsrc2 + sine clip to ``path`` and return ``path``.

    ``sar`` ("16:15") sets the pixel aspect ratio; ``rotate`` (clockwise degrees, as
    probe reports it) sets the container's display matrix.
    """
    args = list(BASE)
    if video:
        args += ["-f", "lavfi", "-i", f"testsrc2=size={width}x{height}:rate={fps}:d={duration}"]
    if audio:
        args += ["-f", "lavfi", "-i", f"sine=frequency=440:sample_rate={rate}:d={duration}"]
    if video:
        if sar is not None:
            ratio = Fraction(str(sar).replace(":", "/"))
            args += ["-vf", f"setsar={ratio.numerator}/{ratio.denominator}"]
        args += ["-c:v", vcodec]
        if vcodec == "libx264":
            args += ["-preset", "ultrafast", "-pix_fmt", "yuv420p", "-g", "25"]
    if audio:
        args += ["-c:a", acodec]
    args += ["-t", str(duration)]
    if fmt:
        args += ["-f", fmt]
    if rotate is None:
        _run([*args, "file:" + os.path.abspath(path)])
        return path
    plain = path + ".plain" + os.path.splitext(path)[1]
    _run([*args, "file:" + os.path.abspath(plain)])
    # -display_rotation is an input option, counter-clockwise; the copy carries it.
    remux = [*BASE, "-display_rotation:v:0", str(-rotate), "-i", "file:" + plain]
    remux += ["-map", "0", "-c", "copy"]
    if fmt:
        remux += ["-f", fmt]
    _run([*remux, "file:" + os.path.abspath(path)])
    os.unlink(plain)
    return path


def corrupt_clip(src: str, dst: str, seed: int = 1) -> str:
    """Copy ``src`` to ``dst`` with random bytes over its middle third; return ``dst``."""
    with open(src, "rb") as f:
        data = bytearray(f.read())
    rng = random.Random(seed)
    start, end = len(data) // 3, 2 * len(data) // 3
    data[start:end] = rng.randbytes(end - start)
    with open(dst, "wb") as f:
        f.write(data)
    return dst


def truncate_clip(src: str, dst: str, fraction: float) -> str:
    """Copy the first ``fraction`` of ``src``'s bytes to ``dst``; return ``dst``."""
    with open(src, "rb") as f:
        data = f.read()
    with open(dst, "wb") as f:
        f.write(data[: int(len(data) * fraction)])
    return dst
