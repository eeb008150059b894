"""ffmpeg argv building: prefixes, codec and container options, sizes, hostile names."""

from __future__ import annotations

import os
import stat
from fractions import Fraction

import pytest

from transcoder_admin.config.model import AudioSettings, VideoSettings
from transcoder_admin.media.ffmpeg import (
    COMMON,
    decode_check_command,
    decoded_enough,
    find_ffmpeg,
    input_arg,
    target_command,
    target_settings,
    thumbnails_command,
)
from transcoder_admin.media.probe import AudioInfo, MediaInfo, VideoInfo

FF = "/opt/ffmpeg"
VIDEO = VideoInfo("h264", 1920, 1080, Fraction(1), 0, 25.0)
AUDIO = AudioInfo("aac", 44100, 2)
INFO = MediaInfo("mov,mp4,m4a,3gp,3g2,mj2", 10.0, 1000, 800000, VIDEO, AUDIO, "video/mp4")


def spec(kind="audio-video", muxer="mp4", video=None, audio=None, thumbnails=None) -> dict:
    """A target spec shaped like TargetContext.media_spec()."""
    result = {
        "name": "t",
        "type": kind,
        "muxer": muxer,
        "video": {"codec": "libx264", **(video or {})},
        "audio": {"codec": "aac", **(audio or {})},
    }
    if thumbnails is not None:
        result["thumbnails"] = thumbnails
    return result


def option(cmd: list[str], name: str) -> str | None:
    """The value following option ``name`` in ``cmd`` (the last one), or None."""
    values = [cmd[i + 1] for i, arg in enumerate(cmd[:-1]) if arg == name]
    return values[-1] if values else None


def has_sequence(cmd: list[str], *args: str) -> bool:
    """Whether ``args`` appear consecutively in ``cmd``."""
    n = len(args)
    return any(tuple(cmd[i : i + n]) == args for i in range(len(cmd) - n + 1))


def test_common_prefix_everywhere():
    """Every command starts with ffmpeg and the quiet, progress-reporting options."""
    thumbs = spec("thumbnails", None, thumbnails={"interval": 1, "unit": "seconds"})
    for cmd in (
        target_command(FF, "/in/a.mov", "/out/a.mp4", spec(), INFO),
        thumbnails_command(FF, "/in/a.mov", "/out/a.%d.jpg", thumbs, INFO),
        decode_check_command(FF, "/in/a.mov"),
    ):
        assert cmd[: len(COMMON) + 1] == [FF, *COMMON]
        assert cmd[1:9] == [
            "-hide_banner",
            "-nostdin",
            "-y",
            "-v",
            "error",
            "-progress",
            "pipe:1",
            "-nostats",
        ]
        assert option(cmd, "-i") == "file:/in/a.mov"


def test_input_arg_is_absolute_file_url(tmp_path, monkeypatch):
    """Relative names, leading dashes and colons become file: + absolute path."""
    monkeypatch.chdir(tmp_path)
    assert input_arg("-y") == f"file:{tmp_path}/-y"
    assert input_arg("http:x.mp4") == f"file:{tmp_path}/http:x.mp4"
    assert input_arg("/a/b.mp4") == "file:/a/b.mp4"


def test_output_has_file_prefix_and_muxer():
    """The output is the last argument, prefixed, after the requested muxer."""
    cmd = target_command(FF, "/in/a.mov", "/out/a.mp4", spec(muxer="matroska"), INFO)
    assert cmd[-1] == "file:/out/a.mp4"
    assert option(cmd, "-f") == "matroska"


