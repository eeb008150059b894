"""Shared helpers of the benchmarks: machine facts, /proc sampling, farms and baselines."""

from __future__ import annotations

import os
import platform
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any

from tests.clips import FFMPEG, make_clip
from tests.farm import ROOT, Farm

RESULTS_DIR = os.path.join(ROOT, "benchmarks", "results")
CACHE_DIR = os.path.join(RESULTS_DIR, "cache")
CLK_TCK = os.sysconf("SC_CLK_TCK")
# The nice level the admin gives ffmpeg (process-priority, built-in default 10);
# baselines run at the same level so that other load on the machine hits both alike.
NICE = 10


# -- the machine ------------------------------------------------------------------------


def loadavg() -> list[float]:
    """The 1, 5 and 15 minute load averages from /proc/loadavg."""
    with open("/proc/loadavg") as f:
        return [float(x) for x in f.read().split()[:3]]


def _cpu_model() -> str:
    """The CPU model name from /proc/cpuinfo."""
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def _mem_total_gib() -> float:
    """Total RAM in GiB from /proc/meminfo."""
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024 / 1024, 1)
    return 0.0


def _filesystem(path: str) -> str:
    """Device and filesystem type of the mount holding ``path`` (from df)."""
    try:
        out = subprocess.run(
            ["df", "-PT", path], capture_output=True, text=True, check=True
        ).stdout.splitlines()[-1]
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    fields = out.split()
    return f"{fields[1]} on {fields[0]} (mounted at {fields[-1]})"


def ffmpeg_version() -> str:
    """The first line of ``ffmpeg -version`` of the imageio-ffmpeg binary."""
    out = subprocess.run([FFMPEG, "-version"], capture_output=True, text=True).stdout
    return out.splitlines()[0].split(" Copyright")[0] if out else "unknown"


def machine(tmp: str) -> dict[str, Any]:
    """Facts about this machine that the results depend on."""
    return {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "ram_gib": _mem_total_gib(),
        "python": sys.version.split()[0],
        "ffmpeg": ffmpeg_version(),
        "ffmpeg_path": FFMPEG,
        "tmp_filesystem": _filesystem(tmp),
        "kernel": platform.release(),
        "loadavg": loadavg(),
    }


# -- one process ------------------------------------------------------------------------


def cpu_times(pid: int) -> dict[str, float]:
    """utime, stime (all threads, children excluded) and waited-for children's CPU, in s."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    # fields[0] is the state (field 3 of stat): utime, stime, cutime, cstime are 14–17.
    user, system, cuser, csystem = (int(x) / CLK_TCK for x in fields[11:15])
    return {"user": user, "system": system, "children": cuser + csystem}


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system, all threads, children excluded) of a process."""
    times = cpu_times(pid)
    return times["user"] + times["system"]


def memory_mb(pid: int) -> dict[str, float]:
    """VmRSS and VmHWM (peak RSS) of a process in MiB, and its thread count."""
    found: dict[str, float] = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key = line.split(":", 1)[0]
            if key in ("VmRSS", "VmHWM"):
                found[key] = round(int(line.split()[1]) / 1024, 1)
            elif key == "Threads":
                found[key] = int(line.split()[1])
    return {
        "rss": found.get("VmRSS", 0.0),
        "hwm": found.get("VmHWM", 0.0),
        "threads": found.get("Threads", 0),
    }


