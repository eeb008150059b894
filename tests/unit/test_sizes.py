"""Output size rules: fit, letterbox/pillarbox, caps, upscaling, even sizes."""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from transcoder_admin.media.probe import VideoInfo
from transcoder_admin.media.sizes import OutputSize, compute_size, video_filters


def display(width: int, height: int, sar: Fraction = Fraction(1), rotation: int = 0) -> tuple:
    """The display size probe would report for a stored size, SAR and rotation."""
    w, h = round(width * sar), height
    return (h, w) if rotation in (90, 270) else (w, h)


CASES = [
    # (display size, keyword arguments, content w×h, frame w×h)
    ("square, unchanged", display(320, 240), {}, (320, 240), (320, 240)),
    ("PAL 720x576 sar 16:15", display(720, 576, Fraction(16, 15)), {}, (768, 576), (768, 576)),
    (
        "anamorphic HDV 1440x1080 sar 4:3",
        display(1440, 1080, Fraction(4, 3)),
        {"width": 1280},
        (1280, 720),
        (1280, 720),
    ),
    ("rotated 90 swaps", display(1920, 1080, rotation=90), {}, (1080, 1920), (1080, 1920)),
    (
        "rotated 270 with a height",
        display(1920, 1080, rotation=270),
        {"height": 640},
        (360, 640),
        (360, 640),
    ),
    ("width only", (1920, 1080), {"width": 640}, (640, 360), (640, 360)),
    ("height only", (1920, 1080), {"height": 360}, (640, 360), (640, 360)),
    ("both, same aspect", (1920, 1080), {"width": 1280, "height": 720}, (1280, 720), (1280, 720)),
    ("letterbox", (1920, 1080), {"width": 640, "height": 480}, (640, 360), (640, 480)),
    ("pillarbox", (640, 480), {"width": 640, "height": 360}, (480, 360), (640, 360)),
    ("portrait pillarbox", (1080, 1920), {"width": 640, "height": 640}, (360, 640), (640, 640)),
    ("max width caps", (1920, 1080), {"max_width": 1280}, (1280, 720), (1280, 720)),
    ("max height caps", (1920, 1080), {"max_height": 540}, (960, 540), (960, 540)),
    (
        "cap below a requested width",
        (1920, 1080),
        {"width": 1280, "max_width": 640},
        (640, 360),
        (640, 360),
    ),
    (
        "cap shrinks a padded frame",
        (1920, 1080),
        {"width": 1280, "height": 960, "max_width": 640},
        (640, 360),
        (640, 480),
    ),
    ("no upscale for width", (320, 240), {"width": 640}, (320, 240), (320, 240)),
    ("upscale allowed", (320, 240), {"width": 640, "upscale": True}, (640, 480), (640, 480)),
    (
        "no upscale inside a larger frame",
        (320, 240),
        {"width": 1280, "height": 720},
        (320, 240),
        (1280, 720),
    ),
    (
        "upscale inside a larger frame",
        (320, 240),
        {"width": 1280, "height": 720, "upscale": True},
        (960, 720),
        (1280, 720),
    ),
    ("odd source becomes even", (321, 241), {}, (320, 240), (320, 240)),
    ("odd width request becomes even", (320, 240), {"width": 101}, (102, 76), (102, 76)),
    ("odd allowed when not even", (320, 240), {"width": 101, "even": False}, (101, 76), (101, 76)),
    ("tiny stays at least 2", (4000, 10), {"width": 100}, (100, 2), (100, 2)),
]


@pytest.mark.parametrize(
    ("source", "kwargs", "content", "frame"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_compute_size_table(source, kwargs, content, frame):
    """Each source/target combination gets the expected content and frame size."""
    size = compute_size(*source, **kwargs)
    assert (size.content_width, size.content_height) == content
    assert (size.frame_width, size.frame_height) == frame
    assert size.padded == (content != frame)


def test_video_info_display_size_feeds_compute_size():
    """A rotated anamorphic VideoInfo's display size yields an upright square-pixel size."""
    info = VideoInfo("h264", 720, 576, Fraction(16, 15), 90, 25.0)
    size = compute_size(info.display_width, info.display_height, height=384)
    assert (size.content_width, size.content_height) == (288, 384)


def test_filters_unpadded():
    """An unpadded size scales and sets square pixels, with no pad filter."""
    assert video_filters(OutputSize(640, 360, 640, 360)) == ["scale=640:360", "setsar=1"]


def test_filters_padded_and_sar():
    """A padded size adds a centred pad; a requested SAR is set as a ratio."""
    filters = video_filters(OutputSize(640, 360, 640, 480), "16:15")
    assert filters == ["scale=640:360", "setsar=16/15", "pad=640:480:(ow-iw)/2:(oh-ih)/2"]


def test_invalid_display_size():
    """A zero display size is refused rather than divided by."""
    with pytest.raises(ValueError):
        compute_size(0, 240)


dims = st.integers(min_value=16, max_value=4096)
maybe = st.none() | st.integers(min_value=2, max_value=4096)


@given(
    dw=dims,
    dh=dims,
    width=maybe,
    height=maybe,
    max_width=maybe,
    max_height=maybe,
    upscale=st.booleans(),
    even=st.booleans(),
)
def test_size_properties(dw, dh, width, height, max_width, max_height, upscale, even):
    """Never distorts, even when asked, content within frame, within caps, no upscaling."""
    if not 1 / 8 <= dw / dh <= 8:
        dh = dw  # extreme aspects cannot be kept at a few pixels; not this property's job
    size = compute_size(dw, dh, width, height, max_width, max_height, upscale, even)
    cw, ch, fw, fh = size.content_width, size.content_height, size.frame_width, size.frame_height
    low = 2 if even else 1
    assert min(cw, ch, fw, fh) >= low
    if even:
        assert cw % 2 == ch % 2 == fw % 2 == fh % 2 == 0
    assert cw <= fw and ch <= fh
    # Aspect kept within rounding: each side is off by at most 2 px (even rounding +
    # clamping) from the exact value computed from the other side.
    aspect = dw / dh
    if min(cw, ch) > 4:
        assert abs(cw - ch * aspect) <= 2 + 2 * aspect
        assert abs(ch - cw / aspect) <= 2 + 2 / aspect
    if not upscale:
        assert cw <= max(dw, low) and ch <= max(dh, low)
    if max_width and max_width >= low:
        assert fw <= max_width
    if max_height and max_height >= low:
        assert fh <= max_height
    if width and height and max(width, height) >= low:
        if not max_width and not max_height:
            assert abs(fw - width) <= 1 and abs(fh - height) <= 1
    else:
        assert not size.padded
