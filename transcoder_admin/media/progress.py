"""Parsing ffmpeg's ``-progress pipe:1`` output into Progress values."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Progress", "ProgressParser"]


@dataclass(frozen=True)
class Progress:
    """One progress block: how far the output is, and how fast it goes."""

    out_time: float
    speed: float | None
    frame: int | None
    finished: bool

    def percent(self, duration: float | None) -> float | None:
        """Percentage of ``duration`` done (0–100), None when the duration is unknown."""
        if self.finished:
            return 100.0
        if not duration or duration <= 0:
            return None
        return max(0.0, min(100.0, 100.0 * self.out_time / duration))

    def eta(self, duration: float | None) -> float | None:
        """Seconds left at the current speed, None when it cannot be estimated."""
        if self.finished:
            return 0.0
        if not duration or duration <= 0 or not self.speed or self.speed <= 0:
            return None
        return max(0.0, duration - self.out_time) / self.speed


def _number(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        number = float(value.strip().rstrip("x"))
    except ValueError:
        return None
    return number if number == number else None  # NaN


def _clock(value: str | None) -> float | None:
    """Seconds of an ``[-]HH:MM:SS.micro`` time."""
    if not value:
        return None
    sign = -1.0 if value.startswith("-") else 1.0
    parts = value.lstrip("-").split(":")
    try:
        seconds = 0.0
        for part in parts:
            seconds = seconds * 60 + float(part)
    except ValueError:
        return None
    return sign * seconds


class ProgressParser:
    """Incremental parser: feed it bytes as they come, get completed blocks back."""

    def __init__(self) -> None:
        self._buffer = b""
        self._fields: dict[str, str] = {}
        self._out_time = 0.0

    def feed(self, data: bytes) -> list[Progress]:
        """Parse ``data``; return one Progress per block ended by a ``progress=`` line."""
        self._buffer += data
        *lines, self._buffer = self._buffer.split(b"\n")
        blocks = []
        for raw in lines:
            line = raw.decode("utf-8", "replace").strip()
            key, sep, value = line.partition("=")
            if not sep:
                continue
            key, value = key.strip(), value.strip()
            if key == "progress":
                blocks.append(self._block(finished=value == "end"))
                self._fields = {}
            else:
                self._fields[key] = value
        return blocks

    def _block(self, finished: bool) -> Progress:
        fields = self._fields
        out_time = None
        # out_time_ms is in microseconds too (a long-standing ffmpeg quirk).
        for key in ("out_time_us", "out_time_ms"):
            micro = _number(fields.get(key))
            if micro is not None:
                out_time = micro / 1_000_000
                break
        if out_time is None:
            out_time = _clock(fields.get("out_time"))
        if out_time is not None and out_time >= 0:
            self._out_time = out_time
        frame = _number(fields.get("frame"))
        speed = _number(fields.get("speed"))
        return Progress(
            out_time=self._out_time,
            speed=speed if speed is not None and speed > 0 else None,
            frame=int(frame) if frame is not None else None,
            finished=finished,
        )
