"""Reading ffmpeg's description of an input (``av_dump_format``) from its standard error.

``ffmpeg -i FILE`` opens the file as it would for a transcode and, at log level ``info``,
describes it before anything else happens::

    Input #0, mov,mp4,m4a,3gp,3g2,mj2, from 'file:/work/source/clip.mp4':
      Metadata:
        major_brand     : isom
      Duration: 00:00:02.00, start: 0.000000, bitrate: 130 kb/s
      Stream #0:0[0x1](und): Video: h264 (High) (avc1 / 0x31637661), yuv420p(progressive), \
320x240 [SAR 1:1 DAR 4:3], 47 kb/s, 25 fps, 25 tbr, 12800 tbn (default)
        Side data:
          Display Matrix: rotation of -90.00 degrees
      Stream #0:1[0x2](und): Audio: aac (LC) (mp4a / 0x6134706D), 48000 Hz, stereo, fltp

This format has been stable for many FFmpeg releases (imageio-ffmpeg reads the same
lines). What the file itself controls in it (its metadata values, stream languages,
program names) is read only where the format puts it: the header is found by the exact
URL that was opened (a file name cannot fake a line), a container tag only at its own
indentation (a value's continuation lines are indented further), streams only at theirs.
A file can describe its own streams falsely only by being that file; ffmpeg then fails
on it, or an output's check does.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field

__all__ = ["Dump", "StreamDump", "read_dump", "error_reason", "channel_count"]

_DURATION = re.compile(
    r"^  Duration: (?:(\d+):(\d\d):(\d\d(?:\.\d+)?)|N/A)"
    r"(?:, start: [^,]*)?(?:, bitrate: (?:(\d+) kb/s|N/A))?"
)
_STREAM = re.compile(r"^  Stream #\d+:(\d+)(?:\[0x[0-9a-fA-F]+\])?(?:\(.*?\))?: (\w+): (.*)$")
_CONTAINER_TAG = re.compile(r"^    (\w+) *: (.*)$")
_STREAM_TAG = re.compile(r"^      (\w+) *: (.*)$")
_ROTATION = re.compile(
    r"^      (?:displaymatrix|display matrix): rotation of (-?\d+(?:\.\d+)?) degrees",
    re.IGNORECASE,
)
_SIZE = re.compile(r"^(\d+)x(\d+)(?: \[SAR (\d+):(\d+) DAR \d+:\d+\])?")
_STREAM_SAR = re.compile(r"^SAR (\d+):(\d+) DAR \d+:\d+")
_RATE = re.compile(r"^(\d+(?:\.\d+)?)(k?) (fps|tbr)\b")
_HZ = re.compile(r"^(\d+) Hz$")
_CHANNELS = re.compile(r"^(\d+) channels\b")
_FORMAT_NAME = re.compile(r"^[\w,.-]+$")
_INPUT = re.compile(rb"Input #\d+, ")
_ERROR = re.compile(r"Error opening input(?: files?)?: (.+)$")

# FFmpeg's named channel layouts (libavutil/channel_layout.c) and their channel counts;
# others are described as "N channels (FL+FR+…)" or, for ambisonics, "ambisonic N".
_LAYOUTS = {
    "mono": 1,
    "stereo": 2,
    "binaural": 2,
    "downmix": 2,
    "2.1": 3,
    "3.0": 3,
    "3.0(back)": 3,
    "4.0": 4,
    "quad": 4,
    "quad(side)": 4,
    "3.1": 4,
    "5.0": 5,
    "5.0(side)": 5,
    "4.1": 5,
    "5.1": 6,
    "5.1(side)": 6,
    "6.0": 6,
    "6.0(front)": 6,
    "3.1.2": 6,
    "hexagonal": 6,
    "6.1": 7,
    "6.1(back)": 7,
    "6.1(front)": 7,
    "7.0": 7,
    "7.0(front)": 7,
    "7.1": 8,
    "7.1(wide)": 8,
    "7.1(wide-side)": 8,
    "7.1(top)": 8,
    "5.1.2": 8,
    "5.1.2(back)": 8,
    "octagonal": 8,
    "cube": 8,
    "5.1.4": 10,
    "7.1.2": 10,
    "7.1.4": 12,
    "7.2.3": 12,
    "9.1.4": 14,
    "9.1.6": 16,
    "hexadecagonal": 16,
    "22.2": 24,
}


@dataclass
class StreamDump:
    """One ``Stream #I:N`` entry: its type, codec, description fields and side data."""

    kind: str  # Video, Audio, Subtitle, Data, Attachment
    codec: str
    fields: list[str]
    attached_pic: bool
    rotation: float | None = None  # counter-clockwise degrees, from the display matrix
    tags: dict[str, str] = field(default_factory=dict)

    def size(self) -> tuple[int, int, tuple[int, int] | None]:
        """Width, height and the sample aspect ratio (None: not given)."""
        width = height = 0
        sar: tuple[int, int] | None = None
        for text in self.fields:
            size = _SIZE.match(text)
            if size and not width:
                width, height = int(size[1]), int(size[2])
                if size[3]:
                    sar = (int(size[3]), int(size[4]))
            stream_sar = _STREAM_SAR.match(text)
            if stream_sar:  # the container's own, printed when it differs: it wins
                sar = (int(stream_sar[1]), int(stream_sar[2]))
        return width, height, sar

    def rate(self, kind: str) -> float | None:
        """The ``fps`` (average) or ``tbr`` (guessed) frame rate, if printed."""
        for text in self.fields:
            match = _RATE.match(text)
            if match and match[3] == kind:
                return float(match[1]) * (1000 if match[2] else 1)
        return None

    def sample_rate(self) -> int:
        """An audio stream's sample rate in Hz (0: not given)."""
        for text in self.fields:
            match = _HZ.match(text)
            if match:
                return int(match[1])
        return 0

    def channels(self) -> int:
        """An audio stream's channel count, from the layout after its sample rate."""
        for before, text in zip(self.fields, self.fields[1:], strict=False):
            if _HZ.match(before):
                return channel_count(text)
        return 0


