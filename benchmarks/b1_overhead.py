"""B1 overhead: thousands of tiny files through an identity target, against xargs -P 2.

What is measured:

- files/s end to end (first rename into incoming → last source landing in *done*,
  the last step of a job's commit) against a shell baseline doing the identity
  target's work per file under ``xargs -P 2``: full-decode check with the admin's own
  argv, copy into a work folder, rename into outgoing, move of the source;
- CPU time of the admin process itself (all threads, children excluded) per file;
- latencies from the report rows (``/api/v1/reports``): detection → queued, queued →
  started, started → finished, and finished → done, where "done" is the ctime of the
  source in the done folder (a rename sets it; the source is moved last in the commit,
  after the outputs and the report file).

A burst (every file renamed in at once) measures throughput; a paced "trickle" phase
afterwards (files renamed in at half the measured rate) measures the latencies of an
admin that is not saturated, where queued → started is dispatch latency, not queue wait.
"""

from __future__ import annotations

import os
import time
from typing import Any

from transcoder_admin.media.ffmpeg import decode_check_command

from .common import (
    FFMPEG,
    BenchFarm,
    cached_clip,
    copies,
    count_files,
    cpu_times,
    distribution,
    iso_seconds,
    loadavg,
    memory_mb,
    metric,
    remove,
    run_xargs,
    scratch,
    shell_command,
    wait_until,
)

CUSTOMER = {"name": "Bench", "profiles": {"b1": {"targets": {"copy": {"type": "identity"}}}}}
GOAL_RATIO = 0.8
GOAL_CPU_MS = 5.0
LATENCY_SLACK = 0.1


def tiny_clip() -> str:
    """A 0.2 s 64x64 H.264 + AAC clip (a few kB), made once."""
    return cached_clip("tiny-64x64-0.2s.mp4", duration=0.2, width=64, height=64)


def baseline_script(folder: str) -> str:
    """Write the per-file shell script of the baseline; return its path."""
    src = "/__SOURCE__"
    check = shell_command(
        decode_check_command(FFMPEG, src, describe=True), {"file:" + src: '"file:$1"'}
    )  # the admin's exact argv for an identity-only profile, with the file as $1
    work, out, done = (os.path.join(folder, d) for d in ("work", "outgoing", "done"))
    for d in (work, out, done):
        os.makedirs(d, exist_ok=True)
    path = os.path.join(folder, "identity.sh")
    with open(path, "w") as f:
        f.write(
            "#!/bin/sh\n"
            "# The identity target's work for one file ($1), as a plain script.\n"
            "set -e\n"
            'name="${1##*/}"\n'
            f"{check} >/dev/null 2>&1\n"
            f'cp "$1" "{work}/$name"\n'
            f'mv "{work}/$name" "{out}/$name"\n'
            f'mv "$1" "{done}/$name"\n'
        )
    return path


def run_baseline(base: str, clip: str, files: int) -> dict[str, Any]:
    """Run the baseline on ``files`` copies of the clip; return wall time and rate."""
    folder = os.path.join(base, "baseline")
    sources = copies(clip, os.path.join(folder, "incoming"), names(files, "f"))
    script = baseline_script(folder)
    load = loadavg()
    elapsed = run_xargs(sources, ["sh", script])
    moved = count_files(os.path.join(folder, "done"))
    if moved != files:
        raise RuntimeError(f"baseline moved {moved} of {files} files")
    remove(folder)
    return {"files": files, "wall_s": round(elapsed, 3), "rate": files / elapsed, "load": load}


def names(count: int, prefix: str) -> list[str]:
    """``count`` distinct file names."""
    return [f"{prefix}{i:06d}.mp4" for i in range(count)]


def drop(farm: BenchFarm, staged: list[str], pace: float = 0.0) -> dict[str, float]:
    """Rename staged files into incoming (every ``pace`` s, or at once); name → drop time."""
    incoming = farm.folder("bench", "incoming", "b1")
    times: dict[str, float] = {}
    start = time.time()
    for i, path in enumerate(staged):
        if pace:
            delay = start + i * pace - time.time()
            if delay > 0:
                time.sleep(delay)
        name = os.path.basename(path)
        times[name] = time.time()
        os.rename(path, os.path.join(incoming, name))
    return times


