"""Media analysis: what ffmpeg says of a file when it opens it.

``probe`` runs ``ffmpeg -i FILE`` with no output. FFmpeg opens the file as it would for
a transcode, describes the container and its streams on standard error (``dump.py``
reads that), and exits. The analysis runs in a program, not in the daemon: a worker
does not load FFmpeg's libraries (about 24 MiB of its memory with PyAV), and a job's
decode check can describe the source in the same run (``describe``).

``probe`` blocks: callers run it in a thread. A job runs ``probe_command`` itself, as
one of its programs (killed with it, its CPU time counted), and reads the result with
``describe``.
"""

from __future__ import annotations

import mimetypes
import os
import subprocess
from dataclasses import asdict, dataclass
from fractions import Fraction
from typing import Any

from .dump import StreamDump, error_reason, read_dump
from .environment import command_environment
from .locate import INPUT_OPTIONS, find_ffmpeg, input_arg

__all__ = [
    "NotMediaError",
    "VideoInfo",
    "AudioInfo",
    "MediaInfo",
    "describe",
    "mime_type",
    "playlist_kind",
    "probe",
    "probe_command",
    "refuse_empty",
    "undescribed",
]

# Codecs of still pictures: a container holding only one of these without a duration
# is an image, not media.
IMAGE_CODECS = frozenset(
    {
        "mjpeg",
        "png",
        "bmp",
        "gif",
        "webp",
        "tiff",
        "jpeg2000",
        "jpegls",
        "jpegxl",
        "ppm",
        "pgm",
        "pbm",
        "pam",
        "targa",
        "qoi",
        "sgi",
        "dpx",
        "exr",
        "hdr",
        "pcx",
        "xbm",
        "xwd",
    }
)
# Demuxers that are not media even when FFmpeg can "decode" them.
TEXT_FORMATS = frozenset({"tty", "ansi"})
# Demuxers that open other files or URLs named inside the file.
REFERENCE_FORMATS = frozenset({"hls", "applehttp", "concat", "dash"})
#: Seconds a probe may take (FFmpeg reads at most a few megabytes to describe a file).
PROBE_TIMEOUT = 120.0

_FORMAT_MIME = {
    "matroska": ("video/x-matroska", "audio/x-matroska"),
    "webm": ("video/webm", "audio/webm"),
    "ogg": ("video/ogg", "audio/ogg"),
    "mp3": ("audio/mpeg", "audio/mpeg"),
    "avi": ("video/x-msvideo", "video/x-msvideo"),
    "mpegts": ("video/mp2t", "video/mp2t"),
    "mpeg": ("video/mpeg", "audio/mpeg"),
    "flv": ("video/x-flv", "video/x-flv"),
    "asf": ("video/x-ms-asf", "audio/x-ms-wma"),
    "wav": ("audio/wav", "audio/wav"),
    "flac": ("audio/flac", "audio/flac"),
    "aac": ("audio/aac", "audio/aac"),
    "ac3": ("audio/ac3", "audio/ac3"),
    "aiff": ("audio/aiff", "audio/aiff"),
    "caf": ("audio/x-caf", "audio/x-caf"),  # Apple's Core Audio Format (mimetypes lacks it)
    "gif": ("image/gif", "image/gif"),
    "mxf": ("application/mxf", "application/mxf"),
    "dv": ("video/x-dv", "video/x-dv"),
    "ipod": ("audio/mp4", "audio/mp4"),
}


class NotMediaError(Exception):
    """The file is not media this system can transcode; ``str(e)`` says why."""

    #: What is known of the file all the same (a job's size, times, first bytes).
    facts: dict[str, Any] | None = None


