"""Real ffmpeg and PyAV on generated clips: probing, transcoding, thumbnails, checks."""

from __future__ import annotations

import glob
import os
import subprocess
from fractions import Fraction

import av
import pytest

from tests.clips import FFMPEG, corrupt_clip, make_clip, truncate_clip
from transcoder_admin.media import (
    MediaInfo,
    NotMediaError,
    Progress,
    ProgressParser,
    command_environment,
    decode_check_command,
    decoded_enough,
    find_ffmpeg,
    probe,
    target_command,
    thumbnails_command,
)


def run(cmd: list[str]) -> tuple[int, list[Progress], str]:
    """Run an ffmpeg argv; return its exit code, progress values and stderr."""
    proc = subprocess.run(cmd, capture_output=True, env=command_environment(), timeout=120)
    return (
        proc.returncode,
        ProgressParser().feed(proc.stdout),
        proc.stderr.decode("utf-8", "replace"),
    )


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> dict[str, str]:
    """Tiny clips shared by the module's tests, generated once."""
    d = tmp_path_factory.mktemp("clips")
    small = {"duration": 1.0, "width": 160, "height": 120}
    good_mkv = make_clip(str(d / "good.mkv"), duration=2.0, width=160, height=120)
    good_ts = make_clip(str(d / "good.ts"), duration=2.0, width=160, height=120)
    return {
        "dir": str(d),
        "src": make_clip(str(d / "src.mp4"), rate=44100, **small),
        "silent": make_clip(str(d / "silent.mp4"), audio=False, **small),
        "rotated": make_clip(str(d / "rotated.mp4"), rotate=90, **small),
        "anamorphic": make_clip(str(d / "anamorphic.mkv"), sar="4:3", **small),
        "good_mkv": good_mkv,
        "good_ts": good_ts,
        "corrupt_ts": corrupt_clip(good_ts, str(d / "corrupt.ts")),
        "truncated_mkv": truncate_clip(good_mkv, str(d / "truncated.mkv"), 0.5),
    }


def test_probe_clip(clips):
    """A generated clip probes with its duration, size, codecs, rate and MIME type."""
    info = probe(clips["src"])
    assert info.duration == pytest.approx(1.0, abs=0.05)
    assert info.size == os.path.getsize(clips["src"])
    assert info.mime_type == "video/mp4"
    assert info.video is not None and info.audio is not None
    assert (info.video.codec, info.video.width, info.video.height) == ("h264", 160, 120)
    assert (info.video.display_width, info.video.display_height) == (160, 120)
    assert info.video.sar == 1 and info.video.rotation == 0 and info.video.fps == 25.0
    assert (info.audio.codec, info.audio.rate, info.audio.channels) == ("aac", 44100, 1)
    data = info.to_dict()
    assert data["video"]["sar"] == "1:1" and data["audio"]["rate"] == 44100


def test_probe_without_audio(clips):
    """A clip without audio has video info and no audio info."""
    info = probe(clips["silent"])
    assert info.video is not None and info.audio is None


def test_an_apple_core_audio_file_has_its_mime_type(tmp_path):
    """A .caf (Core Audio Format, which Python's mimetypes does not know) is audio/x-caf,
    not application/octet-stream in its report and diagnosis."""
    path = str(tmp_path / "take.caf")
    subprocess.run(
        [FFMPEG, "-v", "error", "-f", "lavfi", "-i", "sine=d=0.5", "-c:a", "pcm_s16le", path],
        check=True,
    )
    info = probe(path)
    assert info.mime_type == "audio/x-caf" and info.audio is not None


def test_probe_rotation(clips):
    """A display-matrix rotation is reported and the display size swapped."""
    video = probe(clips["rotated"]).video
    assert video is not None
    assert (video.width, video.height, video.rotation) == (160, 120, 90)
    assert (video.display_width, video.display_height) == (120, 160)


