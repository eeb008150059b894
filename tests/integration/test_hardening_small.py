"""Issue 9, configuration and orphans, on the real farm.

Bitrates written in ffmpeg's forms reach a real ffmpeg and the report says which
were used; a local worker whose admin was SIGKILLed and never came back exits by itself.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time

import av
import pytest

from tests.clips import BASE, ENV
from tests.farm import Farm, read_log, wait_for

RATES = {
    "name": "Rates",
    "profiles": {
        "web": {
            "targets": {
                "hi": {
                    "type": "audio-video",
                    "video": {"codec": "h264", "bitrate": "2.5M"},
                    "audio": {"codec": "aac", "bitrate": "96k"},
                },
                "lo": {"type": "video", "video": {"codec": "h264", "bitrate": "500k"}},
            }
        }
    },
}


def noisy_clip(path: str, seconds: float = 4.0) -> str:
    """A 640×360 clip of moving noise: an encoder needs every bit it is allowed."""
    video = f"testsrc2=size=640x360:rate=25:d={seconds},noise=alls=60:allf=t+u"
    args = [*BASE, "-f", "lavfi", "-i", video, "-f", "lavfi", "-i", f"sine=d={seconds}"]
    args += ["-c:v", "libx264", "-preset", "ultrafast", "-qp", "10", "-pix_fmt", "yuv420p"]
    subprocess.run([*args, "-c:a", "aac", "-t", str(seconds), path], check=True, env=ENV)
    return path


def video_kbits(path: str) -> float:
    """The video stream's mean rate in kbit/s, from its packets."""
    with av.open(path) as container:
        stream = container.streams.video[0]
        packets = [p for p in container.demux(stream) if p.size]
        size = sum(p.size for p in packets)
        ends = [float((p.pts + (p.duration or 0)) * p.time_base) for p in packets]
        starts = [float(p.pts * p.time_base) for p in packets]
    return size * 8 / 1000 / (max(ends) - min(starts))


def test_ffmpeg_bitrate_forms_reach_ffmpeg_and_the_report(tmp_path):
    """`2.5M` and `500k` video, `96k` audio: outputs near those rates, report names them."""
    farm = Farm(str(tmp_path), {"rates": RATES})
    farm.start()
    try:
        source = noisy_clip(str(tmp_path / "noise.mp4"))
        farm.drop("rates", "web", "noise.mp4", source)
        wait_for(lambda: farm.reports("rates", "web", "done"), 120, "the job to finish")
    finally:
        farm.stop()
    [report] = farm.reports("rates", "web", "done")
    targets = {t["name"]: t for t in report["targets"]}
    assert targets["hi"]["settings"]["video"]["bitrate"] == "2500k"
    assert targets["hi"]["settings"]["audio"]["bitrate"] == "96k"
    assert targets["lo"]["settings"]["video"]["bitrate"] == "500k"
    assert "audio" not in targets["lo"]["settings"]  # a video target: no audio made
    assert "2500k" in targets["hi"]["commands"][0] and "96k" in targets["hi"]["commands"][0]
    outgoing = farm.folder("rates", "outgoing", "web")
    hi = video_kbits(os.path.join(outgoing, "hi", "noise.mp4"))
    lo = video_kbits(os.path.join(outgoing, "lo", "noise.mp4"))
    # A 4 s clip overshoots a little (x264's buffer, maxrate 1.5×); five times apart.
    assert hi == pytest.approx(2500, rel=0.3), hi
    assert lo == pytest.approx(500, rel=0.3), lo
    assert 3.5 < hi / lo < 6.5, (hi, lo)


def alive(pid: int) -> bool:
    """Whether a process runs (a zombie waiting for its reaper does not)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[-1].split()[0] != b"Z"
    except OSError:
        return False


def test_local_worker_of_a_killed_admin_exits_after_ten_lost_timeouts(tmp_path):
    """Admin SIGKILLed: its local worker waits 10 × lost-timeout alone, then exits itself.

    A standalone worker with ``--orphan-timeout 3`` exits 0 after 3 s; one without
    keeps reconnecting.
    """
    farm = Farm(str(tmp_path), {})
    farm.configure("workers", lost_timeout=1, heartbeat_interval=0.5)
    credentials = farm.write_credentials("w.credentials", {"ext-1": "s1", "ext-2": "s2"})
    farm.configure("manager", credentials=credentials)
    farm.start()
    state = os.path.join(farm.temp, ".transcoder-admin", "workers")
    pids: list[int] = []
    try:
        with open(os.path.join(state, "test-local-1.pid"), encoding="ascii") as f:
            local = int(f.read().split()[0])
        pids.append(local)
        argv = [sys.executable, "-m", "transcoder_admin", "worker", "--name", "ext-1"]
        argv += ["--manager", f"tcp:127.0.0.1:{farm.manager_port}"]
        argv += ["--root", f"default={farm.media}", "--root", f"temp={farm.temp}"]
        argv += ["--credentials-file", credentials, "--heartbeat-interval", "0.5"]
        quick = farm.start_daemon("ext-1", [*argv, "--orphan-timeout", "3"])
        forever = farm.start_daemon("ext-2", [*argv[:5], "ext-2", *argv[6:]])
        workers = {"test-local-1", "ext-1", "ext-2"}
        wait_for(
            lambda: {w["name"] for w in farm.get("/api/v1/workers")["items"]} >= workers,
            30,
            "every worker to attach",
        )
        farm.signal(signal.SIGKILL)
        assert farm.process is not None
        farm.process.wait(30)
        killed = time.monotonic()

        assert quick.process is not None
        assert quick.process.wait(30) == 0
        said = read_log(quick.log_path)
        assert "worker ext-1 stopping: alone for" in said and "orphan-timeout 3 s" in said
        assert alive(local), "the local worker waits 10 × lost-timeout, not 3 s"
        wait_for(lambda: not alive(local), 40, "the local worker to exit by itself")
        waited = time.monotonic() - killed
        assert 9 <= waited <= 30, waited
        log = read_log(os.path.join(state, "test-local-1.log"))
        assert "worker test-local-1 stopping: alone for" in log
        assert "no job running; orphan-timeout 10 s" in log
        assert forever.running(), "a standalone worker without orphan-timeout stays"
    finally:
        for pid in pids:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        farm.stop()
