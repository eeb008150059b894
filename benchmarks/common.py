"""Shared helpers of the benchmarks: machine facts, /proc sampling, farms and baselines."""

from __future__ import annotations

import os
import platform
import resource
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any

import yaml

from tests.clips import FFMPEG, make_clip
from tests.farm import ROOT, Farm
from transcoder_admin.job.source import PRIVATE_SOURCE, private_name

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


def source_tree() -> dict[str, Any]:
    """The commit the benchmarked tree is at, and its files changed since (uncommitted)."""

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", "--no-optional-locks", *args], capture_output=True, text=True, cwd=ROOT
        ).stdout

    return {
        "commit": git("rev-parse", "--short", "HEAD").strip(),
        "changed": [line[3:] for line in git("status", "--porcelain").splitlines()],
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
    """VmRSS and VmHWM (peak RSS) of a process in MiB, VmRSS's anonymous and file-backed
    parts (RssAnon: the heap; RssFile: the mapped program and libraries), and its thread
    count."""
    found: dict[str, float] = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key = line.split(":", 1)[0]
            if key in ("VmRSS", "VmHWM", "RssAnon", "RssFile"):
                found[key] = round(int(line.split()[1]) / 1024, 1)
            elif key == "Threads":
                found[key] = int(line.split()[1])
    return {
        "rss": found.get("VmRSS", 0.0),
        "hwm": found.get("VmHWM", 0.0),
        "anon": found.get("RssAnon", 0.0),
        "file": found.get("RssFile", 0.0),
        "threads": found.get("Threads", 0),
    }


def children_running(pid: int, words: Sequence[str]) -> list[int]:
    """Pids of the live children of ``pid`` whose command line holds ``words`` as
    consecutive arguments (``["transcoder_admin", "worker"]``: its local workers)."""
    wanted = b"\0".join(w.encode() for w in words)
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmdline = f.read()
        except OSError:
            continue  # ended meanwhile
        # fields[0] is the state, fields[1] the parent's pid (fields 3 and 4 of stat)
        if int(fields[1]) == pid and fields[0] != b"Z" and wanted in cmdline:
            found.append(int(entry))
    return sorted(found)


class MemorySampler(threading.Thread):
    """Samples a process's VmRSS every ``every`` seconds until stopped."""

    def __init__(self, pid: int, every: float = 0.25) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.every = every
        self.samples: list[tuple[float, float]] = []
        self._stop_event = threading.Event()

    def run(self) -> None:
        """Sample until :meth:`stop`."""
        while not self._stop_event.is_set():
            try:
                self.samples.append((time.time(), memory_mb(self.pid)["rss"]))
            except OSError:
                return
            self._stop_event.wait(self.every)

    def stop(self) -> list[tuple[float, float]]:
        """Stop sampling; return (time, RSS MiB) samples."""
        self._stop_event.set()
        self.join(5)
        return self.samples


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
    """p50, p95, p99, max and count of a list of seconds, in milliseconds."""
    return {
        "n": len(values),
        "p50_ms": round(percentile(values, 50) * 1000, 1),
        "p95_ms": round(percentile(values, 95) * 1000, 1),
        "p99_ms": round(percentile(values, 99) * 1000, 1),
        "max_ms": round(max(values) * 1000, 1) if values else float("nan"),
    }


def spread(values: Sequence[float], digits: int = 3) -> dict[str, Any]:
    """Median, smallest and largest of repeated measurements (and the values, in order)."""
    return {
        "median": round(statistics.median(values), digits),
        "min": round(min(values), digits),
        "max": round(max(values), digits),
        "values": [round(v, digits) for v in values],
    }


def iso_seconds(value: str) -> float:
    """An ISO 8601 time with a timezone as seconds since the epoch."""
    return datetime.fromisoformat(value).timestamp()


def metric(
    name: str,
    measured: float | str | None,
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

    def post(self, path: str) -> Any:
        """POST to a path (pause, resume) and return its JSON (status must be 200)."""
        status, body = self.request("POST", path)
        assert status == 200, (status, body)
        return body

    def workers(self) -> list[dict[str, Any]]:
        """Every worker the admin knows (``/api/v1/workers``)."""
        items: list[dict[str, Any]] = self.get("/api/v1/workers")["items"]
        return items

    def wait_for_workers(self, count: int, timeout: float = 120) -> list[dict[str, Any]]:
        """Wait until exactly ``count`` workers are attached; return them."""

        def attached() -> list[dict[str, Any]]:
            items = [w for w in self.workers() if w["state"] == "attached"]
            return items if len(items) == count else []

        found: list[dict[str, Any]] = wait_until(attached, timeout, f"{count} attached workers")
        return found

    def worker_pids(self) -> list[int]:
        """Process ids of the attached workers (local or external, on this host)."""
        return [int(w["pid"]) for w in self.workers() if w.get("pid")]


# -- worker processes -------------------------------------------------------------------------


def processes_cpu(pids: Iterable[int]) -> dict[int, dict[str, float]]:
    """:func:`cpu_times` of each process that still exists."""
    found = {}
    for pid in pids:
        try:
            found[pid] = cpu_times(pid)
        except OSError:
            continue  # ended meanwhile
    return found


def cpu_delta(
    before: dict[int, dict[str, float]], after: dict[int, dict[str, float]]
) -> dict[str, float]:
    """Own CPU (user + system) and waited-for children's CPU used between two samples
    of the same processes (processes missing from either sample are left out)."""
    own = children = 0.0
    for pid, a in before.items():
        b = after.get(pid)
        if b is None:
            continue
        own += b["user"] + b["system"] - a["user"] - a["system"]
        children += b["children"] - a["children"]
    return {"own": own, "children": children}


def credentials_file(farm: Farm, filename: str, names: Iterable[str]) -> str:
    """A ``name:password`` file (0600) for the given worker names; also the admin's
    ``manager.credentials``. Returns its path."""
    path = os.path.join(farm.base, "etc", filename)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.writelines(f"{name}:bench-secret-{name}\n" for name in names)
    farm.configure("manager", credentials=path)
    return path


def worker_argv(
    farm: Farm,
    name: str,
    credentials: str,
    *,
    module: str = "transcoder_admin",
    max_jobs: int = 1,
    heartbeat_interval: float = 5.0,
    log_level: str = "info",
) -> list[str]:
    """The command line of an external worker of ``farm`` (on the farm's roots and its
    embedded manager); ``module`` may be ``benchmarks.null_worker``."""
    argv = [sys.executable, "-m", module]
    if module == "transcoder_admin":
        argv.append("worker")
    argv += ["--name", name, "--manager", f"tcp:127.0.0.1:{farm.manager_port}"]
    argv += ["--root", f"default={farm.media}", "--root", f"temp={farm.temp}"]
    argv += ["--credentials-file", credentials, "--max-jobs", str(max_jobs)]
    argv += ["--heartbeat-interval", f"{heartbeat_interval:g}", "--log-level", log_level]
    return argv


# -- real transcodes (B2, B4, B5) -------------------------------------------------------------

#: Two H.264 renditions and thumbnails: 3 ffmpeg commands per job.
RENDITIONS: dict[str, Any] = {
    "targets": {
        "r360": {
            "type": "audio-video",
            "extension": "mp4",
            "video": {"codec": "h264", "height": 360, "preset": "veryfast", "crf": 23},
            "audio": {"codec": "aac", "bitrate": 128},
        },
        "r240": {
            "type": "audio-video",
            "extension": "mp4",
            "video": {"codec": "h264", "height": 240, "preset": "veryfast", "crf": 25},
            "audio": {"codec": "aac", "bitrate": 96},
        },
        "thumbs": {
            "type": "thumbnails",
            "thumbnails": {"interval": 20, "unit": "percent", "max-count": 5, "width": 320},
        },
    }
}
RENDITIONS_TEXT = "h264 360p crf 23 + h264 240p crf 25 (veryfast, aac) + 5 thumbnails"


def rendition_clip(seconds: float) -> str:
    """A 640x360 25 fps H.264 + AAC clip of ``seconds``, made once."""
    return cached_clip(
        f"clip-640x360-{seconds:g}s.mp4", duration=seconds, width=640, height=360, fps=25
    )


def read_reports(folder: str) -> list[dict[str, Any]]:
    """Every report file directly in ``folder``, parsed."""
    reports: list[dict[str, Any]] = []
    if not os.path.isdir(folder):
        return reports
    for name in sorted(os.listdir(folder)):
        if name.endswith(".yaml"):
            with open(os.path.join(folder, name)) as f:
                reports.append(yaml.safe_load(f))
    return reports


def part_name(name: str) -> str:
    """The hidden name an upload is written under before its rename (``.NAME.part``;
    the product ignores both ``.*`` and ``*.part``)."""
    return f".{name}.part"


def stage_uploads(source: str, incoming: str, names: Sequence[str]) -> list[tuple[str, str]]:
    """Write a copy of ``source`` in ``incoming`` under each name's hidden upload name;
    return (written, final path) pairs for :func:`os.rename`."""
    written = copies(source, incoming, [part_name(n) for n in names])
    return [(path, os.path.join(incoming, n)) for path, n in zip(written, names, strict=True)]


def admin_round(
    farm: BenchFarm,
    source: str,
    names: list[str],
    stage: str | None,
    customer: str,
    profile: str,
) -> dict[str, Any]:
    """Rename copies of ``source`` into a profile's incoming folder at once; wait for
    every job; return wall time (first rename → last source in *done*, by its ctime),
    CPU of the admin, of its worker processes and of their children (ffmpeg), and the
    round's reports (key ``reports``). Raises if a job failed.

    The copies are written in ``stage`` (a folder on the same file system), or with
    ``stage`` None in incoming itself under hidden ``.NAME.part`` names, as an upload
    writes them."""
    incoming = farm.folder(customer, "incoming", profile)
    done = farm.folder(customer, "done", profile)
    failed = farm.folder(customer, "failed", profile)
    already = count_files(done) + count_files(failed)
    if stage is None:
        moves = stage_uploads(source, incoming, names)
    else:
        staged = copies(source, stage, names)
        moves = [(path, os.path.join(incoming, n)) for path, n in zip(staged, names, strict=True)]
    load = loadavg()
    workers = farm.worker_pids()
    cpu0, wcpu0 = cpu_times(farm.pid), processes_cpu(workers)
    first = time.time()
    for path, final in moves:
        os.rename(path, final)
    wait_until(
        lambda: count_files(done) + count_files(failed) >= already + len(names),
        600 + 60 * len(names),
        "every clip to reach done or failed",
    )
    farm.settled(already + len(names))
    cpu1, wcpu1 = cpu_times(farm.pid), processes_cpu(workers)
    ours = set(names)
    reports = [
        r
        for r in read_reports(farm.folder(customer, "reports-done", profile))
        + read_reports(farm.folder(customer, "reports-failed", profile))
        if r["relpath"] in ours
    ]
    failures = [r for r in reports if r["outcome"] != "done"]
    if failures or len(reports) != len(names):
        reasons = sorted({str((r.get("failure") or {}).get("reason")) for r in failures})
        raise RuntimeError(
            f"{len(failures)} of {len(names)} jobs failed ({len(reports)} reports): {reasons[:3]}"
        )
    last = max(os.stat(os.path.join(done, n)).st_ctime for n in names)
    workers_cpu = cpu_delta(wcpu0, wcpu1)
    children = cpu1["children"] - cpu0["children"] + workers_cpu["children"]
    return {
        "wall_s": round(last - first, 3),
        "load_before": load,
        "load_after": loadavg(),
        "admin_cpu_s": round(cpu1["user"] + cpu1["system"] - cpu0["user"] - cpu0["system"], 3),
        "workers_cpu_s": round(workers_cpu["own"], 3),
        "children_cpu_s": round(children, 3),
        "reported_cpu_time_sum_s": round(sum(float(r.get("cpu_time") or 0) for r in reports), 3),
        "real_time_sum_s": round(sum(float(r["real_time"]) for r in reports), 3),
        # A long one means a file was found by a poll, not by inotify.
        "rename_to_detected_max_s": round(
            max(iso_seconds(r["times"]["detected"]) for r in reports) - first, 3
        ),
        "workers": sorted({str(r.get("worker")) for r in reports}),
        "reports": reports,
    }


def baseline_scripts(
    farm: BenchFarm,
    reports: list[dict[str, Any]],
    folder: str,
    clip_path: str,
    customer: str,
    profile: str,
) -> list[str]:
    """One shell script per job running the commands its report records
    (``targets[].commands``), in the order the admin started the jobs; the source is
    rewritten to a fresh copy of the clip and the job's work folder to a scratch one."""
    incoming = farm.folder(customer, "incoming", profile)
    work = farm.folder(customer, "work", profile)
    scripts = []
    for i, report in enumerate(sorted(reports, key=lambda r: r["times"]["started"])):
        relpath = report["relpath"]
        job_dir = os.path.join(folder, "jobs", f"{i:03d}")
        os.makedirs(job_dir)
        # The farm's ffmpeg reads the job's private copy, <work>/<job id>/source/<name>
        # (transcoder_admin/job/source.py); the work folder becomes job_dir, so the clip
        # is put where the rewritten argv reads it. Older reports named incoming.
        [source] = copies(clip_path, os.path.join(job_dir, PRIVATE_SOURCE), [private_name(relpath)])
        swaps = [
            (os.path.join(work, report["job_id"]), job_dir),
            (os.path.join(incoming, relpath), source),
        ]
        lines = ["#!/bin/sh", f"# job {report['job_id']} ({relpath})", "set -e"]
        for target in report["targets"]:
            for argv in target["commands"]:
                rewritten = []
                for arg in argv:
                    for old, new in swaps:
                        arg = arg.replace(old, new)
                    rewritten.append(arg)
                lines.append(shell_command(rewritten) + " >/dev/null")
        path = os.path.join(folder, f"job-{i:03d}.sh")
        with open(path, "w") as f:
            f.write("\n".join(lines) + "\n")
        scripts.append(path)
    return scripts


def run_baseline(
    farm: BenchFarm,
    reports: list[dict[str, Any]],
    folder: str,
    clip_path: str,
    customer: str,
    profile: str,
    parallel: int,
) -> dict[str, Any]:
    """Re-run a round's recorded commands with ``xargs -P parallel``; wall time and more."""
    scripts = baseline_scripts(farm, reports, folder, clip_path, customer, profile)
    load = loadavg()
    cpu0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    wall = run_xargs(scripts, ["sh"], parallel)
    cpu1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    jobs = os.path.join(folder, "jobs")
    return {
        "wall_s": round(wall, 3),
        # xargs, sh and ffmpeg: every descendant is waited for (the admin is not yet)
        "children_cpu_s": round(cpu1.ru_utime + cpu1.ru_stime - cpu0.ru_utime - cpu0.ru_stime, 3),
        "parallel": parallel,
        "load_before": load,
        "load_after": loadavg(),
        "commands": sum(len(t["commands"]) for r in reports for t in r["targets"]),
        # Outputs only: each job folder also holds its copy of the clip in source/.
        "outputs": sum(count_files(os.path.join(jobs, d)) - 1 for d in os.listdir(jobs)),
    }


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