def test_probe_pixel_aspect(clips):
    """A 4:3 SAR is reported and widens the display size."""
    info = probe(clips["anamorphic"])
    assert info.mime_type == "video/x-matroska"
    assert info.video is not None and info.video.sar == Fraction(4, 3)
    assert (info.video.display_width, info.video.display_height) == (213, 120)
    assert info.to_dict()["video"]["sar"] == "4:3"


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("notes.txt", b"hello\nthis is not a video\n"),
        ("readme.nfo", b"plain text that FFmpeg's tty demuxer would accept\n"),
        ("empty.mp4", b""),
        ("random.mp4", os.urandom(4096)),
        ("random.bin", bytes(range(256)) * 64),
    ],
)
def test_not_media(tmp_path, name, content):
    """Text, empty and random files raise NotMediaError with a readable reason."""
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(NotMediaError, match="^not a media file: "):
        probe(str(path))


@pytest.mark.parametrize("ext", ["jpg", "png"])
def test_still_image_is_not_media(tmp_path, ext):
    """A single JPEG or PNG picture is not media."""
    path = str(tmp_path / f"still.{ext}")
    subprocess.run(
        [FFMPEG, "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=64x48", "-frames:v", "1", path],
        check=True,
    )
    with pytest.raises(NotMediaError, match="still image"):
        probe(path)


def test_missing_file_is_not_not_media(tmp_path):
    """A missing file is an OSError (a system problem), not NotMediaError."""
    with pytest.raises(FileNotFoundError):
        probe(str(tmp_path / "gone.mp4"))


COMBINATIONS = [
    # (muxer, ext, type, video codec, audio codec, expected video, expected audio)
    ("mp4", "mp4", "audio-video", "libx264", "aac", "h264", "aac"),
    ("mov", "mov", "audio-video", "libx265", "aac", "hevc", "aac"),
    ("matroska", "mkv", "audio-video", "libsvtav1", "libopus", "av1", "opus"),
    ("webm", "webm", "audio-video", "libvpx-vp9", "libopus", "vp9", "opus"),
    ("webm", "webm", "audio-video", "libaom-av1", "libvorbis", "av1", "vorbis"),
    ("mp4", "mp4", "video", "libvpx-vp9", None, "vp9", None),
    ("ogg", "ogg", "audio", None, "libvorbis", None, "vorbis"),
    ("ogg", "opus", "audio", None, "libopus", None, "opus"),
    ("mp3", "mp3", "audio", None, "libmp3lame", None, "mp3"),
    ("ipod", "m4a", "audio", None, "aac", None, "aac"),
]


@pytest.mark.parametrize(
    ("muxer", "ext", "kind", "vcodec", "acodec", "want_video", "want_audio"),
    COMBINATIONS,
    ids=[f"{c[2]}-{c[0]}-{c[3] or ''}-{c[4] or ''}" for c in COMBINATIONS],
)
def test_transcode_combinations(clips, muxer, ext, kind, vcodec, acodec, want_video, want_audio):
    """Each codec/container combination transcodes into the expected streams and size."""
    info = probe(clips["src"])
    spec = {
        "type": kind,
        "muxer": muxer,
        "video": {"codec": vcodec, "width": 96},
        "audio": {"codec": acodec, "bitrate": 64},
    }
    out = os.path.join(clips["dir"], f"out-{kind}-{vcodec}-{acodec}.{ext}")
    code, progress, stderr = run(target_command(FFMPEG, clips["src"], out, spec, info))
    assert code == 0, stderr
    assert stderr == ""
    assert progress and progress[-1].finished
    result = probe(out)
    assert result.duration == pytest.approx(1.0, abs=0.1)
    if want_video:
        assert result.video is not None
        assert (result.video.codec, result.video.width, result.video.height) == (want_video, 96, 72)
    else:
        assert result.video is None
    if want_audio:
        assert result.audio is not None and result.audio.codec == want_audio
        if want_audio == "opus":
            assert result.audio.rate == 48000
    else:
        assert result.audio is None


def test_rotated_source_comes_out_upright(clips):
    """A source rotated 90° becomes an upright portrait picture without rotation."""
    info = probe(clips["rotated"])
    out = os.path.join(clips["dir"], "upright.mp4")
    spec = {"type": "video", "muxer": "mp4", "video": {"codec": "libx264", "height": 80}}
    code, _, stderr = run(target_command(FFMPEG, clips["rotated"], out, spec, info))
    assert code == 0, stderr
    video = probe(out).video
    assert video is not None
    assert (video.width, video.height, video.rotation) == (60, 80, 0)


