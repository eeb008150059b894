"""Reading ffmpeg's description of its input: the lines a probe trusts, and those it must not.

The samples are ffmpeg's own output (FFmpeg 9, and the older spelling of side data); the
hostile ones put what a file controls (its name, metadata values, program names) where
a careless reader would take it for the description.
"""

from __future__ import annotations

from fractions import Fraction

import pytest

from transcoder_admin.media.dump import channel_count, error_reason, read_dump
from transcoder_admin.media.probe import NotMediaError, describe, playlist_kind

PATH = "/w/source/clip.mp4"
URL = "file:" + PATH
QT_BRAND = "qt  "  # as QuickTime files have it, padded to four bytes

CLIP = f"""[mov,mp4,m4a,3gp,3g2,mj2 @ 0x5] stream 0, timescale not set
Input #0, mov,mp4,m4a,3gp,3g2,mj2, from '{URL}':
  Metadata:
    major_brand     : {QT_BRAND}
    minor_version   : 512
    compatible_brands: isomiso2avc1mp41
    title           : a first line
                    : Duration: 99:00:00.00, start: 0.000000, bitrate: 1 kb/s
  Duration: 00:01:02.48, start: 0.000000, bitrate: 2130 kb/s
  Stream #0:0[0x1](und): Video: h264 (High) (avc1 / 0x31637661), yuv420p(tv, bt709, \
progressive), 1440x1080 [SAR 4:3 DAR 16:9], 1990 kb/s, 29.97 fps, 29.97 tbr, 30k tbn (default)
    Metadata:
      handler_name    : VideoHandler
      rotate          : 90
    Side data:
      Display Matrix: rotation of 90.00 degrees
  Stream #0:1[0x2](eng): Audio: aac (LC) (mp4a / 0x6134706D), 48000 Hz, 5.1(side), fltp, \
130 kb/s (default)
    Metadata:
      handler_name    : SoundHandler
  Stream #0:2[0x3](und): Data: none (tmcd / 0x64636D74) (default)
Stream mapping:
  Stream #0:0 -> #0:0 (h264 (native) -> wrapped_avframe (native))
Output #0, null, to 'pipe:':
""".encode()


def test_a_clip_is_read_field_by_field():
    """Format, duration, bitrate, brand, both streams and the display matrix."""
    info = describe(CLIP, PATH, 1000)
    assert (info.format_name, info.duration, info.bit_rate) == (
        "mov,mp4,m4a,3gp,3g2,mj2",
        62.48,
        2_130_000,
    )
    assert info.mime_type == "video/quicktime"  # the brand, padded, is 'qt'
    video = info.video
    assert video is not None
    assert (video.codec, video.width, video.height, video.sar) == (
        "h264",
        1440,
        1080,
        Fraction(4, 3),
    )
    # 90° counter-clockwise on display: turned 270° clockwise, then 1920 wide becomes tall.
    assert (video.rotation, video.display_width, video.display_height) == (270, 1080, 1920)
    assert video.fps == 29.97
    assert info.audio is not None
    assert (info.audio.codec, info.audio.rate, info.audio.channels) == ("aac", 48000, 6)


def test_a_metadata_value_cannot_pass_for_the_duration():
    """A title's second line looks like a Duration line, indented as a continuation."""
    dump = read_dump(CLIP, URL)
    assert dump is not None and dump.duration == 62.48
    assert dump.tags["title"] == "a first line"


def test_a_file_name_cannot_forge_lines():
    """A name holding a newline and a fake stream: the header is found by the whole name."""
    hostile = "/w/source/a':\n  Duration: 10:00:00.00, start: 0\n  Stream #0:0: Video: h264, 9x9"
    url = "file:" + hostile
    text = f"""Input #0, mov,mp4,m4a,3gp,3g2,mj2, from '{url}':
  Duration: 00:00:02.00, start: 0.000000, bitrate: 57 kb/s
  Stream #0:0[0x1](und): Audio: aac (LC) (mp4a / 0x6134706D), 44100 Hz, mono, fltp
At least one output file must be specified
""".encode()
    info = describe(text, hostile, 10)
    assert info.duration == 2.0 and info.video is None
    assert info.audio is not None and info.audio.channels == 1


