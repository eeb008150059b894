"""ffmpeg command lines (argv lists, never shell strings) for targets and checks.

Every command reports progress on stdout (``-progress pipe:1``, see progress.py) and
only errors on stderr. Sources and outputs are passed as ``file:`` + absolute path so
that no file name is ever read as an option or a protocol.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from fractions import Fraction
from typing import Any

from .environment import command_environment
from .locate import INPUT_OPTIONS, find_ffmpeg, input_arg
from .probe import MediaInfo
from .sizes import compute_size, video_filters

__all__ = [
    "find_ffmpeg",
    "input_arg",
    "target_command",
    "thumbnails_command",
    "decode_check_command",
    "command_environment",
    "decoded_enough",
]


def common_options(level: str = "error") -> list[str]:
    """What every command starts with: quiet but for ``level``, progress on stdout."""
    return ["-hide_banner", "-nostdin", "-y", "-v", level, "-progress", "pipe:1", "-nostats"]


COMMON = common_options()
MOV_MUXERS = frozenset({"mp4", "mov", "ipod"})

DEFAULT_PRESET = "veryfast"
X26X_PRESETS = (
    "ultrafast",
    "superfast",
    "veryfast",
    "faster",
    "fast",
    "medium",
    "slow",
    "slower",
    "veryslow",
    "placebo",
)
# x264-style preset names → SVT-AV1 preset numbers (higher is faster).
SVTAV1_PRESETS = {
    "ultrafast": 12,
    "superfast": 11,
    "veryfast": 10,
    "faster": 9,
    "fast": 9,
    "medium": 8,
    "slow": 4,
    "slower": 3,
    "veryslow": 2,
    "placebo": 1,
}
# x264-style names → (libvpx deadline, cpu-used).
VP9_PRESETS = {
    "ultrafast": ("realtime", 8),
    "superfast": ("realtime", 8),
    "veryfast": ("realtime", 8),
    "faster": ("good", 4),
    "fast": ("good", 3),
    "medium": ("good", 2),
    "slow": ("good", 1),
    "slower": ("good", 0),
    "veryslow": ("best", 0),
    "placebo": ("best", 0),
}
# x264-style names → (libaom usage, cpu-used).
AOM_PRESETS = {
    "ultrafast": ("realtime", 8),
    "superfast": ("realtime", 8),
    "veryfast": ("realtime", 8),
    "faster": ("good", 6),
    "fast": ("good", 5),
    "medium": ("good", 4),
    "slow": ("good", 3),
    "slower": ("good", 2),
    "veryslow": ("good", 1),
    "placebo": ("good", 0),
}
OPUS_RATES = frozenset({48000, 24000, 16000, 12000, 8000})
MP3_RATES = frozenset({8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000})
CRF_MAX = {"libx264": 51, "libx265": 51}


def _head(ffmpeg: str, source: str, *pre_input: str, level: str = "error") -> list[str]:
    return [ffmpeg, *common_options(level), *pre_input, *INPUT_OPTIONS, "-i", input_arg(source)]


def _kbit(value: float) -> str:
    """A rate in kbit/s as ffmpeg's argument: ``2500k``, or bit/s when not whole kbit/s."""
    bits = round(float(value) * 1000)
    return f"{bits // 1000}k" if bits % 1000 == 0 else str(bits)


def target_settings(target: Mapping[str, Any]) -> dict[str, Any]:
    """The video and audio settings a target was encoded with, for its report.

    Bitrates appear as ffmpeg was given them (``2500k``), so the unit is never in doubt.
    """
    kinds = {"audio-video": ("video", "audio"), "video": ("video",), "audio": ("audio",)}
    settings: dict[str, Any] = {}
    for kind in kinds.get(str(target.get("type")), ()):
        values = dict(target.get(kind) or {})
        if values.get("bitrate"):
            values["bitrate"] = _kbit(values["bitrate"])
        settings[kind] = values
    return settings


def _number(value: float) -> str:
    """A number without a useless ``.0`` (ffmpeg accepts both; argv stays readable)."""
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _preset_options(codec: str, preset: str | None) -> list[str]:
    name = str(preset).lower() if preset is not None else None
    if codec in ("libx264", "libx265"):
        return ["-preset", name or DEFAULT_PRESET]
    if codec == "libsvtav1":
        if name is not None and name.lstrip("-").isdigit():
            return ["-preset", name]
        return ["-preset", str(SVTAV1_PRESETS.get(name or DEFAULT_PRESET, 10))]
    if codec == "libvpx-vp9":
        if name is not None and name.lstrip("-").isdigit():
            deadline, cpu = "good", int(name)
        else:
            deadline, cpu = VP9_PRESETS.get(name or DEFAULT_PRESET, ("realtime", 8))
        return ["-deadline", deadline, "-cpu-used", str(cpu), "-row-mt", "1"]
    if codec == "libaom-av1":
        if name is not None and name.isdigit():
            usage, cpu = "good", int(name)
        else:
            usage, cpu = AOM_PRESETS.get(name or DEFAULT_PRESET, ("realtime", 8))
        return ["-usage", usage, "-cpu-used", str(cpu), "-row-mt", "1"]
    return ["-preset", name] if name else []