@pytest.mark.parametrize(
    ("codec", "expected"),
    [
        ("libx264", [("-preset", "veryfast")]),
        (
            "libx265",
            [("-preset", "veryfast"), ("-x265-params", "log-level=error"), ("-tag:v", "hvc1")],
        ),
        (
            "libvpx-vp9",
            [
                ("-deadline", "realtime"),
                ("-cpu-used", "8"),
                ("-row-mt", "1"),
                ("-crf", "32"),
                ("-b:v", "0"),
            ],
        ),
        ("libsvtav1", [("-preset", "10")]),
        (
            "libaom-av1",
            [("-usage", "realtime"), ("-cpu-used", "8"), ("-row-mt", "1"), ("-b:v", "0")],
        ),
    ],
)
def test_video_codec_defaults(codec, expected):
    """Each video encoder gets fast defaults, yuv420p and its own option names."""
    cmd = target_command(FF, "/in/a.mov", "/out/a.mp4", spec(video={"codec": codec}), INFO)
    assert option(cmd, "-c:v") == codec
    assert option(cmd, "-pix_fmt") == "yuv420p"
    for name, value in expected:
        assert option(cmd, name) == value, name


@pytest.mark.parametrize(
    ("video", "expected", "absent"),
    [
        ({"bitrate": 800}, {"-b:v": "800k", "-maxrate": "1200k", "-bufsize": "1600k"}, ["-crf"]),
        ({"crf": 20}, {"-crf": "20"}, ["-b:v", "-maxrate"]),
        ({"crf": 20, "bitrate": 800}, {"-crf": "20", "-maxrate": "800k"}, ["-b:v"]),
        ({"crf": 60}, {"-crf": "51"}, []),
        ({"preset": "slow"}, {"-preset": "slow"}, []),
        ({"codec": "libsvtav1", "preset": "medium"}, {"-preset": "8"}, []),
        ({"codec": "libsvtav1", "preset": "slow"}, {"-preset": "4"}, []),
        ({"codec": "libsvtav1", "preset": "6"}, {"-preset": "6"}, []),
        ({"codec": "libsvtav1", "bitrate": 500}, {"-b:v": "500k"}, ["-maxrate", "-crf"]),
        (
            {"codec": "libsvtav1", "crf": 30, "bitrate": 500},
            {"-crf": "30", "-maxrate": "500k"},
            ["-b:v"],
        ),
        ({"codec": "libvpx-vp9", "bitrate": 500}, {"-b:v": "500k"}, ["-crf"]),
        ({"codec": "libvpx-vp9", "preset": "medium"}, {"-deadline": "good", "-cpu-used": "2"}, []),
        ({"codec": "libaom-av1", "crf": 28}, {"-crf": "28", "-b:v": "0"}, []),
        ({"framerate": 30}, {"-r": "30"}, []),
        ({"framerate": 29.97}, {"-r": "29.97"}, []),
    ],
)
def test_video_rate_options(video, expected, absent):
    """Bitrate, crf, preset and frame rate map to each encoder's options."""
    cmd = target_command(FF, "/in/a.mov", "/out/a.mkv", spec(muxer="matroska", video=video), INFO)
    for name, value in expected.items():
        assert option(cmd, name) == value, name
    for name in absent:
        assert name not in cmd, name


@pytest.mark.parametrize(
    ("video_rate", "audio_rate", "b_v", "maxrate", "b_a"),
    [
        ("2.5M", "96k", "2500k", "3750k", "96k"),
        ("2500k", 128, "2500k", "3750k", "128k"),
        (800, "96.5k", "800k", "1200k", "96500"),
        ("1.2345M", "0.5M", "1234500", "1851750", "500k"),
    ],
)
def test_configured_bitrates_reach_ffmpeg_in_its_own_form(
    video_rate, audio_rate, b_v, maxrate, b_a
):
    """`2.5M`, `96k` and bare kbit/s from the config become ffmpeg's rates, exactly."""
    video = VideoSettings.model_validate({"bitrate": video_rate}).model_dump(exclude_none=True)
    audio = AudioSettings.model_validate({"bitrate": audio_rate}).model_dump(exclude_none=True)
    target = spec(video=video, audio=audio)
    cmd = target_command(FF, "/in/a.mov", "/out/a.mp4", target, INFO)
    assert (option(cmd, "-b:v"), option(cmd, "-maxrate"), option(cmd, "-b:a")) == (
        b_v,
        maxrate,
        b_a,
    )
    settings = target_settings(target)
    assert (settings["video"]["bitrate"], settings["audio"]["bitrate"]) == (b_v, b_a)