def test_control_characters_of_a_name_are_matched_as_ffmpeg_logs_them():
    """FFmpeg's logger prints other control characters as '?': the header is still found."""
    name = "/w/source/bell\x07.mp4"
    text = b"Input #0, wav, from 'file:/w/source/bell?.mp4':\n" + (
        b"  Duration: 00:00:01.00, bitrate: 1411 kb/s\n"
        b"  Stream #0:0: Audio: pcm_s16le ([1][0][0][0] / 0x0001), 44100 Hz, stereo, s16\n"
    )
    info = describe(text, name, 10)
    assert info.audio is not None and info.audio.channels == 2


def test_older_ffmpeg_side_data_and_log_lines_inside_the_dump():
    """FFmpeg before 7 spells 'displaymatrix' in lower case; a component's log line in
    the middle of the description is skipped, not taken for its end."""
    text = f"""Input #0, matroska,webm, from '{URL}':
  Duration: N/A, start: 0.000000, bitrate: N/A
  Stream #0:0: Video: vp9 (Profile 0), yuv420p(tv), 640x360, SAR 16:15 DAR 256:135, 25 fps, \
25 tbr, 1k tbn
[matroska,webm @ 0x1] a warning in between
    Side data:
      displaymatrix: rotation of -180.00 degrees
  Stream #0:1: Audio: opus, 48000 Hz, 3 channels (FL+FR+LFE), fltp
""".encode()
    info = describe(text, PATH, 10)
    assert info.duration is None and info.bit_rate is None
    assert info.video is not None and info.video.rotation == 180
    assert info.video.sar == Fraction(16, 15) and info.video.display_width == 683
    assert info.audio is not None and info.audio.channels == 3


def test_a_cover_picture_is_not_the_video():
    """An attached picture (an MP3's cover) is not a video stream."""
    text = f"""Input #0, mp3, from '{URL}':
  Duration: 00:00:03.00, start: 0.025056, bitrate: 130 kb/s
  Stream #0:0: Audio: mp3 (mp3float), 44100 Hz, stereo, fltp, 128 kb/s
  Stream #0:1: Video: mjpeg (Baseline), yuvj444p(pc), 320x240 [SAR 1:1 DAR 4:3], \
90k tbr, 90k tbn (attached pic)
""".encode()
    info = describe(text, PATH, 10)
    assert info.video is None and info.mime_type == "audio/mpeg"


@pytest.mark.parametrize(
    ("stderr", "reason"),
    [
        (
            b"[in#0 @ 0x1] Error opening input: Invalid data found when processing input\n"
            b"Error opening input file file:/w/source/clip.mp4.\n"
            b"Error opening input files: Invalid data found when processing input\n",
            "not a media file: unrecognised format (Invalid data found when processing input)",
        ),
        (
            f"{URL}: Invalid data found when processing input\n".encode(),
            "not a media file: unrecognised format (Invalid data found when processing input)",
        ),
        (
            f"Input #0, tty, from '{URL}':\n  Duration: 00:00:01.00, bitrate: 1 kb/s\n"
            "  Stream #0:0: Video: ansi, pal8, 640x400, 25 fps, 25 tbr, 25 tbn\n".encode(),
            "not a media file: a text file",
        ),
        (
            f"Input #0, hls, from '{URL}':\n  Duration: 00:00:04.00, bitrate: N/A\n"
            "  Program 0 \n  Stream #0:0: Audio: aac (LC), 44100 Hz, mono, fltp\n".encode(),
            "not a media file: a hls playlist",
        ),
        (
            f"Input #0, png_pipe, from '{URL}':\n  Duration: N/A, bitrate: N/A\n"
            "  Stream #0:0: Video: png, rgb24(pc), 64x48, 25 fps, 25 tbr, 25 tbn\n".encode(),
            "not a media file: a still image",
        ),
        (
            f"Input #0, srt, from '{URL}':\n  Duration: N/A, bitrate: N/A\n"
            "  Stream #0:0: Subtitle: subrip (srt)\n".encode(),
            "not a media file: no audio or video stream",
        ),
    ],
    ids=["ffmpeg-9-error", "older-error", "text", "playlist", "still-image", "subtitles"],
)
def test_what_is_not_media_says_why(stderr, reason):
    """Each refusal names what the file is."""
    with pytest.raises(NotMediaError) as caught:
        describe(stderr, PATH, 10)
    assert str(caught.value) == reason


