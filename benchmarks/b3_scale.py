"""B3 scale: a huge queue at start-up, then a leak check over thousands of jobs.

Phase 1 ("queue"): 100,000 empty files already lie in the incoming folders of 1,000
profiles (10 customers × 100 profiles × 100 files) when the admin starts with
``workers.local: 0``, so nothing runs and everything queues. Measured: time from
spawning the admin until ``/api/v1/status`` reports every file queued, the time each
status call takes with that queue, and the admin's peak RSS (VmHWM).

Phase 2 ("leak"): a farm with ``workers.local: 1, max-jobs: 2`` and an identity target
on tiny valid media gets files in batches (incoming never holds more than two
batches). VmRSS of the admin and of its local worker is sampled with the farm idle and
every row saved after a warm-up, and again after the given number of further jobs: no
per-file record may outlive its job, in either process.
"""

from __future__ import annotations

import os
import signal
import time
import urllib.error
from typing import Any

from .b1_overhead import tiny_clip
from .common import (
    BenchFarm,
    count_files,
    cpu_seconds,
    loadavg,
    memory_mb,
    metric,
    remove,
    scratch,
    wait_until,
)

GOAL_QUEUE_S = 10.0
GOAL_HWM_MB = 300.0
GOAL_GROWTH = 0.10
BATCH = 200
IDENTITY = {"targets": {"copy": {"type": "identity"}}}


def customers(count: int, profiles: int) -> dict[str, dict[str, Any]]:
    """``count`` customer files with ``profiles`` identity profiles each."""
    return {
        f"cust{c:02d}": {
            "name": f"Cust{c:02d}",
            "profiles": {f"p{p:03d}": IDENTITY for p in range(profiles)},
        }
        for c in range(count)
    }


def create_files(farm: BenchFarm, count: int, profiles: int, per_profile: int) -> float:
    """Create the empty files in every incoming folder; return the seconds it took."""
    start = time.monotonic()
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL
    for c in range(count):
        for p in range(profiles):
            folder = farm.folder(f"cust{c:02d}", "incoming", f"p{p:03d}")
            os.makedirs(folder, exist_ok=True)
            for i in range(per_profile):
                os.close(os.open(os.path.join(folder, f"f{i:03d}.mp4"), flags, 0o644))
    return time.monotonic() - start


def timed_get(farm: BenchFarm, path: str) -> tuple[float, Any]:
    """GET an API path; return (seconds it took, decoded body)."""
    start = time.monotonic()
    body = farm.get(path)
    return time.monotonic() - start, body


def watch_queueing(
    farm: BenchFarm, total: int, opts: Any
) -> tuple[float, float, float, list[tuple[float, float, int]]]:
    """Wait until the admin has queued ``total`` files, disturbing it as little as possible.

    ``/api/v1/status`` costs the reactor seconds with a big queue, so it is asked only
    once the admin's CPU time has stood still for ``idle`` seconds (sampled from /proc
    every 50 ms). Returns (API started, end of the admin's last busy period before the
    confirming status call, return of that call, the status calls made).
    """
    idle = max(1.0, opts.stable_for + 0.5)
    deadline = time.monotonic() + 600
    started_at: float | None = None
    calls: list[tuple[float, float, int]] = []
    last_cpu, busy_until = -1.0, time.time()
    while True:
        if time.monotonic() > deadline:
            raise TimeoutError(f"not every one of {total} files queued after 600 s")
        if farm.process is not None and farm.process.poll() is not None:
            raise RuntimeError(f"the admin exited {farm.process.returncode}")
        now = time.time()
        cpu = cpu_seconds(farm.pid)
        if cpu - last_cpu > 0.015:  # more than one clock tick: busy
            last_cpu, busy_until = cpu, now
        if started_at is None:
            try:
                if farm.get("/api/v1/health")["state"] == "started":
                    started_at = time.time()
            except (OSError, urllib.error.URLError):
                pass
        elif now - busy_until >= idle:
            took, status = timed_get(farm, "/api/v1/status")
            calls.append((now, round(took, 3), status["queued"]))
            if status["queued"] >= total:
                return started_at, busy_until, now + took, calls
            last_cpu = cpu_seconds(farm.pid)
            busy_until = time.time()
        time.sleep(0.05)


