"""The small values of a configuration: codec and muxer names, bitrates, subdirs, and
the base every section is built on (frozen, unknown keys refused, dashed keys)."""

from __future__ import annotations

import functools
import math
import re
import unicodedata
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
)

VIDEO_CODECS = {
    "h264": "libx264",
    "libx264": "libx264",
    "hevc": "libx265",
    "h265": "libx265",
    "libx265": "libx265",
    "vp9": "libvpx-vp9",
    "libvpx-vp9": "libvpx-vp9",
    "av1": "libsvtav1",
    "libsvtav1": "libsvtav1",
    "libaom-av1": "libaom-av1",
}
AUDIO_CODECS = {
    "aac": "aac",
    "opus": "libopus",
    "libopus": "libopus",
    "mp3": "libmp3lame",
    "libmp3lame": "libmp3lame",
    "vorbis": "libvorbis",
    "libvorbis": "libvorbis",
}
# container name -> ffmpeg muxer
MUXERS = {
    "mp4": "mp4",
    "mov": "mov",
    "mkv": "matroska",
    "matroska": "matroska",
    "webm": "webm",
    "ogg": "ogg",
    "mp3": "mp3",
    "m4a": "ipod",
    "ipod": "ipod",
}
TARGET_TYPES = ("audio-video", "video", "audio", "thumbnails", "identity", "qmaster")
FOLDER_KEYS = (
    "incoming",
    "outgoing",
    "done",
    "failed",
    "links",
    "work",
    "config",
    "done-reports",
    "failed-reports",
)


def _dash(name: str) -> str:
    return name.replace("_", "-")


#: An explicit ``subdir``: one folder name in the form the default (the name made
#: path-safe) has, so that a subdir is never rewritten and folders never differ by case
#: alone (case-insensitive filesystems of SMB shares and Macs).
_UNSAFE = re.compile(r"[^a-z0-9._-]+")
SUBDIR = re.compile(r"[a-z0-9_](?:[a-z0-9._-]{0,253}[a-z0-9_])?")
SUBDIR_FORM = (
    "a subdir is one folder name: lowercase letters, digits, '.', '_' or '-', "
    "not starting or ending with '.' or '-', at most 255 characters"
)


@functools.lru_cache(maxsize=4096)  # config names, asked for by every job's folders
def safe_name(name: str) -> str:
    """A lowercased, path-safe folder name: letters, digits, ``.``, ``_`` and ``-``."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    cleaned = _UNSAFE.sub("-", ascii_name.lower()).strip("-.")
    return cleaned or "_"


def _subdir(value: str) -> str:
    """An explicit subdir as given, or ValueError naming the allowed form."""
    if SUBDIR.fullmatch(value):
        return value
    hint = safe_name(value)
    # A hint for a name in another form ("Web", "my web"), none for a path ("../x").
    plain = "/" not in value and "\x00" not in value and hint != "_" and len(hint) <= 255
    suggestion = f" (such as {hint!r})" if plain else ""
    raise ValueError(SUBDIR_FORM + suggestion)


Subdir = Annotated[str, AfterValidator(_subdir)]

_BITRATE = re.compile(r"([0-9]+(?:\.[0-9]*)?|\.[0-9]+)([kKM]?)")
_BITRATE_UNIT = {"": 1, "k": 1, "K": 1, "M": 1000}
BITRATE_FORMS = "kbit/s as a whole number (128), or ffmpeg's form with k or M (96k, 2500k, 2.5M)"


def bitrate_kbits(value: Any, maximum: float) -> int | float:
    """A bitrate in kbit/s from the config: ``128`` (kbit/s), ``96k``, ``2.5M``.

    A bare number stays kbit/s as it always was (unlike ffmpeg, where it is bit/s);
    the suffixes are ffmpeg's (k = 1000, M = 1000000 bit/s).  Whole numbers come back
    as ``int``.
    """
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ValueError(f"expected {BITRATE_FORMS}")
    if isinstance(value, (int, float)):
        if isinstance(value, float) and not value.is_integer():
            raise ValueError(f"a bare number is whole kbit/s; expected {BITRATE_FORMS}")
        number = float(value)
    else:
        match = _BITRATE.fullmatch(value.strip())
        if not match:
            raise ValueError(f"expected {BITRATE_FORMS}")
        text, unit = match.groups()
        if not unit and not text.isdigit():
            raise ValueError(f"a bare number is whole kbit/s; expected {BITRATE_FORMS}")
        number = float(text) * _BITRATE_UNIT[unit]
    if not math.isfinite(number) or not 1 <= number <= maximum:
        raise ValueError(
            f"must be between 1 and {maximum:.0f} kbit/s (a bare number is kbit/s); "
            f"expected {BITRATE_FORMS}"
        )
    # Whole bit/s: what ffmpeg can be told exactly.
    kbits = round(number * 1000) / 1000
    return int(kbits) if kbits.is_integer() else kbits


class Section(BaseModel):
    """Base of every configuration section: frozen, unknown keys refused."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        alias_generator=_dash,
        populate_by_name=True,
    )


PositiveInt = Annotated[int, Field(gt=0)]
PositiveFloat = Annotated[float, Field(gt=0)]
Priority = Annotated[int, Field(ge=0, le=999)]
Nice = Annotated[int, Field(ge=-20, le=19)]
VideoCodec = Literal[
    "h264", "libx264", "hevc", "h265", "libx265", "vp9", "libvpx-vp9",
    "av1", "libsvtav1", "libaom-av1",
]  # fmt: skip
AudioCodec = Literal[
    "aac", "opus", "libopus", "mp3", "libmp3lame", "vorbis", "libvorbis",
]  # fmt: skip
Muxer = Literal["mp4", "mov", "mkv", "matroska", "webm", "ogg", "mp3", "m4a", "ipod"]
#: Upper bounds that catch a bit/s value written where kbit/s is meant (``128000``).
MAX_VIDEO_KBITS = 1_000_000
MAX_AUDIO_KBITS = 4_000
VideoBitrate = Annotated[
    int | float | None,
    BeforeValidator(lambda v: None if v is None else bitrate_kbits(v, MAX_VIDEO_KBITS)),
]
AudioBitrate = Annotated[
    int | float | None,
    BeforeValidator(lambda v: None if v is None else bitrate_kbits(v, MAX_AUDIO_KBITS)),
]
