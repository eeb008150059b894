"""Output frame sizes: fit, letterbox/pillarbox, caps and even dimensions (DESIGN §5).

Every size here is in *display* pixels (after the source's pixel aspect ratio and
rotation), so keeping the display aspect ratio is what "never distort" means.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

__all__ = ["OutputSize", "compute_size", "video_filters"]


@dataclass(frozen=True)
class OutputSize:
    """The scaled picture (content) and the frame it is centred in."""

    content_width: int
    content_height: int
    frame_width: int
    frame_height: int

    @property
    def padded(self) -> bool:
        """Whether the frame is larger than the content (letterbox or pillarbox)."""
        return (self.frame_width, self.frame_height) != (
            self.content_width,
            self.content_height,
        )


def _round(value: float, even: bool, limit: int | None = None) -> int:
    """Round to the nearest integer (even integer when ``even``) not above ``limit``."""
    step = 2 if even else 1
    result = max(step, int(math.floor(value / step + 0.5)) * step)
    if limit is not None and result > limit:
        result = max(step, limit - limit % step)
    return result


def _fit(width: float, height: float, box_width: float, box_height: float) -> float:
    """The scale factor that makes width×height fit inside box_width×box_height."""
    return min(box_width / width, box_height / height)


def compute_size(
    display_width: int,
    display_height: int,
    width: int | None = None,
    height: int | None = None,
    max_width: int | None = None,
    max_height: int | None = None,
    upscale: bool = False,
    even: bool = True,
) -> OutputSize:
    """The content and frame size for a source display size and a target's settings."""
    if display_width <= 0 or display_height <= 0:
        raise ValueError(f"invalid display size {display_width}x{display_height}")
    dw, dh = float(display_width), float(display_height)
    # Sizes in floats first; round once at the end so the aspect errors do not add up.
    if width and height:
        frame_w, frame_h = float(width), float(height)
        scale = _fit(dw, dh, frame_w, frame_h)
    elif width:
        scale = width / dw
        frame_w, frame_h = dw * scale, dh * scale
    elif height:
        scale = height / dh
        frame_w, frame_h = dw * scale, dh * scale
    else:
        scale = 1.0
        frame_w, frame_h = dw, dh
    if not upscale and scale > 1.0:
        scale = 1.0
        if not (width and height):
            frame_w, frame_h = dw, dh
    content_w, content_h = dw * scale, dh * scale
    # Caps shrink the frame keeping its aspect, then the content is refitted into it.
    cap = 1.0
    if max_width and frame_w > max_width:
        cap = min(cap, max_width / frame_w)
    if max_height and frame_h > max_height:
        cap = min(cap, max_height / frame_h)
    if cap < 1.0:
        frame_w, frame_h = frame_w * cap, frame_h * cap
        if content_w > frame_w or content_h > frame_h:
            refit = _fit(content_w, content_h, frame_w, frame_h)
            content_w, content_h = content_w * refit, content_h * refit
    fw = _round(frame_w, even, max_width)
    fh = _round(frame_h, even, max_height)
    cw = _round(content_w, even, fw if upscale else min(fw, display_width))
    ch = _round(content_h, even, fh if upscale else min(fh, display_height))
    if not (width and height):
        # Unpadded: the frame is the content (rounding must not invent a 2-pixel border).
        fw, fh = cw, ch
    return OutputSize(cw, ch, fw, fh)


def video_filters(size: OutputSize, sar: Fraction | str = Fraction(1)) -> list[str]:
    """ffmpeg filters that scale to the content size, set the pixel aspect and pad."""
    ratio = Fraction(sar.replace(":", "/")) if isinstance(sar, str) else Fraction(sar)
    filters = [
        f"scale={size.content_width}:{size.content_height}",
        f"setsar={ratio}",
    ]
    if size.padded:
        filters.append(f"pad={size.frame_width}:{size.frame_height}:(ow-iw)/2:(oh-ih)/2")
    return filters