def queue_phase(opts: Any, base: str) -> dict[str, Any]:
    """Phase 1: start on a full set of incoming folders with no capacity."""
    total = opts.customers * opts.profiles * opts.files_per_profile
    farm = BenchFarm(
        os.path.join(base, "queue"),
        customers(opts.customers, opts.profiles),
        stable_for=opts.stable_for,
        local=0,
        poll_interval=opts.poll_interval,
    )
    created = create_files(farm, opts.customers, opts.profiles, opts.files_per_profile)
    time.sleep(opts.stable_for)  # every file is older than stable-for when the admin starts
    load = loadavg()
    spawned = time.time()
    farm.start(wait=False)
    try:
        started_at, busy_until, confirmed, status_calls = watch_queueing(farm, total, opts)
        memory = memory_mb(farm.pid)
        cpu = cpu_seconds(farm.pid)
        settled = [timed_get(farm, "/api/v1/status")[0] for _ in range(3)]
        queue_took, items = timed_get(farm, "/api/v1/queue")
        after_queue_call = memory_mb(farm.pid)
        stop_start = time.monotonic()
        assert farm.process is not None
        farm.process.send_signal(signal.SIGTERM)
        code = farm.process.wait(120)
        stop_took = time.monotonic() - stop_start
    finally:
        farm.stop()
        if not opts.keep:
            remove(farm.base)
    return {
        "files": total,
        "profiles": opts.customers * opts.profiles,
        "create_files_s": round(created, 1),
        "spawn_to_started_s": round(started_at - spawned, 3),
        "spawn_to_all_queued_s": round(busy_until - spawned, 3),
        "after_stable_for_s": round(busy_until - spawned - opts.stable_for, 3),
        "spawn_to_status_confirmed_s": round(confirmed - spawned, 3),
        "status_calls": [(round(t - spawned, 3), took, n) for t, took, n in status_calls],
        "status_call_s_with_full_queue": [round(s, 3) for s in settled],
        "queue_call_s": round(queue_took, 3),
        "queue_items": len(items["items"]),
        "memory_mb": memory,
        "memory_mb_after_queue_call": after_queue_call,
        "admin_cpu_s": round(cpu, 2),
        "stop_s": round(stop_took, 2),
        "exit_code": code,
        "load_before": load,
        "load_after": loadavg(),
    }


class Feeder:
    """Drops tiny clips into one incoming folder in batches, as uploads do."""

    def __init__(self, farm: BenchFarm, data: bytes) -> None:
        """Feed ``farm``'s leak profile with copies of ``data``."""
        self.farm = farm
        self.data = data
        self.incoming = farm.folder("bench", "incoming", "leak")
        self.dropped = 0

    def finished(self) -> int:
        """Files whose job has ended (their source left incoming)."""
        return self.dropped - count_files(self.incoming)

    def drop(self, count: int) -> None:
        """Write ``count`` new files under a hidden name, each renamed into place."""
        partial = os.path.join(self.incoming, ".upload.part")
        for _ in range(count):
            with open(partial, "wb") as f:
                f.write(self.data)
            os.replace(partial, os.path.join(self.incoming, f"f{self.dropped:06d}.mp4"))
            self.dropped += 1

    def run_until(self, total: int, deadline: float) -> None:
        """Keep at most two batches in incoming until ``total`` dropped or ``deadline``."""
        while self.dropped < total and time.monotonic() < deadline:
            if self.dropped - self.finished() < BATCH:
                self.drop(min(BATCH, total - self.dropped))
            else:
                time.sleep(0.1)

    def drain(self, timeout: float) -> None:
        """Wait until every dropped file finished and its row is saved."""
        wait_until(lambda: self.finished() >= self.dropped, timeout, "the farm to drain")
        self.farm.settled(self.dropped, timeout)