def _rate_options(codec: str, bitrate: int | None, crf: int | None) -> list[str]:
    """Quality/bitrate options; a bitrate given with a crf is an upper bound."""
    if crf is not None and codec in CRF_MAX:
        crf = min(int(crf), CRF_MAX[codec])
    opts: list[str] = []
    if codec in ("libx264", "libx265"):
        if crf is not None:
            opts += ["-crf", str(crf)]
            if bitrate:
                opts += ["-maxrate", _kbit(bitrate), "-bufsize", _kbit(bitrate * 2)]
        elif bitrate:
            opts += ["-b:v", _kbit(bitrate)]
            opts += ["-maxrate", _kbit(bitrate * 1.5), "-bufsize", _kbit(bitrate * 2)]
    elif codec in ("libvpx-vp9", "libaom-av1"):
        # Constant quality needs -b:v 0; with a bitrate it is "constrained quality".
        if crf is None and not bitrate:
            crf = 32
        if crf is not None:
            opts += ["-crf", str(crf)]
        opts += ["-b:v", _kbit(bitrate) if bitrate else "0"]
    elif codec == "libsvtav1":
        # SVT-AV1 accepts a max rate only in CRF mode ("capped CRF").
        if crf is not None:
            opts += ["-crf", str(max(1, crf))]
            if bitrate:
                opts += ["-maxrate", _kbit(bitrate), "-bufsize", _kbit(bitrate * 2)]
        elif bitrate:
            opts += ["-b:v", _kbit(bitrate)]
    else:
        if crf is not None:
            opts += ["-crf", str(crf)]
        if bitrate:
            opts += ["-b:v", _kbit(bitrate)]
    return opts


def _par(value: Any) -> Fraction:
    if not value:
        return Fraction(1)
    ratio = Fraction(str(value).replace(":", "/"))
    if ratio <= 0:
        raise ValueError(f"invalid pixel aspect ratio {value!r}")
    return ratio


def _video_options(video: Mapping[str, Any], info: MediaInfo, muxer: str | None) -> list[str]:
    assert info.video is not None
    codec = video.get("codec") or "libx264"
    par = _par(video.get("pixel_aspect_ratio"))
    # Sizes are computed in output pixels: the display width expressed in pixels of
    # the requested aspect ratio (ffmpeg has already autorotated the picture).
    size = compute_size(
        max(1, round(info.video.display_width / par)),
        max(1, info.video.display_height),
        width=video.get("width"),
        height=video.get("height"),
        max_width=video.get("max_width"),
        max_height=video.get("max_height"),
        upscale=bool(video.get("upscale")),
        even=True,
    )
    opts = ["-vf", ",".join(video_filters(size, par))]
    if video.get("framerate"):
        opts += ["-r", _number(float(video["framerate"]))]
    opts += ["-c:v", codec, "-pix_fmt", "yuv420p"]
    opts += _preset_options(codec, video.get("preset"))
    opts += _rate_options(codec, video.get("bitrate"), video.get("crf"))
    if codec == "libx265":
        opts += ["-x265-params", "log-level=error"]
        if muxer in MOV_MUXERS:
            opts += ["-tag:v", "hvc1"]  # what Apple players require for HEVC
    return opts


def _audio_options(audio: Mapping[str, Any], info: MediaInfo) -> list[str]:
    assert info.audio is not None
    codec = audio.get("codec") or "aac"
    rate = audio.get("rate")
    channels = audio.get("channels")
    if codec == "libopus" and rate not in OPUS_RATES:
        rate = 48000
    elif codec == "libmp3lame":
        if rate is not None and rate not in MP3_RATES:
            rate = 48000
        if (channels or info.audio.channels) > 2:
            channels = 2
    opts = ["-c:a", codec]
    if audio.get("bitrate"):
        opts += ["-b:a", _kbit(audio["bitrate"])]
    if rate:
        opts += ["-ar", str(int(rate))]
    if channels:
        opts += ["-ac", str(int(channels))]
    return opts