@dataclass(frozen=True)
class VideoInfo:
    """The main video stream (cover art excluded)."""

    codec: str
    width: int
    height: int
    sar: Fraction
    rotation: int  # clockwise degrees to turn the picture upright, as the 'rotate' tag
    fps: float | None

    @property
    def display_width(self) -> int:
        """The width the picture is shown at (its pixels widened by the SAR, turned)."""
        return self.display_size()[0]

    @property
    def display_height(self) -> int:
        """The height the picture is shown at."""
        return self.display_size()[1]

    def display_size(self) -> tuple[int, int]:
        """(width, height) as shown: the SAR applied to the width, then the rotation."""
        width = max(1, round(self.width * self.sar)) if self.width else 0
        return (self.height, width) if self.rotation in (90, 270) else (width, self.height)


@dataclass(frozen=True)
class AudioInfo:
    """The first audio stream."""

    codec: str
    rate: int
    channels: int


@dataclass(frozen=True)
class MediaInfo:
    """What a probe found out about a file."""

    format_name: str
    duration: float | None
    size: int
    bit_rate: int | None
    video: VideoInfo | None
    audio: AudioInfo | None
    mime_type: str

    def to_dict(self) -> dict[str, Any]:
        """The info as basic types (fractions as "num:den"), for reports and the API."""

        def plain(value: Any) -> Any:
            if isinstance(value, Fraction):
                return f"{value.numerator}:{value.denominator}"
            if isinstance(value, dict):
                return {k: plain(v) for k, v in value.items()}
            return value

        data: dict[str, Any] = plain(asdict(self))
        if self.video is not None:
            width, height = self.video.display_size()
            data["video"].update(display_width=width, display_height=height)
        return data


def _normalise_rotation(degrees: float) -> int:
    """Round to a multiple of 90 in 0..270."""
    return int(round(degrees / 90.0)) * 90 % 360


def _rotation(stream: StreamDump) -> int:
    """Clockwise rotation from the display matrix, else the legacy 'rotate' tag."""
    if stream.rotation:  # counter-clockwise, as FFmpeg prints it
        return _normalise_rotation(-stream.rotation)
    try:
        return _normalise_rotation(float(stream.tags.get("rotate", 0)))
    except (ValueError, OverflowError):
        return 0


def _video_info(stream: StreamDump) -> VideoInfo:
    width, height, ratio = stream.size()
    sar = Fraction(*ratio) if ratio and ratio[0] > 0 and ratio[1] > 0 else Fraction(1)
    rate = _frame_rate(stream.rate("fps"), stream.rate("tbr"))
    return VideoInfo(
        codec=_codec_name(stream),
        width=width,
        height=height,
        sar=sar,
        rotation=_rotation(stream),
        fps=rate or None,
    )


def _frame_rate(average: float | None, guessed: float | None) -> float | None:
    """The average frame rate, unless it is more than twice the guessed one: then it is
    the time base's, not the picture's (DV: "60k fps, 25 tbr")."""
    if average and guessed and average > 2 * guessed:
        return guessed
    return average or guessed


def _codec_name(stream: StreamDump) -> str:
    """The codec's canonical name (h264, mp3), not the decoder's (mp3float)."""
    return "unknown" if stream.codec in ("", "none") else stream.codec


def mime_type(path: str, format_name: str, major_brand: str, has_video: bool) -> str:
    """The MIME type of a file FFmpeg read as ``format_name`` (``major_brand``: its MP4
    or QuickTime brand, else empty)."""
    first = format_name.split(",")[0]
    if first == "mov":
        brand = major_brand.strip().lower()
        if brand == "qt":
            return "video/quicktime"
        if brand in ("m4a", "m4b") or not has_video:
            return "audio/mp4"
        if brand.startswith("3g"):
            return "video/3gpp"
        return "video/mp4"
    if first == "matroska":
        first = "webm" if path.lower().endswith(".webm") else "matroska"
    if first in _FORMAT_MIME:
        video_type, audio_type = _FORMAT_MIME[first]
        return video_type if has_video else audio_type
    guessed, _ = mimetypes.guess_type(path, strict=False)
    return guessed or "application/octet-stream"