# -- numbers ------------------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0–100) with linear interpolation between ranks."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100.0
    low = int(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def distribution(values: Sequence[float]) -> dict[str, float]:
    """p50, p99, max and count of a list of seconds, in milliseconds."""
    return {
        "n": len(values),
        "p50_ms": round(percentile(values, 50) * 1000, 1),
        "p99_ms": round(percentile(values, 99) * 1000, 1),
        "max_ms": round(max(values) * 1000, 1) if values else float("nan"),
    }


def iso_seconds(value: str) -> float:
    """An ISO 8601 time with a timezone as seconds since the epoch."""
    return datetime.fromisoformat(value).timestamp()


def metric(
    name: str,
    measured: float | None,
    unit: str,
    goal: str = "",
    ok: bool | None = None,
) -> dict[str, Any]:
    """One row of a results table: what was measured against which goal."""
    return {"metric": name, "measured": measured, "unit": unit, "goal": goal, "ok": ok}


# -- folders and files --------------------------------------------------------------------


def scratch(tmp: str, name: str) -> str:
    """A new empty folder for one benchmark under ``tmp``."""
    os.makedirs(tmp, exist_ok=True)
    return tempfile.mkdtemp(prefix=f"transcoder-bench-{name}-", dir=tmp)


def cached_clip(name: str, **options: Any) -> str:
    """A clip made once with tests.clips.make_clip and kept in benchmarks/results/cache."""
    os.makedirs(CACHE_DIR, exist_ok=True)
    path = os.path.join(CACHE_DIR, name)
    if not os.path.exists(path):
        make_clip(path + ".tmp" + os.path.splitext(name)[1], **options)
        os.replace(path + ".tmp" + os.path.splitext(name)[1], path)
    return path


def copies(source: str, folder: str, names: Iterable[str]) -> list[str]:
    """Copy ``source`` into ``folder`` under each name; return the paths."""
    os.makedirs(folder, exist_ok=True)
    with open(source, "rb") as f:
        data = f.read()
    paths = []
    for name in names:
        path = os.path.join(folder, name)
        with open(path, "wb") as out:
            out.write(data)
        paths.append(path)
    return paths


def count_files(folder: str) -> int:
    """How many entries a folder has (0 when it does not exist)."""
    try:
        with os.scandir(folder) as it:
            return sum(1 for _ in it)
    except FileNotFoundError:
        return 0


def wait_until(predicate: Callable[[], Any], timeout: float, what: str, every: float = 0.2) -> Any:
    """Poll ``predicate`` until it is truthy; raise TimeoutError after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(every)


def remove(path: str) -> None:
    """Remove a scratch folder, ignoring errors."""
    shutil.rmtree(path, ignore_errors=True)


# -- the admin ------------------------------------------------------------------------------


class BenchFarm(Farm):
    """A tests.farm.Farm whose admin logs at a production level (info by default)."""

    log_level = "info"
    start_timeout = 120.0

    @property
    def pid(self) -> int:
        """The admin's process id."""
        assert self.process is not None
        return self.process.pid

    def rows(self, page: int = 500) -> list[dict[str, Any]]:
        """Every report row, read page by page through ``/api/v1/reports``."""
        rows: list[dict[str, Any]] = []
        while True:
            body = self.get(f"/api/v1/reports?limit={page}&offset={len(rows)}")
            rows.extend(body["items"])
            if not body["items"] or len(rows) >= body["total"]:
                return rows

    def settled(self, expected_rows: int, timeout: float = 120) -> None:
        """Wait until no report row waits for the database and ``expected_rows`` exist."""

        def ok() -> bool:
            """Whether the database has caught up."""
            status = self.get("/api/v1/status")
            if status["reports_pending"]:
                return False
            return self.get("/api/v1/reports?limit=1")["total"] >= expected_rows

        wait_until(ok, timeout, "every report row", every=0.5)


# -- baselines -------------------------------------------------------------------------------


def shell_command(argv: Sequence[str], replace: dict[str, str] | None = None) -> str:
    """A shell line for ``argv``; each whole argument in ``replace`` becomes raw shell text."""
    replace = replace or {}
    return " ".join(replace.get(a, shlex.quote(a)) for a in argv)


def run_xargs(items: Sequence[str], command: Sequence[str], parallel: int = 2) -> float:
    """Run ``command ITEM`` for every item with ``xargs -0 -P parallel`` (niced); wall s."""
    data = b"".join(item.encode() + b"\0" for item in items)
    argv = ["nice", "-n", str(NICE), "xargs", "-0", "-n", "1", "-P", str(parallel), *command]
    start = time.monotonic()
    proc = subprocess.run(argv, input=data, capture_output=True)
    elapsed = time.monotonic() - start
    if proc.returncode != 0:
        raise RuntimeError(f"baseline failed ({proc.returncode}): {proc.stderr[-2000:]!r}")
    return elapsed