def latencies(
    farm: BenchFarm, rows: list[dict[str, Any]], dropped: dict[str, float]
) -> dict[str, Any]:
    """Per-stage latency distributions of the rows of the files in ``dropped``."""
    done = farm.folder("bench", "done", "b1")
    stages: dict[str, list[float]] = {
        "drop_to_detected": [],
        "detected_to_queued": [],
        "queued_to_started": [],
        "started_to_finished": [],
        "finished_to_done": [],
        "drop_to_done": [],
    }
    for row in rows:
        name = row["relative_path"]
        if name not in dropped:
            continue
        detected = iso_seconds(row["detection_time"])
        queued = iso_seconds(row["queueing_time"])
        started = iso_seconds(row["start_time"])
        finished = iso_seconds(row["finish_time"])
        arrived = os.stat(os.path.join(done, name)).st_ctime
        stages["drop_to_detected"].append(detected - dropped[name])
        stages["detected_to_queued"].append(queued - detected)
        stages["queued_to_started"].append(started - queued)
        stages["started_to_finished"].append(finished - started)
        stages["finished_to_done"].append(arrived - finished)
        stages["drop_to_done"].append(arrived - dropped[name])
    return {stage: distribution(values) for stage, values in stages.items()}


def phase(
    farm: BenchFarm, staged: list[str], pace: float, already: int, timeout: float
) -> dict[str, Any]:
    """Drop files, wait until every source is in done and every row saved; measure."""
    done = farm.folder("bench", "done", "b1")
    failed = farm.folder("bench", "failed", "b1")
    total = already + len(staged)
    load = loadavg()
    workers = [w["pid"] for w in farm.get("/api/v1/workers")["items"] if w.get("pid")]
    cpu0 = cpu_times(farm.pid)
    wcpu0 = [cpu_times(pid) for pid in workers]
    dropped = drop(farm, staged, pace)
    first = min(dropped.values())
    wait_until(
        lambda: count_files(done) + count_files(failed) >= total,
        timeout,
        "every file to reach done or failed",
        every=0.1,
    )
    farm.settled(total)
    cpu1 = cpu_times(farm.pid)
    wcpu1 = [cpu_times(pid) for pid in workers]
    # The local workers are processes of their own: their Python work is the farm's
    # overhead too; their children (ffmpeg) are the media work the baseline also does.
    worker_own = sum(
        b["user"] + b["system"] - a["user"] - a["system"] for a, b in zip(wcpu0, wcpu1, strict=True)
    )
    worker_children = sum(b["children"] - a["children"] for a, b in zip(wcpu0, wcpu1, strict=True))
    last = max(os.stat(os.path.join(done, n)).st_ctime for n in dropped)
    rows = [r for r in farm.rows() if r["relative_path"] in dropped]
    failures = [r for r in rows if r["outcome"] != "done"]
    own = cpu1["user"] + cpu1["system"] - cpu0["user"] - cpu0["system"]
    elapsed = last - first
    return {
        "files": len(staged),
        "pace_s": pace,
        "failed": len(failures),
        "failure_reasons": sorted({str(r["failure_reason"]) for r in failures})[:5],
        "wall_s": round(elapsed, 3),
        "rate": len(staged) / elapsed,
        "admin_cpu_s": round(own, 3),
        "admin_cpu_user_s": round(cpu1["user"] - cpu0["user"], 3),
        "admin_cpu_system_s": round(cpu1["system"] - cpu0["system"], 3),
        "admin_cpu_ms_per_file": round(own * 1000 / len(staged), 2),
        "worker_cpu_ms_per_file": round(worker_own * 1000 / len(staged), 2),
        "farm_cpu_ms_per_file": round((own + worker_own) * 1000 / len(staged), 2),
        "children_cpu_ms_per_file": round(
            (cpu1["children"] - cpu0["children"] + worker_children) * 1000 / len(staged), 2
        ),
        "latency": latencies(farm, rows, dropped),
        "load_before": load,
        "load_after": loadavg(),
        "memory": memory_mb(farm.pid),
    }