def probe_command(ffmpeg: str, *paths: str) -> list[str]:
    """The argv that makes ffmpeg describe each of ``paths`` and exit (it says "At least
    one output file must be specified" and exits 1: the descriptions are what count; it
    stops at the first file it cannot open)."""
    inputs = [arg for path in paths for arg in (*INPUT_OPTIONS, "-i", input_arg(path))]
    return [ffmpeg, "-hide_banner", "-nostdin", "-v", "info", *inputs]


def refuse_empty(size: int) -> None:
    """An empty file is not media (and no program need read it to say so)."""
    if size == 0:
        raise NotMediaError("not a media file: the file is empty")


def describe(stderr: bytes, path: str, size: int) -> MediaInfo:
    """What ffmpeg's standard error says of ``path`` (``size`` bytes) after it opened it
    (``probe_command``, or a decode check at log level ``info``).

    Raise NotMediaError unless it has an audio or video stream.
    """
    refuse_empty(size)
    dump = read_dump(stderr, input_arg(path))
    if dump is None:
        reason = error_reason(stderr, input_arg(path))
        raise NotMediaError(f"not a media file: unrecognised format ({reason})")
    format_name = dump.format_name
    if set(format_name.split(",")) & TEXT_FORMATS:
        raise NotMediaError("not a media file: a text file")
    if set(format_name.split(",")) & REFERENCE_FORMATS:
        raise NotMediaError(f"not a media file: a {format_name} playlist")
    videos = [s for s in dump.streams if s.kind == "Video" and not s.attached_pic]
    audios = [s for s in dump.streams if s.kind == "Audio"]
    if not videos and not audios:
        raise NotMediaError("not a media file: no audio or video stream")
    duration = dump.duration or None
    if (
        not audios
        and all(_codec_name(s) in IMAGE_CODECS or _codec_name(s) == "ansi" for s in videos)
        and (duration is None or format_name.endswith("_pipe") or format_name == "image2")
    ):
        raise NotMediaError("not a media file: a still image")
    video = _video_info(videos[0]) if videos else None
    audio = None
    if audios:
        audio = AudioInfo(
            codec=_codec_name(audios[0]),
            rate=audios[0].sample_rate(),
            channels=audios[0].channels(),
        )
    return MediaInfo(
        format_name=format_name,
        duration=duration,
        size=size,
        bit_rate=dump.bit_rate,
        video=video,
        audio=audio,
        mime_type=mime_type(path, format_name, dump.tags.get("major_brand", ""), bool(video)),
    )


def probe(path: str, ffmpeg: str | None = None, timeout: float = PROBE_TIMEOUT) -> MediaInfo:
    """Analyse ``path`` with ffmpeg (blocking); raise NotMediaError unless it has an audio
    or video stream, OSError if it cannot be read (a missing file is not "not media")."""
    size = os.stat(path).st_size
    refuse_empty(size)
    argv = probe_command(ffmpeg or find_ffmpeg(), path)
    try:
        ran = subprocess.run(
            argv, capture_output=True, timeout=timeout, env=command_environment(), check=False
        )
    except subprocess.TimeoutExpired:
        raise undescribed(timeout) from None
    return describe(ran.stderr, path, size)


def undescribed(timeout: float) -> NotMediaError:
    """The error of a probe that took longer than ``timeout`` seconds."""
    return NotMediaError(f"not a media file: ffmpeg could not describe it in {timeout:g} s")


def playlist_kind(head: bytes) -> str | None:
    """The kind of playlist a file's first bytes show ("hls", "concat", "dash"), as
    FFmpeg's demuxers recognise them; None for anything else.

    A playlist names other files: it is refused before any program reads it (and,
    should one go unrecognised here, once ffmpeg has described it).
    """
    if head.startswith(b"#EXTM3U"):
        return "hls"
    if head.startswith(b"ffconcat version"):
        return "concat"
    lowered = head.lower()
    if b"<mpd" in lowered and b"dash:profile" in lowered:
        return "dash"
    return None