def test_anamorphic_source_gets_square_pixels(clips):
    """A 4:3-SAR source becomes square pixels with the same display aspect."""
    info = probe(clips["anamorphic"])
    out = os.path.join(clips["dir"], "square.mp4")
    spec = {"type": "video", "muxer": "mp4", "video": {"codec": "libx264"}}
    code, _, stderr = run(target_command(FFMPEG, clips["anamorphic"], out, spec, info))
    assert code == 0, stderr
    video = probe(out).video
    assert video is not None and video.sar == 1
    assert video.width / video.height == pytest.approx(160 * 4 / 3 / 120, rel=0.02)


def test_letterbox_output(clips):
    """Width and height both set give exactly that frame, padded, never stretched."""
    info = probe(clips["src"])
    out = os.path.join(clips["dir"], "boxed.mkv")
    spec = {
        "type": "video",
        "muxer": "matroska",
        "video": {"codec": "libx264", "width": 160, "height": 160},
    }
    code, _, stderr = run(target_command(FFMPEG, clips["src"], out, spec, info))
    assert code == 0, stderr
    video = probe(out).video
    assert video is not None and (video.width, video.height, video.sar) == (160, 160, 1)


def test_hostile_file_names(tmp_path, clips):
    """Sources and outputs with shell metacharacters and a leading dash just work."""
    name = "-x ;$(touch pwned) 'q\"\n é:b.mp4"
    src = str(tmp_path / name)
    os.link(clips["src"], src)
    out = str(tmp_path / ("out " + name))
    spec = {
        "type": "audio-video",
        "muxer": "mp4",
        "video": {"codec": "libx264"},
        "audio": {"codec": "aac"},
    }
    code, _, stderr = run(target_command(FFMPEG, src, out, spec, probe(src)))
    assert code == 0, stderr
    assert probe(out).video is not None
    assert not os.path.exists("pwned") and not (tmp_path / "pwned").exists()


def test_a_name_that_mimics_ffmpeg_s_description_does_not_fool_the_probe(tmp_path, clips):
    """ffmpeg prints the file's name in its description: a name holding newlines and a
    fake duration and stream is read as the name, not as the description."""
    name = "a':\n  Duration: 10:00:00.00, start: 0.0\n  Stream #0:0: Video: h264, 9x9.mp4"
    src = str(tmp_path / name)
    os.link(clips["src"], src)
    info = probe(src)
    assert info.duration == pytest.approx(1.0, abs=0.05)
    assert info.video is not None and (info.video.width, info.video.height) == (160, 120)


def test_a_file_with_a_quarter_megabyte_of_tags_is_described(tmp_path, clips):
    """FFmpeg prints a file's tags before its duration and streams: thousands of them
    (lyrics, long descriptions) still leave the streams to be read."""
    meta = tmp_path / "tags.txt"
    meta.write_text(";FFMETADATA1\n" + "".join(f"tag{i}=" + "x" * 40 + "\n" for i in range(6000)))
    path = str(tmp_path / "tagged.mkv")
    subprocess.run(
        [FFMPEG, "-v", "error", "-i", clips["src"], "-f", "ffmetadata", "-i", str(meta),
         "-map", "0", "-map_metadata", "1", "-c", "copy", path],
        check=True,
    )  # fmt: skip
    described = subprocess.run(
        [FFMPEG, "-hide_banner", "-i", path], capture_output=True, check=False
    ).stderr
    assert len(described) > 250_000  # the tags come first, and they are long
    info = probe(path)
    assert info.video is not None and info.audio is not None
    assert info.duration == pytest.approx(1.0, abs=0.05)


def image_size(path: str) -> tuple[int, int]:
    """The pixel size of an image file (read with PyAV)."""
    with av.open(path) as container:
        stream = container.streams.video[0]
        return stream.width, stream.height