def run(opts: Any) -> dict[str, Any]:
    """Run B1 with ``opts.files`` files (and ``opts.trickle`` paced ones)."""
    base = scratch(opts.tmp, "b1")
    clip = tiny_clip()
    stable_for = opts.stable_for
    result: dict[str, Any] = {
        "name": "b1",
        "title": "B1 overhead (identity target, tiny files)",
        "params": {
            "files": opts.files,
            "trickle": opts.trickle,
            "stable_for": stable_for,
            "workers.local": 1,
            "workers.max-jobs": 2,
            "poll_interval": opts.poll_interval,
            "clip_bytes": os.path.getsize(clip),
        },
    }
    try:
        before = run_baseline(base, clip, opts.files)
        farm = BenchFarm(
            os.path.join(base, "farm"),
            {"bench": CUSTOMER},
            stable_for=stable_for,
            max_jobs=2,
            local=1,
            poll_interval=opts.poll_interval,
        )
        farm.start()
        try:
            incoming = farm.folder("bench", "incoming", "b1")
            wait_until(lambda: os.path.isdir(incoming), 30, "the incoming folder")
            stage = os.path.join(base, "stage")
            burst = phase(
                farm, copies(clip, stage, names(opts.files, "f")), 0.0, 0, 60 + opts.files
            )
            trickle = None
            if opts.trickle:
                pace = 2.0 / burst["rate"]  # half the measured throughput
                staged = copies(clip, stage, names(opts.trickle, "t"))
                trickle = phase(farm, staged, pace, opts.files, 60 + opts.trickle * pace * 2)
        finally:
            farm.stop()
        after = run_baseline(base, clip, opts.files)
    finally:
        if not opts.keep:
            remove(base)
    baseline_rate = (before["rate"] + after["rate"]) / 2
    ratio = burst["rate"] / baseline_rate
    result["baseline"] = {"before": before, "after": after, "rate": baseline_rate}
    result["burst"] = burst
    result["trickle"] = trickle
    goal_latency = (stable_for + LATENCY_SLACK) * 1000
    metrics = [
        metric("admin throughput (burst)", round(burst["rate"], 1), "files/s"),
        metric("baseline xargs -P 2 (mean of before/after)", round(baseline_rate, 1), "files/s"),
        metric(
            "throughput ratio admin/baseline",
            round(ratio, 3),
            "",
            f">= {GOAL_RATIO}",
            ratio >= GOAL_RATIO,
        ),
        metric(
            "admin CPU per file (burst)",
            burst["admin_cpu_ms_per_file"],
            "ms",
            f"<= {GOAL_CPU_MS:g}",
            burst["admin_cpu_ms_per_file"] <= GOAL_CPU_MS,
        ),
        metric(
            "local worker processes' own CPU per file (burst)",
            burst["worker_cpu_ms_per_file"],
            "ms",
        ),
        metric(
            "admin + workers CPU per file, ffmpeg excluded (burst)",
            burst["farm_cpu_ms_per_file"],
            "ms",
            f"<= {GOAL_CPU_MS:g}",
            burst["farm_cpu_ms_per_file"] <= GOAL_CPU_MS,
        ),
        metric("failed jobs", burst["failed"], "", "0", burst["failed"] == 0),
    ]
    phases = [("burst", burst)] + ([("trickle", trickle)] if trickle else [])
    for label, data in phases:
        lat = data["latency"]
        for stage, goal in (
            ("detected_to_queued", goal_latency),
            ("queued_to_started", None),
            ("finished_to_done", None),
            ("drop_to_detected", None),
        ):
            for q in ("p50", "p99"):
                value = lat[stage][f"{q}_ms"]
                metrics.append(
                    metric(
                        f"{stage.replace('_', ' ')} {q} ({label})",
                        value,
                        "ms",
                        f"<= {goal:g}" if goal is not None else "",
                        value <= goal if goal is not None else None,
                    )
                )
    if trickle:
        metrics.append(
            metric(
                "admin CPU per file (trickle)",
                trickle["admin_cpu_ms_per_file"],
                "ms",
                f"<= {GOAL_CPU_MS:g}",
                trickle["admin_cpu_ms_per_file"] <= GOAL_CPU_MS,
            )
        )
    result["metrics"] = metrics
    return result