@dataclass
class Dump:
    """An input as ffmpeg described it."""

    format_name: str
    duration: float | None
    bit_rate: int | None
    tags: dict[str, str]
    streams: list[StreamDump]


def channel_count(layout: str) -> int:
    """Channels of a layout as FFmpeg describes it (``stereo``, ``5.1(side)``,
    ``3 channels (FL+FR+LFE)``, ``ambisonic 1``); 0 when unknown."""
    layout = layout.strip()
    if layout in _LAYOUTS:
        return _LAYOUTS[layout]
    counted = _CHANNELS.match(layout)
    if counted:
        return int(counted[1])
    if layout.startswith("ambisonic "):
        order = layout.split()[1].split("+")[0]
        return (int(order) + 1) ** 2 if order.isdigit() else 0
    names = layout.split("+")
    if len(names) > 1 and all(n and n.replace("@", "").isalnum() for n in names):
        return len(names)
    return 0


def _split_fields(text: str) -> list[str]:
    """Split a stream description at its top-level commas (not those in brackets)."""
    parts, depth, start = [], 0, 0
    for i, char in enumerate(text):
        if char in "([":
            depth += 1
        elif char in ")]":
            depth = max(0, depth - 1)
        elif char == "," and depth == 0:
            parts.append(text[start:i].strip())
            start = i + 1
    parts.append(text[start:].strip())
    return parts


def _ffmpeg_log_text(raw: bytes) -> bytes:
    """``raw`` as FFmpeg's logger prints it: other control characters become ``?``."""
    return bytes(b if b >= 0x20 or 0x08 <= b <= 0x0D else 0x3F for b in raw)


def _header(stderr: bytes, url: str) -> tuple[str, bytes] | None:
    """The format name and the text after ``Input #N, FORMAT, from 'URL':``."""
    raw = os.fsencode(url)
    for name in (raw, _ffmpeg_log_text(raw)):
        end_marker = b", from '" + name + b"':\n"
        end = stderr.find(end_marker)
        if end < 0:
            continue
        start = stderr.rfind(b"Input #", 0, end)
        if start < 0 or (start and stderr[start - 1 : start] != b"\n"):
            continue
        index = _INPUT.match(stderr, start, end)
        if index is None:
            continue
        format_name = stderr[index.end() : end].decode("ascii", "replace")
        if _FORMAT_NAME.match(format_name):
            return format_name, stderr[end + len(end_marker) :]
    return None


def read_dump(stderr: bytes, url: str) -> Dump | None:
    """The description of input ``url`` in ffmpeg's standard error, or None if absent."""
    header = _header(stderr, url)
    if header is None:
        return None
    format_name, body = header
    dump = Dump(format_name, None, None, {}, [])
    stream: StreamDump | None = None
    section = "top"  # which entry indented lines belong to: "container-tags", "stream"
    for line in body.decode("utf-8", "replace").splitlines():
        if line.startswith("["):  # a log line from a component: not part of the dump
            continue
        if not line.startswith("  "):
            break
        indent = len(line) - len(line.lstrip(" "))
        if indent == 2:
            section = "other"
            described = _STREAM.match(line)
            if line == "  Metadata:" and stream is None:
                section = "container-tags"
            elif described:
                section = "stream"
                fields = _split_fields(described[3])
                stream = StreamDump(
                    kind=described[2],
                    codec=fields[0].split(" ", 1)[0] or "unknown",
                    fields=fields,
                    attached_pic="(attached pic)" in fields[-1],
                )
                dump.streams.append(stream)
            elif (duration := _DURATION.match(line)) and stream is None:
                if duration[1] is not None:
                    hours, minutes, seconds = duration[1], duration[2], duration[3]
                    dump.duration = int(hours) * 3600 + int(minutes) * 60 + float(seconds)
                if duration[4] is not None:
                    dump.bit_rate = int(duration[4]) * 1000
        elif indent == 4 and section == "container-tags":
            if tag := _CONTAINER_TAG.match(line):
                dump.tags.setdefault(tag[1], tag[2])
        elif indent == 6 and section == "stream" and stream is not None:
            if rotation := _ROTATION.match(line):
                stream.rotation = float(rotation[1])
            elif tag := _STREAM_TAG.match(line):
                stream.tags.setdefault(tag[1], tag[2])
    return dump


def error_reason(stderr: bytes, url: str) -> str:
    """Why ffmpeg could not open ``url``, from its last error line."""
    text = stderr.decode("utf-8", "replace")
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    for line in reversed(lines):
        match = _ERROR.search(line)
        if match:
            return match[1].strip().rstrip(".")
    for line in reversed(lines):
        if line.startswith(url + ": "):  # FFmpeg before 7: "URL: reason"
            return line[len(url) + 2 :].strip()
    return lines[-1][-200:] if lines else "ffmpeg said nothing"
