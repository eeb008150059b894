"""B6 dispatch: thousands of queued files over many lightweight worker processes.

10,000 empty files lie in one profile's incoming folder (identity target) when the
admin starts with ``workers.local: 0``, so they all queue with no capacity. The
benchmark then pauses the admin (``POST /api/v1/pause``), starts 50 external
:mod:`benchmarks.null_worker` processes (the real worker daemon, PB login, heartbeats
and acknowledgement protocol, but jobs that do no media work), waits until all of them
are attached and every file is queued, and resumes (``POST /api/v1/resume``).

Measured from the resume: jobs per second dispatched and acknowledged (the
acknowledgement makes the worker move the source to *done*: the last such ctime ends
the run), the time until every report row is in the database, per-job round trip
(``start_time`` of the row → source in *done*), the admin's CPU per job and its RSS:
sampled every 0.25 s during the run, and VmHWM (peak since its start, so including the
scan of 10,000 files).
"""

from __future__ import annotations

import os
import time
from typing import Any

from .common import (
    BenchFarm,
    MemorySampler,
    count_files,
    cpu_delta,
    cpu_times,
    credentials_file,
    distribution,
    iso_seconds,
    loadavg,
    memory_mb,
    metric,
    processes_cpu,
    remove,
    scratch,
    wait_until,
    worker_argv,
)

PROFILE = "b6"
CUSTOMER = {"name": "Bench", "profiles": {PROFILE: {"targets": {"copy": {"type": "identity"}}}}}
GOAL_RATE = 200.0
GOAL_RSS_MB = 300.0


def create_files(folder: str, count: int) -> None:
    """``count`` empty files in ``folder``."""
    os.makedirs(folder, exist_ok=True)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL
    for i in range(count):
        os.close(os.open(os.path.join(folder, f"f{i:06d}.mp4"), flags, 0o644))