def test_report_settings_name_only_the_streams_a_target_makes():
    """An audio target reports audio settings; thumbnails and copies report none."""
    assert set(target_settings(spec("audio", "ipod", audio={"bitrate": 64}))) == {"audio"}
    assert target_settings(spec("thumbnails", None)) == {}
    assert target_settings(spec("identity", None)) == {}


@pytest.mark.parametrize(
    ("audio", "source_audio", "expected", "absent"),
    [
        ({"codec": "aac", "bitrate": 128}, AUDIO, {"-c:a": "aac", "-b:a": "128k"}, ["-ar", "-ac"]),
        ({"codec": "libopus"}, AUDIO, {"-c:a": "libopus", "-ar": "48000"}, []),
        ({"codec": "libopus", "rate": 44100}, AUDIO, {"-ar": "48000"}, []),
        ({"codec": "libopus", "rate": 24000}, AUDIO, {"-ar": "24000"}, []),
        ({"codec": "libmp3lame", "rate": 96000}, AUDIO, {"-c:a": "libmp3lame", "-ar": "48000"}, []),
        ({"codec": "libmp3lame"}, AudioInfo("ac3", 48000, 6), {"-ac": "2"}, ["-ar"]),
        (
            {"codec": "libvorbis", "rate": 22050, "channels": 1},
            AUDIO,
            {"-ar": "22050", "-ac": "1"},
            [],
        ),
    ],
)
def test_audio_options(audio, source_audio, expected, absent):
    """Each audio encoder gets its codec, bitrate, a compatible rate and channels."""
    info = MediaInfo("x", 1.0, 1, None, None, source_audio, "audio/x")
    cmd = target_command(FF, "/in/a.wav", "/out/a.ogg", spec("audio", "ogg", audio=audio), info)
    for name, value in expected.items():
        assert option(cmd, name) == value, name
    for name in absent:
        assert name not in cmd, name


@pytest.mark.parametrize(
    ("muxer", "faststart"),
    [
        ("mp4", True),
        ("mov", True),
        ("ipod", True),
        ("matroska", False),
        ("webm", False),
        ("ogg", False),
        ("mp3", False),
    ],
)
def test_containers(muxer, faststart):
    """The muxer is forced with -f; MP4-family outputs are made streamable."""
    kind = "audio" if muxer in ("ogg", "mp3", "ipod") else "audio-video"
    cmd = target_command(FF, "/in/a.mov", "/out/a.x", spec(kind, muxer), INFO)
    assert option(cmd, "-f") == muxer
    assert has_sequence(cmd, "-movflags", "+faststart") == faststart


def test_hevc_tag_only_in_mp4_family():
    """The hvc1 tag Apple players need is set for MP4/MOV, not Matroska."""
    mkv = target_command(FF, "/a", "/b", spec(muxer="matroska", video={"codec": "libx265"}), INFO)
    assert "-tag:v" not in mkv


def test_stream_selection_per_type():
    """audio-video maps both; video drops audio; audio drops video and cover art."""
    av_cmd = target_command(FF, "/a", "/b", spec("audio-video"), INFO)
    assert has_sequence(av_cmd, "-map", "0:V:0") and has_sequence(av_cmd, "-map", "0:a:0")
    video_cmd = target_command(FF, "/a", "/b", spec("video"), INFO)
    assert "-an" in video_cmd and "0:a:0" not in video_cmd and "-c:a" not in video_cmd
    audio_cmd = target_command(FF, "/a", "/b", spec("audio", "ipod"), INFO)
    assert "-vn" in audio_cmd and "0:V:0" not in audio_cmd and "-c:v" not in audio_cmd


