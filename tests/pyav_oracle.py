"""The test oracle of the probe: the analysis the product made with PyAV (FFmpeg's
libraries through their API) before it read ffmpeg's own description of its input.

``tests/integration/test_probe_agrees.py`` checks that both readings agree on many real
clips. PyAV is a test dependency only.
"""

from __future__ import annotations

import os
from fractions import Fraction
from typing import Any

import av
import av.error

from transcoder_admin.media.probe import (
    IMAGE_CODECS,
    REFERENCE_FORMATS,
    TEXT_FORMATS,
    AudioInfo,
    MediaInfo,
    NotMediaError,
    VideoInfo,
    mime_type,
)

# Packets read at most when looking for the first video frame (its rotation).
MAX_PACKETS_FOR_ROTATION = 300


def _av() -> Any:
    return av


def _normalise_rotation(degrees: float) -> int:
    """Round to a multiple of 90 in 0..270."""
    return int(round(degrees / 90.0)) * 90 % 360


def _first_frame_rotation(container: Any, stream: Any) -> float | None:
    """Counter-clockwise display rotation of the first decoded frame, if one decodes.

    PyAV exposes a stream's display matrix only on decoded frames, where FFmpeg copies
    it from the stream's side data.
    """
    av = _av()
    try:
        for count, packet in enumerate(container.demux(stream)):
            for frame in packet.decode():
                return float(frame.rotation)
            if count >= MAX_PACKETS_FOR_ROTATION:
                break
    except (av.error.FFmpegError, ValueError, OSError):
        pass
    return None


def _rotation(container: Any, stream: Any, display_matrix: bool = True) -> int:
    """Clockwise rotation from the display matrix, else the legacy 'rotate' tag.

    Reading the display matrix decodes a frame; ``display_matrix=False`` skips it.
    """
    ccw = _first_frame_rotation(container, stream) if display_matrix else None
    if ccw:
        return _normalise_rotation(-ccw)
    try:
        return _normalise_rotation(float(stream.metadata.get("rotate", 0)))
    except (ValueError, OverflowError):
        return 0


def _fraction(value: Any) -> Fraction | None:
    if value is None:
        return None
    frac = Fraction(value)
    return frac if frac > 0 else None


def _video_info(container: Any, stream: Any, display_matrix: bool = True) -> VideoInfo:
    width, height = int(stream.width or 0), int(stream.height or 0)
    sar = _fraction(stream.sample_aspect_ratio) or Fraction(1)
    rate = _fraction(stream.average_rate) or _fraction(stream.guessed_rate)
    return VideoInfo(
        codec=_codec_name(stream),
        width=width,
        height=height,
        sar=sar,
        rotation=_rotation(container, stream, display_matrix),
        fps=float(rate) if rate else None,
    )


def _codec_name(stream: Any) -> str:
    """The codec's canonical name (h264, mp3), not the decoder's (mp3float)."""
    av = _av()
    try:
        return str(stream.codec_context.codec.canonical_name)
    except (AttributeError, av.error.FFmpegError):
        return "unknown"


def _duration(container: Any) -> float | None:
    if container.duration is not None and container.duration > 0:
        return container.duration / 1_000_000
    longest = 0.0
    for stream in container.streams:
        if stream.duration and stream.time_base:
            longest = max(longest, float(stream.duration * stream.time_base))
    return longest or None


def _mime_type(path: str, format_name: str, container: Any, has_video: bool) -> str:
    """The product's rule (not what this oracle checks), from PyAV's reading of the brand."""
    return mime_type(path, format_name, container.metadata.get("major_brand", ""), has_video)


def pyav_probe(path: str, display_matrix: bool = True) -> MediaInfo:
    """Analyse ``path``; raise NotMediaError unless it has an audio or video stream.

    The rotation of the picture comes from the display matrix, which costs the decode
    of the first frame; callers that do not scale or rotate the picture (an identity
    copy, checking an output's streams) pass ``display_matrix=False`` and get the
    legacy 'rotate' tag only.
    """
    av = _av()
    size = os.stat(path).st_size  # a missing file is an OSError, not "not media"
    if size == 0:
        raise NotMediaError("not a media file: the file is empty")
    try:
        container = av.open(
            "file:" + os.path.abspath(path),
            options={"protocol_whitelist": "file"},
        )
    except (av.error.FFmpegError, UnicodeDecodeError, ValueError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise NotMediaError(f"not a media file: unrecognised format ({reason})") from exc
    with container:
        format_name = container.format.name
        if set(format_name.split(",")) & TEXT_FORMATS:
            raise NotMediaError("not a media file: a text file")
        if set(format_name.split(",")) & REFERENCE_FORMATS:
            raise NotMediaError(f"not a media file: a {format_name} playlist")
        videos = [
            s
            for s in container.streams.video
            if not s.disposition & av.stream.Disposition.attached_pic
        ]
        audios = list(container.streams.audio)
        if not videos and not audios:
            raise NotMediaError("not a media file: no audio or video stream")
        duration = _duration(container)
        if (
            not audios
            and all(_codec_name(s) in IMAGE_CODECS or _codec_name(s) == "ansi" for s in videos)
            and (duration is None or format_name.endswith("_pipe") or format_name == "image2")
        ):
            raise NotMediaError("not a media file: a still image")
        video = _video_info(container, videos[0], display_matrix) if videos else None
        audio = None
        if audios:
            stream = audios[0]
            audio = AudioInfo(
                codec=_codec_name(stream),
                rate=int(stream.sample_rate or 0),
                channels=int(stream.channels or 0),
            )
        bit_rate = container.bit_rate or None
        return MediaInfo(
            format_name=format_name,
            duration=duration,
            size=size,
            bit_rate=int(bit_rate) if bit_rate else None,
            video=video,
            audio=audio,
            mime_type=_mime_type(path, format_name, container, video is not None),
        )
