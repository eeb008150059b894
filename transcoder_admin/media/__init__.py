"""Media analysis and ffmpeg command building: probe, output sizes, commands, progress."""

from .ffmpeg import (
    command_environment,
    decode_check_command,
    decoded_enough,
    find_ffmpeg,
    input_arg,
    target_command,
    thumbnails_command,
)
from .probe import AudioInfo, MediaInfo, NotMediaError, VideoInfo, probe
from .progress import Progress, ProgressParser
from .sizes import OutputSize, compute_size, video_filters

__all__ = [
    "AudioInfo",
    "MediaInfo",
    "NotMediaError",
    "OutputSize",
    "Progress",
    "ProgressParser",
    "VideoInfo",
    "command_environment",
    "compute_size",
    "decode_check_command",
    "decoded_enough",
    "find_ffmpeg",
    "input_arg",
    "probe",
    "target_command",
    "thumbnails_command",
    "video_filters",
]
