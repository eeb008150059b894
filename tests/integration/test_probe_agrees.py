"""The probe (ffmpeg's description of its input) agrees with PyAV on many real files.

Each case makes a small file with the bundled ffmpeg (containers, codecs, channel
layouts, rotations, pixel aspect ratios, frame rates, a cover picture) and compares the
probe with ``tests/pyav_oracle.py``, PyAV's reading through FFmpeg's own API, field by
field. ffmpeg prints durations to 10 ms, bitrates to 1 kbit/s and frame rates to 0.01:
those are compared within that; everything else exactly.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import replace

import pytest

from tests.clips import BASE, ENV, make_clip
from tests.pyav_oracle import pyav_probe
from transcoder_admin.media.probe import MediaInfo, NotMediaError, probe

pytestmark = pytest.mark.slow

V = ["-f", "lavfi", "-i", "testsrc2=size=176x144:rate=25:d=1"]
A = ["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:d=1"]
X264 = ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"]

#: name → ffmpeg arguments after the common ones (the output file comes last).
GENERATED: dict[str, list[str]] = {
    "mp4": [*V, *A, *X264, "-c:a", "aac"],
    "mov-qt": [*V, *A, *X264, "-c:a", "aac", "-f", "mov"],
    "m4a": [*A, "-c:a", "aac"],
    "3gp": [*V, *A, "-c:v", "h263", "-c:a", "aac", "-ar", "16000", "-ac", "1", "-f", "3gp"],
    "mkv": [*V, *A, *X264, "-c:a", "aac"],
    "webm-vp8-vorbis": [*V, *A, "-c:v", "libvpx", "-c:a", "libvorbis"],
    "webm-vp9-opus": [*V, *A, "-c:v", "libvpx-vp9", "-deadline", "realtime", "-c:a", "libopus"],
    "avi": [*V, *A, "-c:v", "mpeg4", "-c:a", "libmp3lame"],
    "ts": [*V, *A, *X264, "-c:a", "aac"],
    "mpg": [*V, *A, "-c:v", "mpeg2video", "-c:a", "mp2", "-f", "mpeg"],
    "flv": [*V, *A, *X264, "-c:a", "aac"],
    "wav": [*A, "-c:a", "pcm_s16le"],
    "flac": [*A, "-c:a", "flac"],
    "mp3": [*A, "-c:a", "libmp3lame"],
    "ogg": [*A, "-c:a", "libvorbis"],
    "aac": [*A, "-c:a", "aac", "-f", "adts"],
    "ac3": [*A, "-c:a", "ac3"],
    "aiff": [*A, "-c:a", "pcm_s16be"],
    "mxf": [*V, *A, "-c:v", "mpeg2video", "-c:a", "pcm_s16le", "-r", "25"],
    "dv": [
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=720x576:rate=25:d=1",
        *A,
        "-c:v",
        "dvvideo",
        "-pix_fmt",
        "yuv420p",
        "-c:a",
        "pcm_s16le",
        "-ac",
        "2",
        "-f",
        "dv",
    ],  # fmt: skip
    # PyAV reads DV's average frame rate as 60000 (ffmpeg: "60k fps, 25 tbr"): its time
    # base is 1/60000 and the demuxer knows no frame count. The probe takes the 25.
    "gif": [*V, "-c:v", "gif"],
    "video-only-mp4": [*V, *X264],
    "mono": [*A, "-c:a", "aac", "-ac", "1"],
    "stereo": [*V, *A, *X264, "-c:a", "aac", "-ac", "2"],
    "5.1": [*A, "-c:a", "aac", "-af", "pan=5.1|c0=c0|c1=c0|c2=c0|c3=c0|c4=c0|c5=c0"],
    "7.1-wav": [
        *A,
        "-c:a",
        "pcm_s16le",
        "-af",
        "pan=7.1|" + "|".join(f"c{i}=c0" for i in range(8)),
    ],
    "2.1-wav": [*A, "-c:a", "pcm_s16le", "-af", "pan=2.1|c0=c0|c1=c0|c2=c0"],
    "4-channels-wav": [*A, "-c:a", "pcm_s16le", "-ac", "4"],
    # Layouts without a name: ffmpeg prints "3 channels (FL+LFE+BR)".
    "custom-3ch-wav": [*A, "-c:a", "pcm_s16le", "-af", "pan=FL+LFE+BR|c0=c0|c1=c0|c2=c0"],
    "channelmap-3ch-caf": [
        *A,
        "-c:a",
        "pcm_s16le",
        "-af",
        "channelmap=map=0|0|0:channel_layout=FL+FR+TC",
    ],  # fmt: skip
    "5.1-side-ac3-mka": [
        *A,
        "-c:a",
        "ac3",
        "-af",
        "pan=5.1(side)|" + "|".join(f"c{i}=c0" for i in range(6)),
    ],
    "ntsc-30000-1001": [
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=176x144:rate=30000/1001:d=1",
        *X264,
    ],  # fmt: skip
    "film-24000-1001-mkv": [
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=176x144:rate=24000/1001:d=1",
        *X264,
    ],  # fmt: skip
    "50-fps": ["-f", "lavfi", "-i", "testsrc2=size=176x144:rate=50:d=1", *X264],
}
EXTENSIONS = {
    "mov-qt": "mov",
    "webm-vp8-vorbis": "webm",
    "webm-vp9-opus": "webm",
    "video-only-mp4": "mp4",
    "mono": "m4a",
    "5.1": "m4a",
    "7.1-wav": "wav",
    "2.1-wav": "wav",
    "4-channels-wav": "wav",
    "stereo": "mp4",
    "custom-3ch-wav": "wav",
    "channelmap-3ch-caf": "caf",
    "5.1-side-ac3-mka": "mka",
    "ntsc-30000-1001": "mp4",
    "film-24000-1001-mkv": "mkv",
    "50-fps": "mp4",
}
#: make_clip's own cases: rotations by display matrix and pixel aspect ratios.
MADE = {
    "rotated-90": {"rotate": 90},
    "rotated-180": {"rotate": 180},
    "rotated-270": {"rotate": 270, "fmt": "mov"},
    "anamorphic-16-15": {"sar": "16:15"},
    "anamorphic-64-45-mkv": {"sar": "64:45"},
}


def _make(folder: str, name: str) -> str:
    if name in MADE:
        ext = "mkv" if name.endswith("mkv") else "mp4"
        return make_clip(
            os.path.join(folder, f"{name}.{ext}"), duration=1.0, width=176, height=144,
            **MADE[name],
        )  # fmt: skip
    path = os.path.join(folder, f"{name}.{EXTENSIONS.get(name, name)}")
    argv = [*BASE, *GENERATED[name], "-t", "1", "file:" + path]
    subprocess.run(argv, check=True, env=ENV, capture_output=True, timeout=120)
    return path


def _cover_mp3(folder: str) -> str:
    """An MP3 with a cover picture (an attached picture, which is not the video)."""
    cover = os.path.join(folder, "cover.png")
    subprocess.run(
        [*BASE, "-f", "lavfi", "-i", "testsrc2=size=64x64", "-frames:v", "1", cover],
        check=True, env=ENV, capture_output=True, timeout=60,
    )  # fmt: skip
    path = os.path.join(folder, "cover.mp3")
    subprocess.run(
        [*BASE, *A, "-i", cover, "-map", "0", "-map", "1", "-c:a", "libmp3lame",
         "-c:v", "png", "-disposition:v", "attached_pic", "-t", "1", path],
        check=True, env=ENV, capture_output=True, timeout=60,
    )  # fmt: skip
    return path


def assert_agree(mine: MediaInfo, oracle: MediaInfo) -> None:
    """Field by field, within what ffmpeg prints."""
    assert mine.format_name == oracle.format_name
    assert mine.size == oracle.size
    assert mine.mime_type == oracle.mime_type
    if oracle.duration is None:
        assert mine.duration is None
    else:
        assert mine.duration == pytest.approx(oracle.duration, abs=0.011)
    if oracle.bit_rate is None:
        assert mine.bit_rate is None
    else:
        assert mine.bit_rate == pytest.approx(oracle.bit_rate, abs=1000)
    assert (mine.video is None) == (oracle.video is None)
    if mine.video and oracle.video:
        fps, oracle_fps = mine.video.fps, oracle.video.fps
        assert (fps is None) == (oracle_fps is None)
        if fps is not None and oracle_fps is not None:
            assert fps == pytest.approx(oracle_fps, abs=0.006)
        assert {**vars(mine.video), "fps": None} == {**vars(oracle.video), "fps": None}
    assert mine.audio == oracle.audio


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> str:
    return str(tmp_path_factory.mktemp("agree"))


@pytest.mark.parametrize("name", [*GENERATED, *MADE])
def test_the_probe_agrees_with_pyav(folder, name):
    path = _make(folder, name)
    mine, oracle = probe(path), pyav_probe(path)
    if name == "dv":  # where the probe is right and PyAV is not (see GENERATED)
        assert mine.video is not None and oracle.video is not None
        assert (mine.video.fps, oracle.video.fps) == (25.0, 60000.0)
        oracle = replace(oracle, video=replace(oracle.video, fps=25.0))
    assert_agree(mine, oracle)


def test_a_cover_picture_is_ignored_by_both(folder):
    path = _cover_mp3(folder)
    mine = probe(path)
    assert mine.video is None and mine.audio is not None
    assert_agree(mine, pyav_probe(path))


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("notes.txt", b"hello\nthis is not a video\n"),
        ("readme.nfo", b"plain text that FFmpeg's tty demuxer would accept\n"),
        ("list.ffconcat", b"ffconcat version 1.0\nfile 'mp4.mp4'\n"),
        ("live.m3u8", b"#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXTINF:1.0,\nts.ts\n#EXT-X-ENDLIST\n"),
        ("random.mp4", bytes(range(256)) * 16),
    ],
)
def test_what_is_not_media_is_refused_by_both(folder, name, content):
    """Text, playlists (next to the real clips they name) and noise: NotMediaError."""
    for real in ("mp4", "ts"):
        if not os.path.exists(os.path.join(folder, f"{real}.{real}")):
            _make(folder, real)
    path = os.path.join(folder, name)
    with open(path, "wb") as f:
        f.write(content)
    with pytest.raises(NotMediaError):
        probe(path)
    with pytest.raises(NotMediaError):
        pyav_probe(path)


def test_a_still_picture_is_refused_by_both(folder):
    """A single PNG picture is an image, not media."""
    path = os.path.join(folder, "still.png")
    subprocess.run(
        [*BASE, "-f", "lavfi", "-i", "testsrc2=size=64x64", "-frames:v", "1", path],
        check=True, env=ENV, capture_output=True, timeout=60,
    )  # fmt: skip
    with pytest.raises(NotMediaError):
        probe(path)
    with pytest.raises(NotMediaError):
        pyav_probe(path)