def target_command(
    ffmpeg: str, source: str, output: str, spec: Mapping[str, Any], info: MediaInfo
) -> list[str]:
    """The ffmpeg argv that transcodes ``source`` into ``output`` for one target."""
    kind = spec.get("type")
    if kind == "thumbnails":
        return thumbnails_command(ffmpeg, source, output, spec, info)
    if kind not in ("audio-video", "video", "audio"):
        raise ValueError(f"a {kind} target has no transcoding command")
    with_video = kind in ("audio-video", "video") and info.video is not None
    with_audio = kind in ("audio-video", "audio") and info.audio is not None
    if kind == "video" and not with_video:
        raise ValueError("the source has no video stream")
    if kind == "audio" and not with_audio:
        raise ValueError("the source has no audio stream")
    if not (with_video or with_audio):
        raise ValueError("the source has neither video nor audio")
    muxer = spec.get("muxer")
    cmd = _head(ffmpeg, source)
    # 'V' skips cover art and other attached pictures.
    if with_video:
        cmd += ["-map", "0:V:0"]
    if with_audio:
        cmd += ["-map", "0:a:0"]
    cmd += _video_options(spec.get("video") or {}, info, muxer) if with_video else ["-vn"]
    cmd += _audio_options(spec.get("audio") or {}, info) if with_audio else ["-an"]
    cmd += ["-sn", "-dn"]
    if muxer in MOV_MUXERS:
        cmd += ["-movflags", "+faststart"]
    if muxer:
        cmd += ["-f", muxer]
    cmd.append(input_arg(output))
    return cmd


def _thumbnail_select(settings: Mapping[str, Any], info: MediaInfo) -> str:
    interval = float(settings.get("interval") or 10)
    unit = settings.get("unit") or "seconds"
    if interval <= 0:
        raise ValueError("the thumbnail interval must be positive")
    if unit == "frames":
        return f"select='not(mod(n\\,{max(1, round(interval))}))'"
    if unit == "percent":
        if not info.duration:
            raise ValueError("thumbnails every N percent need a source with a known duration")
        step = info.duration * interval / 100.0
    elif unit == "seconds":
        step = interval
    else:
        raise ValueError(f"unknown thumbnail interval unit {unit!r}")
    # The first frame of every step-long slice of time: exact counts, no drift.
    s = f"{step:.6f}"
    return f"select='isnan(prev_selected_t)+gte(floor(t/{s})\\,floor(prev_selected_t/{s})+1)'"


def thumbnails_command(
    ffmpeg: str, source: str, output_pattern: str, spec: Mapping[str, Any], info: MediaInfo
) -> list[str]:
    """The ffmpeg argv that writes numbered images (from 1) into ``output_pattern``."""
    if info.video is None:
        raise ValueError("the source has no video stream")
    settings = spec.get("thumbnails") or {}
    fmt = settings.get("format") or "jpeg"
    size = compute_size(
        info.video.display_width,
        info.video.display_height,
        width=settings.get("width"),
        height=settings.get("height"),
        even=False,
    )
    scaling = video_filters(size)
    if size.padded:
        # pad cannot make odd sizes in 4:2:0; full chroma lets thumbnails be any size.
        scaling.insert(-1, "format=yuv444p")
    filters = [_thumbnail_select(settings, info), *scaling]
    cmd = _head(ffmpeg, source)
    cmd += ["-map", "0:V:0", "-an", "-sn", "-dn", "-vf", ",".join(filters)]
    cmd += ["-fps_mode", "vfr", "-frames:v", str(int(settings.get("max_count") or 10))]
    if fmt == "png":
        cmd += ["-c:v", "png"]
    else:
        cmd += ["-c:v", "mjpeg", "-q:v", "3"]
    cmd += ["-start_number", "1", "-f", "image2", os.path.abspath(output_pattern)]
    return cmd


def decode_check_command(ffmpeg: str, source: str, describe: bool = False) -> list[str]:
    """The ffmpeg argv that decodes every audio and video stream, failing on an error.

    A non-zero exit means a decoding error. Exit 0 is not enough: a truncated Matroska
    file, or one whose structure is damaged, just ends early ("File ended
    prematurely"), so callers also check ``decoded_enough`` with the last progress
    out_time and the probed duration.  ``describe``: log at level ``info``, so that
    standard error begins with ffmpeg's description of the source (``probe.describe``)
    and the one run both analyses and checks it.
    """
    return [
        *_head(ffmpeg, source, "-xerror", level="info" if describe else "error"),
        *["-map", "0:v?", "-map", "0:a?", "-f", "null", "-"],
    ]


def decoded_enough(
    decoded: float | None,
    duration: float | None,
    tolerance: float = 0.5,
    tolerance_percent: float = 1.0,
) -> bool:
    """Whether a decode check reached the probed duration, within the tolerances.

    ``decoded`` is the last progress out_time; an unknown duration cannot be checked
    and passes.
    """
    if not duration:
        return True
    if decoded is None:
        return False
    allowed = max(tolerance, duration * tolerance_percent / 100.0)
    return decoded >= duration - allowed