def leak_phase(opts: Any, base: str) -> dict[str, Any]:
    """Phase 2: RSS after a warm-up and after ``opts.leak_jobs`` more jobs."""
    farm = BenchFarm(
        os.path.join(base, "leak"),
        {"bench": {"name": "Bench", "profiles": {"leak": IDENTITY}}},
        stable_for=opts.stable_for,
        max_jobs=2,
        local=1,
        poll_interval=opts.poll_interval,
    )
    with open(tiny_clip(), "rb") as f:
        feeder = Feeder(farm, f.read())
    farm.start()
    samples: list[dict[str, Any]] = []
    try:
        wait_until(lambda: os.path.isdir(feeder.incoming), 30, "the incoming folder")
        load = loadavg()
        feeder.run_until(opts.warmup, float("inf"))
        feeder.drain(600)
        [worker] = farm.worker_pids()  # the one local worker: its RSS is checked too
        warm = {**memory_mb(farm.pid), "jobs": feeder.dropped, "t": time.time()}
        warm_worker = memory_mb(worker)
        cpu0 = cpu_seconds(farm.pid)
        deadline = time.monotonic() + opts.leak_budget
        target = opts.warmup + opts.leak_jobs
        step = max(BATCH, opts.leak_jobs // 20)
        while feeder.dropped < target and time.monotonic() < deadline:
            feeder.run_until(min(target, feeder.dropped + step), deadline)
            samples.append(
                {"jobs": feeder.finished(), **memory_mb(farm.pid), "worker": memory_mb(worker)}
            )
        feeder.drain(600)
        end = {**memory_mb(farm.pid), "jobs": feeder.dropped, "t": time.time()}
        end_worker = memory_mb(worker)
        cpu1 = cpu_seconds(farm.pid)
        failed = count_files(farm.folder("bench", "failed", "leak"))
    finally:
        farm.stop()
        if not opts.keep:
            remove(farm.base)
    jobs = end["jobs"] - warm["jobs"]
    return {
        "warmup_jobs": warm["jobs"],
        "jobs_after_warmup": jobs,
        "requested_jobs": opts.leak_jobs,
        "budget_s": opts.leak_budget,
        "failed": failed,
        "rss_warm_mb": warm["rss"],
        "rss_end_mb": end["rss"],
        "hwm_end_mb": end["hwm"],
        "growth": round(end["rss"] / warm["rss"] - 1, 4),
        "worker_rss_warm_mb": warm_worker["rss"],
        "worker_rss_end_mb": end_worker["rss"],
        "worker_hwm_end_mb": end_worker["hwm"],
        "worker_growth": round(end_worker["rss"] / warm_worker["rss"] - 1, 4),
        "wall_s": round(end["t"] - warm["t"], 1),
        "rate": round(jobs / (end["t"] - warm["t"]), 2),
        "admin_cpu_ms_per_file": round((cpu1 - cpu0) * 1000 / max(1, jobs), 2),
        "samples": samples,
        "load_before": load,
        "load_after": loadavg(),
    }


def run(opts: Any) -> dict[str, Any]:
    """Run both phases of B3."""
    base = scratch(opts.tmp, "b3")
    result: dict[str, Any] = {
        "name": "b3",
        "title": "B3 scale (queue of 100k at start-up; leak check)",
        "params": {
            "customers": opts.customers,
            "profiles_per_customer": opts.profiles,
            "files_per_profile": opts.files_per_profile,
            "stable_for": opts.stable_for,
            "leak_jobs": opts.leak_jobs,
            "warmup": opts.warmup,
            "leak_budget_s": opts.leak_budget,
        },
    }
    try:
        queue = queue_phase(opts, base)
        leak = leak_phase(opts, base) if opts.leak_jobs else None
    finally:
        if not opts.keep:
            remove(base)
    result["queue"] = queue
    result["leak"] = leak
    goal_s = opts.stable_for + GOAL_QUEUE_S
    hwm = queue["memory_mb"]["hwm"]
    metrics = [
        metric(
            f"spawn -> all {queue['files']:,} queued (end of admin's busy period)",
            queue["spawn_to_all_queued_s"],
            "s",
            f"<= {goal_s:g}",
            queue["spawn_to_all_queued_s"] <= goal_s,
        ),
        metric(
            "spawn -> first /status reporting all queued returned",
            queue["spawn_to_status_confirmed_s"],
            "s",
        ),
        metric("spawn -> API says started (first scans)", queue["spawn_to_started_s"], "s"),
        metric(
            "GET /api/v1/status with the full queue",
            max(queue["status_call_s_with_full_queue"]),
            "s",
        ),
        metric("GET /api/v1/queue with the full queue", queue["queue_call_s"], "s"),
        metric("admin peak RSS (VmHWM)", hwm, "MiB", f"<= {GOAL_HWM_MB:g}", hwm <= GOAL_HWM_MB),
        metric("admin threads with every folder watched", queue["memory_mb"]["threads"], ""),
    ]
    if leak:
        growth = leak["growth"]
        metrics += [
            metric(
                f"admin RSS after {leak['warmup_jobs']:,}-job warm-up", leak["rss_warm_mb"], "MiB"
            ),
            metric(
                f"admin RSS after {leak['jobs_after_warmup']:,} more jobs",
                leak["rss_end_mb"],
                "MiB",
            ),
            metric(
                "admin RSS growth",
                round(growth * 100, 2),
                "%",
                f"<= {GOAL_GROWTH * 100:g}",
                growth <= GOAL_GROWTH,
            ),
            metric(
                f"local worker RSS after the warm-up / after {leak['jobs_after_warmup']:,} more",
                f"{leak['worker_rss_warm_mb']} / {leak['worker_rss_end_mb']}",
                "MiB",
            ),
            metric(
                "local worker RSS growth",
                round(leak["worker_growth"] * 100, 2),
                "%",
                f"<= {GOAL_GROWTH * 100:g}",
                leak["worker_growth"] <= GOAL_GROWTH,
            ),
            metric(
                "jobs run after warm-up (requested)",
                leak["jobs_after_warmup"],
                "",
                f"{leak['requested_jobs']:,}",
                leak["jobs_after_warmup"] >= leak["requested_jobs"],
            ),
            metric("leak phase throughput", leak["rate"], "files/s"),
            metric("admin CPU per file (leak phase)", leak["admin_cpu_ms_per_file"], "ms"),
        ]
    result["metrics"] = metrics
    return result