def test_audio_video_without_source_audio():
    """A source without audio gets no audio mapping or options, only -an."""
    info = MediaInfo("x", 1.0, 1, None, VIDEO, None, "video/mp4")
    cmd = target_command(FF, "/a", "/b", spec(), info)
    assert "-an" in cmd and "-c:a" not in cmd and "0:a:0" not in cmd


def test_impossible_targets_refused():
    """Identity targets and targets whose stream the source lacks raise ValueError."""
    with pytest.raises(ValueError):
        target_command(FF, "/a", "/b", spec("identity"), INFO)
    no_video = MediaInfo("x", 1.0, 1, None, None, AUDIO, "audio/mpeg")
    with pytest.raises(ValueError):
        target_command(FF, "/a", "/b", spec("video"), no_video)
    no_audio = MediaInfo("x", 1.0, 1, None, VIDEO, None, "video/mp4")
    with pytest.raises(ValueError):
        target_command(FF, "/a", "/b", spec("audio"), no_audio)


def test_scaling_uses_display_size():
    """A rotated anamorphic source is scaled from its display size to square pixels."""
    video = VideoInfo("h264", 720, 576, Fraction(16, 15), 90, 25.0)
    info = MediaInfo("x", 1.0, 1, None, video, AUDIO, "video/mp4")
    cmd = target_command(FF, "/a", "/b", spec(video={"height": 384}), info)
    assert option(cmd, "-vf") == "scale=288:384,setsar=1"


def test_letterbox_filters():
    """Width and height both given pad the scaled picture into the frame."""
    cmd = target_command(FF, "/a", "/b", spec(video={"width": 640, "height": 480}), INFO)
    assert option(cmd, "-vf") == "scale=640:360,setsar=1,pad=640:480:(ow-iw)/2:(oh-ih)/2"


def test_requested_pixel_aspect_ratio():
    """A 16:15 output PAR stores a 4:3 display as 720x576 with that SAR."""
    video = VideoInfo("h264", 768, 576, Fraction(1), 0, 25.0)
    info = MediaInfo("x", 1.0, 1, None, video, AUDIO, "video/mp4")
    cmd = target_command(FF, "/a", "/b", spec(video={"pixel_aspect_ratio": "16:15"}), info)
    assert option(cmd, "-vf") == "scale=720:576,setsar=16/15"


HOSTILE = [
    "with space.mov",
    "quote'single.mov",
    'quote"double.mov',
    "$(rm -rf ~).mov",
    "semi;colon.mov",
    "new\nline.mov",
    "-leading-dash.mov",
    "ünïcødé 日本.mov",
    "proto:col.mov",
    "back\\slash`tick`.mov",
]


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_names_are_single_arguments(name):
    """Hostile file names are single argv elements, unchanged after file:."""
    src, out = "/in/" + name, "/out/" + name
    thumbs = spec("thumbnails", None, thumbnails={"interval": 1})
    for cmd in (
        target_command(FF, src, out, spec(), INFO),
        decode_check_command(FF, src),
        thumbnails_command(FF, src, "/out/t.%d.jpg", thumbs, INFO),
    ):
        assert "file:" + src in cmd
        assert all(name not in arg or arg in ("file:" + src, "file:" + out) for arg in cmd)
    assert target_command(FF, src, out, spec(), INFO)[-1] == "file:" + out