@pytest.mark.parametrize(
    ("settings", "count"),
    [
        ({"unit": "frames", "interval": 10, "max_count": 10}, 3),  # frames 0, 10, 20
        ({"unit": "seconds", "interval": 0.25, "max_count": 10}, 4),
        ({"unit": "percent", "interval": 20, "max_count": 10}, 5),
        ({"unit": "seconds", "interval": 0.1, "max_count": 3}, 3),  # capped
        ({"unit": "frames", "interval": 1, "max_count": 2, "format": "png", "width": 81}, 2),
    ],
)
def test_thumbnails(tmp_path, clips, settings, count):
    """Thumbnails are sampled at the interval, capped at max_count, numbered from 1."""
    info = probe(clips["src"])
    fmt = settings.get("format", "jpeg")
    ext = "png" if fmt == "png" else "jpg"
    pattern = str(tmp_path / f"thumb.%d.{ext}")
    spec = {"type": "thumbnails", "muxer": None, "thumbnails": settings}
    code, _, stderr = run(thumbnails_command(FFMPEG, clips["src"], pattern, spec, info))
    assert code == 0, stderr
    files = sorted(glob.glob(str(tmp_path / f"thumb.*.{ext}")))
    assert [os.path.basename(f) for f in files] == [f"thumb.{i}.{ext}" for i in range(1, count + 1)]
    expected = (81, 61) if settings.get("width") == 81 else (160, 120)
    assert image_size(files[0]) == expected


def test_thumbnail_size_letterboxed(tmp_path, clips):
    """Thumbnails with width and height are exactly that size."""
    info = probe(clips["src"])
    pattern = str(tmp_path / "t.%d.jpg")
    spec = {
        "type": "thumbnails",
        "thumbnails": {"interval": 1, "max_count": 1, "width": 99, "height": 99},
    }
    code, _, stderr = run(thumbnails_command(FFMPEG, clips["src"], pattern, spec, info))
    assert code == 0, stderr
    assert image_size(str(tmp_path / "t.1.jpg")) == (99, 99)


@pytest.mark.parametrize("name", ["good_mkv", "good_ts", "src"])
def test_decode_check_passes_good_clip(clips, name):
    """A good clip decodes fully: exit 0, nothing on stderr, the whole duration decoded."""
    code, progress, stderr = run(decode_check_command(FFMPEG, clips[name]))
    assert (code, stderr) == (0, "")
    assert progress[-1].finished
    duration = probe(clips[name]).duration
    assert progress[-1].out_time == pytest.approx(duration or 0, abs=0.1)
    assert decoded_enough(progress[-1].out_time, duration)


def test_decode_check_fails_corrupt_clip(clips):
    """Garbage in the middle of an MPEG-TS clip makes the decode check exit non-zero."""
    assert isinstance(probe(clips["corrupt_ts"]), MediaInfo)  # a probe alone is fooled
    code, _, stderr = run(decode_check_command(FFMPEG, clips["corrupt_ts"]))
    assert code != 0
    assert "corrupt" in stderr


@pytest.mark.parametrize("seed", [1, 2])
def test_decode_check_rejects_corrupt_mkv(clips, seed):
    """A corrupt mkv fails either by exit code or by decoding short of its duration.

    Depending on where the garbage lands, the Matroska demuxer either hands garbage to
    the decoder (non-zero exit) or gives up silently as at end of file (exit 0).
    """
    path = corrupt_clip(clips["good_mkv"], os.path.join(clips["dir"], f"c{seed}.mkv"), seed)
    duration = probe(path).duration
    code, progress, _ = run(decode_check_command(FFMPEG, path))
    decoded = progress[-1].out_time if progress else None
    assert code != 0 or not decoded_enough(decoded, duration)


def test_decode_check_on_truncated_mkv_needs_duration_comparison(clips):
    """A truncated mkv probes with its full duration and decodes with exit 0, but short.

    ffmpeg only warns "File ended prematurely": the caller must compare the decoded
    time with the probed duration to reject it.
    """
    info = probe(clips["truncated_mkv"])
    assert info.duration == pytest.approx(2.0, abs=0.1)  # from the header, not the data
    code, progress, stderr = run(decode_check_command(FFMPEG, clips["truncated_mkv"]))
    assert code == 0
    assert "File ended prematurely" in stderr
    assert progress[-1].out_time < 0.75 * info.duration
    assert not decoded_enough(progress[-1].out_time, info.duration)


def test_find_ffmpeg_runs():
    """The ffmpeg found by default runs and has the encoders the targets use."""
    proc = subprocess.run(
        [find_ffmpeg(), "-hide_banner", "-encoders"], capture_output=True, check=True
    )
    for encoder in (b"libx264", b"libx265", b"libvpx-vp9", b"libsvtav1", b"libaom-av1", b"libopus"):
        assert encoder in proc.stdout
