"""Parsing ffmpeg -progress output."""

from __future__ import annotations

import pytest

from transcoder_admin.media.progress import Progress, ProgressParser

BLOCK1 = (
    b"frame=12\nfps=0.00\nstream_0_0_q=28.0\nbitrate=N/A\ntotal_size=48\n"
    b"out_time_us=480000\nout_time_ms=480000\nout_time=00:00:00.480000\n"
    b"dup_frames=0\ndrop_frames=0\nspeed=0.96x\nprogress=continue\n"
)
BLOCK2 = (
    b"frame=25\nfps=24.5\nbitrate=150.2kbits/s\nout_time_us=1000000\n"
    b"out_time_ms=1000000\nout_time=00:00:01.000000\nspeed=2x\nprogress=end\n"
)


def test_complete_blocks():
    """Two complete blocks give two values, the last one finished."""
    parser = ProgressParser()
    values = parser.feed(BLOCK1 + BLOCK2)
    assert values == [
        Progress(out_time=0.48, speed=0.96, frame=12, finished=False),
        Progress(out_time=1.0, speed=2.0, frame=25, finished=True),
    ]


@pytest.mark.parametrize("cut", [1, 7, 40, len(BLOCK1) - 1, len(BLOCK1), len(BLOCK1) + 5])
def test_split_across_feeds(cut):
    """A block split at any byte is reported once, when its progress line arrives."""
    data = BLOCK1 + BLOCK2
    parser = ProgressParser()
    first = parser.feed(data[:cut])
    second = parser.feed(data[cut:])
    assert [p.out_time for p in first + second] == [0.48, 1.0]
    assert len(first) == (1 if cut >= len(BLOCK1) else 0)


def test_byte_by_byte():
    """Feeding one byte at a time yields the same values as one feed."""
    parser = ProgressParser()
    values = [p for i in range(len(BLOCK1)) for p in parser.feed(BLOCK1[i : i + 1])]
    assert values == ProgressParser().feed(BLOCK1)


def test_not_available_values():
    """N/A values at the start of a run are tolerated: time 0, no speed, no frame."""
    data = (
        b"frame=N/A\nout_time_us=N/A\nout_time_ms=N/A\nout_time=N/A\nspeed=N/A\nprogress=continue\n"
    )
    (value,) = ProgressParser().feed(data)
    assert value == Progress(out_time=0.0, speed=None, frame=None, finished=False)
    assert value.percent(10.0) == 0.0
    assert value.eta(10.0) is None


def test_out_time_ms_is_microseconds():
    """out_time_ms, despite its name, holds microseconds as in ffmpeg."""
    (value,) = ProgressParser().feed(b"out_time_ms=2500000\nprogress=continue\n")
    assert value.out_time == 2.5


def test_clock_out_time_fallback():
    """Without the numeric keys, HH:MM:SS.micro out_time is parsed."""
    (value,) = ProgressParser().feed(b"out_time=01:02:03.500000\nprogress=continue\n")
    assert value.out_time == 3723.5


def test_n_a_keeps_last_time():
    """A block whose time is N/A keeps the previous time rather than jumping back to 0."""
    parser = ProgressParser()
    parser.feed(b"out_time_us=3000000\nprogress=continue\n")
    (value,) = parser.feed(b"out_time_us=N/A\nprogress=continue\n")
    assert value.out_time == 3.0


def test_crlf_and_noise():
    """Carriage returns and lines without '=' do not break parsing."""
    (value,) = ProgressParser().feed(b"garbage\r\nframe=3\r\nspeed= 1.5x\r\nprogress=end\r\n")
    assert value == Progress(out_time=0.0, speed=1.5, frame=3, finished=True)


def test_percent_and_eta():
    """Percent is clamped to 0..100 and the ETA is the remaining time over the speed."""
    value = Progress(out_time=5.0, speed=2.0, frame=None, finished=False)
    assert value.percent(20.0) == 25.0
    assert value.eta(20.0) == 7.5
    assert value.percent(None) is None and value.eta(None) is None
    assert Progress(30.0, 1.0, None, False).percent(20.0) == 100.0
    assert Progress(30.0, 1.0, None, False).eta(20.0) == 0.0
    done = Progress(19.9, None, None, True)
    assert done.percent(20.0) == 100.0 and done.eta(20.0) == 0.0