@pytest.mark.parametrize(
    ("settings", "select"),
    [
        ({"interval": 10, "unit": "frames"}, "select='not(mod(n\\,10))'"),
        (
            {"interval": 2, "unit": "seconds"},
            "select='isnan(prev_selected_t)+gte(floor(t/2.000000)\\,floor(prev_selected_t/2.000000)+1)'",
        ),
        (
            {"interval": 25, "unit": "percent"},
            "select='isnan(prev_selected_t)+gte(floor(t/2.500000)\\,floor(prev_selected_t/2.500000)+1)'",
        ),
    ],
)
def test_thumbnail_selection(settings, select):
    """Frames, seconds and percent of the duration become select expressions."""
    thumbs = spec("thumbnails", None, thumbnails={"max_count": 4, **settings})
    cmd = thumbnails_command(FF, "/a.mov", "/w/t.%d.jpg", thumbs, INFO)
    assert option(cmd, "-vf").startswith(select + ",")
    assert option(cmd, "-frames:v") == "4"
    assert option(cmd, "-fps_mode") == "vfr"
    assert option(cmd, "-start_number") == "1"
    assert option(cmd, "-f") == "image2"
    assert cmd[-1] == "/w/t.%d.jpg"
    assert option(cmd, "-c:v") == "mjpeg" and option(cmd, "-q:v") == "3"


def test_thumbnail_size_and_png():
    """Thumbnail sizes may be odd and are letterboxed; png uses the png encoder."""
    thumbs = spec("thumbnails", None, thumbnails={"format": "png", "width": 101, "height": 101})
    cmd = thumbnails_command(FF, "/a.mov", "/w/t.%d.png", thumbs, INFO)
    assert option(cmd, "-vf").endswith(
        ",scale=101:57,setsar=1,format=yuv444p,pad=101:101:(ow-iw)/2:(oh-ih)/2"
    )
    assert option(cmd, "-c:v") == "png" and "-q:v" not in cmd


def test_thumbnail_percent_needs_duration():
    """Percent intervals without a known duration are refused."""
    info = MediaInfo("x", None, 1, None, VIDEO, None, "video/mp4")
    thumbs = spec("thumbnails", None, thumbnails={"interval": 10, "unit": "percent"})
    with pytest.raises(ValueError):
        thumbnails_command(FF, "/a.mov", "/w/t.%d.jpg", thumbs, info)


def test_target_command_delegates_thumbnails():
    """A thumbnails spec passed to target_command builds the thumbnails command."""
    thumbs = spec("thumbnails", None, thumbnails={"interval": 1})
    assert target_command(FF, "/a", "/w/t.%d.jpg", thumbs, INFO) == thumbnails_command(
        FF, "/a", "/w/t.%d.jpg", thumbs, INFO
    )


def test_decode_check_command():
    """The decode check exits on the first error and decodes audio and video to null."""
    cmd = decode_check_command(FF, "/in/a.mkv")
    assert "-xerror" in cmd[: cmd.index("-i")]
    assert has_sequence(cmd, "-map", "0:v?") and has_sequence(cmd, "-map", "0:a?")
    assert cmd[-3:] == ["-f", "null", "-"]


def test_find_ffmpeg_configured(tmp_path):
    """A configured executable is used; a non-executable one is a clear error."""
    exe = tmp_path / "my-ffmpeg"
    exe.write_text("#!/bin/sh\n")
    with pytest.raises(FileNotFoundError, match="my-ffmpeg"):
        find_ffmpeg(str(exe))
    exe.chmod(exe.stat().st_mode | stat.S_IXUSR)
    assert find_ffmpeg(str(exe)) == str(exe)
    with pytest.raises(FileNotFoundError):
        find_ffmpeg(str(tmp_path / "missing"))


def test_find_ffmpeg_default():
    """Without configuration an executable ffmpeg is found (the wheel's here)."""
    path = find_ffmpeg()
    assert os.access(path, os.X_OK)


@pytest.mark.parametrize(
    ("decoded", "duration", "ok"),
    [
        (2.0, 2.0, True),
        (1.6, 2.0, True),  # within the 0.5 s tolerance
        (0.96, 2.021, False),  # a truncated mkv
        (595.0, 600.0, True),  # within 1 %
        (580.0, 600.0, False),
        (None, 2.0, False),
        (0.0, None, True),
    ],
)
def test_decoded_enough(decoded, duration, ok):
    """A decode check passes only when the decoded time reaches the probed duration."""
    assert decoded_enough(decoded, duration) is ok