def dispatch_run(opts: Any, base: str) -> dict[str, Any]:
    """Start, queue, attach the workers, resume; measure until every row is saved."""
    total, workers, slots = opts.dispatch_files, opts.dispatch_workers, opts.dispatch_slots
    farm = BenchFarm(
        os.path.join(base, "farm"),
        {"bench": CUSTOMER},
        stable_for=opts.stable_for,
        local=0,
        poll_interval=opts.poll_interval,
    )
    names = [f"null{i:03d}" for i in range(1, workers + 1)]
    credentials = credentials_file(farm, "workers.credentials", names)
    incoming = farm.folder("bench", "incoming", PROFILE)
    done = farm.folder("bench", "done", PROFILE)
    create_files(incoming, total)
    time.sleep(opts.stable_for)  # every file is older than stable-for when the admin starts
    spawned = time.time()
    farm.start()
    try:
        farm.post("/api/v1/pause")
        wait_until(
            lambda: farm.get("/api/v1/status")["queued"] >= total,
            300,
            f"{total} files queued",
            every=0.5,
        )
        queued = time.time()
        for name in names:
            argv = worker_argv(
                farm,
                name,
                credentials,
                module="benchmarks.null_worker",
                max_jobs=slots,
                log_level="warn",
            )
            farm.start_daemon(name, argv)
        farm.wait_for_workers(workers, timeout=120 + 2 * workers)
        attached = time.time()
        pids = [d.pid for d in farm.daemons.values()]
        idle = memory_mb(farm.pid)
        load = loadavg()
        cpu0, wcpu0 = cpu_times(farm.pid), processes_cpu(pids)
        sampler = MemorySampler(farm.pid)
        sampler.start()
        resumed = time.time()
        farm.post("/api/v1/resume")
        try:
            wait_until(
                lambda: count_files(done) >= total,
                60 + total / 5,
                f"{total} sources in done",
                every=0.2,
            )
            moved = time.time()
            farm.settled(total, timeout=60 + total / 20)
            saved = time.time()
        finally:
            samples = sampler.stop()
        cpu1, wcpu1 = cpu_times(farm.pid), processes_cpu(pids)
        memory = memory_mb(farm.pid)
        arrived = {}
        with os.scandir(done) as it:
            for entry in it:
                arrived[entry.name] = entry.stat().st_ctime
        rows = farm.rows()
    finally:
        farm.stop()
        if not opts.keep:
            remove(farm.base)
    outcomes: dict[str, int] = {}
    for row in rows:
        outcomes[row["outcome"]] = outcomes.get(row["outcome"], 0) + 1
    starts = [iso_seconds(r["start_time"]) for r in rows]
    round_trips = [
        arrived[r["relative_path"]] - iso_seconds(r["start_time"])
        for r in rows
        if r["relative_path"] in arrived
    ]
    last = max(arrived.values())
    first_start = min(starts)
    own = cpu1["user"] + cpu1["system"] - cpu0["user"] - cpu0["system"]
    worker_cpu = cpu_delta(wcpu0, wcpu1)
    by_worker: dict[str, int] = {}
    for row in rows:
        by_worker[row["worker_name"]] = by_worker.get(row["worker_name"], 0) + 1
    return {
        "files": total,
        "workers": workers,
        "slots_per_worker": slots,
        "spawn_to_all_queued_s": round(queued - spawned, 2),
        "workers_attach_s": round(attached - queued, 2),
        "rows": len(rows),
        "outcomes": outcomes,
        "attempts_over_1": sum(1 for r in rows if r["attempt_count"] != 1),
        "jobs_per_worker": {
            "min": min(by_worker.values()),
            "max": max(by_worker.values()),
            "workers": len(by_worker),
        },
        "resume_to_first_start_s": round(first_start - resumed, 3),
        "resume_to_last_done_s": round(last - resumed, 3),
        "first_start_to_last_done_s": round(last - first_start, 3),
        "resume_to_all_done_seen_s": round(moved - resumed, 3),
        "resume_to_rows_saved_s": round(saved - resumed, 3),
        "rate_jobs_s": round(total / (last - resumed), 1),
        "rate_from_first_start_jobs_s": round(total / (last - first_start), 1),
        "rate_rows_saved_jobs_s": round(total / (saved - resumed), 1),
        "round_trip": distribution(round_trips),
        "admin_cpu_s": round(own, 2),
        "admin_cpu_ms_per_job": round(own * 1000 / total, 2),
        "workers_cpu_s": round(worker_cpu["own"], 2),
        "memory_mb_idle_queued": idle,
        "memory_mb_end": memory,
        "rss_max_sampled_mb": max((rss for _, rss in samples), default=float("nan")),
        "rss_samples": [
            (round(t - resumed, 2), rss) for t, rss in samples[:: max(1, len(samples) // 100)]
        ],
        "load_before": load,
        "load_after": loadavg(),
    }


def run(opts: Any) -> dict[str, Any]:
    """Run B6."""
    base = scratch(opts.tmp, "b6")
    result: dict[str, Any] = {
        "name": "b6",
        "title": (
            f"B6 dispatch ({opts.dispatch_files:,} files, {opts.dispatch_workers} null workers "
            f"× {opts.dispatch_slots} slot{'s' if opts.dispatch_slots != 1 else ''})"
        ),
        "params": {
            "files": opts.dispatch_files,
            "workers": opts.dispatch_workers,
            "slots_per_worker": opts.dispatch_slots,
            "target": "identity (null job: stat, move to done)",
            "stable_for": opts.stable_for,
        },
    }
    try:
        r = dispatch_run(opts, base)
    finally:
        if not opts.keep:
            remove(base)
    result["dispatch"] = r
    peak = max(r["memory_mb_end"]["hwm"], r["rss_max_sampled_mb"])
    rt = r["round_trip"]
    result["metrics"] = [
        metric(
            "jobs/s dispatched and acknowledged (resume → last in done)",
            r["rate_jobs_s"],
            "jobs/s",
            f">= {GOAL_RATE:g}",
            r["rate_jobs_s"] >= GOAL_RATE,
        ),
        metric("  same, from the first job's start", r["rate_from_first_start_jobs_s"], "jobs/s"),
        metric("  resume → every report row saved", r["resume_to_rows_saved_s"], "s"),
        metric(
            "admin peak RSS (VmHWM since start, incl. the scan)",
            peak,
            "MiB",
            f"<= {GOAL_RSS_MB:g}",
            peak <= GOAL_RSS_MB,
        ),
        metric(
            "admin RSS, queue full and idle / after the run",
            f"{r['memory_mb_idle_queued']['rss']} / {r['memory_mb_end']['rss']}",
            "MiB",
        ),
        metric("admin CPU per job", r["admin_cpu_ms_per_job"], "ms"),
        metric("null workers' CPU in all", r["workers_cpu_s"], "s"),
        metric(
            "round trip start → source in done p50 / p99", f"{rt['p50_ms']} / {rt['p99_ms']}", "ms"
        ),
        metric(
            "jobs done exactly once",
            r["outcomes"].get("done", 0),
            "",
            f"{r['files']}",
            r["outcomes"].get("done", 0) == r["files"] == r["rows"] and not r["attempts_over_1"],
        ),
        metric("spawn → all queued (paused, no capacity)", r["spawn_to_all_queued_s"], "s"),
        metric("workers started → all attached", r["workers_attach_s"], "s"),
    ]
    return result