def test_an_empty_file_is_refused_without_reading_anything():
    with pytest.raises(NotMediaError, match="the file is empty"):
        describe(b"", PATH, 0)


def test_an_unexplained_failure_quotes_ffmpeg_s_last_line():
    assert error_reason(b"something odd\nsomething worse\n", URL) == "something worse"
    assert error_reason(b"", URL) == "ffmpeg said nothing"


@pytest.mark.parametrize(
    ("layout", "count"),
    [
        ("mono", 1),
        ("stereo", 2),
        ("5.1(side)", 6),
        ("7.1", 8),
        ("22.2", 24),
        ("6 channels", 6),
        ("4 channels (FL+FR+FC+LFE)", 4),
        ("FL+FR+LFE", 3),
        ("ambisonic 1", 4),
        ("no idea", 0),
    ],
)
def test_channel_counts_of_ffmpeg_layout_names(layout, count):
    assert channel_count(layout) == count


@pytest.mark.parametrize(
    ("head", "kind"),
    [
        (b"#EXTM3U\n#EXT-X-TARGETDURATION:2\n", "hls"),
        (b"ffconcat version 1.0\nfile a.mp4\n", "concat"),
        (
            b"<?xml?><MPD xmlns='urn:mpeg:dash:schema:mpd:2011'"
            b" profiles='urn:mpeg:dash:profile:isoff-live:2011'>",
            "dash",
        ),
        (b"\x00\x00\x00\x20ftypisom", None),
        (b"# notes about #EXTM3U\n", None),
    ],
)
def test_playlists_are_known_by_their_first_bytes(head, kind):
    assert playlist_kind(head) == kind


def test_each_of_several_inputs_is_found_by_its_name():
    """One ffmpeg describing two outputs: each description is read by its file's name; a
    file after the one ffmpeg could not open has none."""
    first, second, third = "/w/00-audio-video.mp4", "/w/01-audio.mp3", "/w/02-video.webm"
    text = f"""Input #0, mov,mp4,m4a,3gp,3g2,mj2, from 'file:{first}':
  Duration: 00:00:02.00, start: 0.000000, bitrate: 300 kb/s
  Stream #0:0[0x1](und): Video: h264 (High) (avc1 / 0x31637661), yuv420p, 320x180, 25 fps
  Stream #0:1[0x2](und): Audio: aac (LC) (mp4a / 0x6134706D), 48000 Hz, stereo, fltp
Input #1, mp3, from 'file:{second}':
  Duration: 00:00:02.04, start: 0.025057, bitrate: 129 kb/s
  Stream #1:0: Audio: mp3 (mp3float), 48000 Hz, stereo, fltp, 128 kb/s
[in#2 @ 0x1] Error opening input: Invalid data found when processing input
Error opening input file file:{third}.
""".encode()
    video = describe(text, first, 10)
    assert video.video is not None and video.audio is not None and video.duration == 2.0
    audio = describe(text, second, 10)
    assert audio.video is None and audio.audio is not None and audio.duration == 2.04
    with pytest.raises(NotMediaError, match="Invalid data found when processing input"):
        describe(text, third, 10)


def test_a_frame_rate_that_is_the_time_base_s_is_not_taken():
    """DV's average rate is its time base's (60k): the guessed rate (tbr) is the picture's."""
    text = f"""Input #0, dv, from '{URL}':
  Duration: 00:00:01.00, start: 0.000000, bitrate: 28800 kb/s
  Stream #0:0: Video: dvvideo, yuv420p, 720x576 [SAR 16:15 DAR 4:3], 25000 kb/s, 60k fps, \
25 tbr, 60k tbn
  Stream #0:1: Audio: pcm_s16le, 48000 Hz, stereo, s16, 1536 kb/s
""".encode()
    info = describe(text, PATH, 10)
    assert info.video is not None and info.video.fps == 25.0
