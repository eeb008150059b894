"""B7 limits: the farm against ``xargs -P 2`` in one sitting, its latency and its memory.

One farm with the product's defaults (``monitoring`` and the profiles' defaults not
set: stable-for 5 s, inotify, a renamed file taken at once) except its roots and one
customer; 1 local worker with 2 slots (``workers.max-jobs: 2``); one H.264 rendition
target (B2's ``r360``: 360p crf 23 veryfast + AAC 128k) in three profiles, one per
workload. Every file is uploaded as an uploader does: written in the incoming folder
under a hidden ``.NAME.part``, then renamed.

Each round runs, in this order, the farm and then its baseline for each workload:

1. ``--b7-clips`` (12) copies of a 10 s 640x360 H.264 + AAC clip, renamed in at once:
   first rename → last source in *done* (ctime), against ``xargs -P 2`` over the very
   argv lists the round's reports record (``targets[].commands``: B2's baseline);
2. the same with a 60 s clip;
3. one 2 s clip dropped on the idle farm: rename → its output in *outgoing* (the
   output's ctime: the commit renames it there, complete), against the same argv alone.

Before the rounds, ``--b7-drops`` (20) single drops of the 2 s clip on the idle farm
give drop → queued: the report's ``times.queued`` (the admin's own clock when it queued
the file, to the microsecond) minus the time taken just before the rename.

Memory (VmRSS from /proc/PID/status) of the admin, the process the benchmark started,
and of its local worker, its child running ``transcoder_admin worker``: idle after the
start (before any job), sampled every 0.1 s while the farm's jobs run (ffmpeg is a
process of its own, not counted), and idle after the run; with VmHWM, the split into
anonymous and file-backed pages, the worker's largest mappings (smaps), and as a hint
the peak RSS of a fresh Python importing each package a worker loads.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from typing import Any

from .common import (
    RENDITIONS,
    BenchFarm,
    MemorySampler,
    admin_round,
    children_running,
    distribution,
    iso_seconds,
    loadavg,
    memory_mb,
    metric,
    read_reports,
    remove,
    rendition_clip,
    run_baseline,
    scratch,
    source_tree,
    spread,
    stage_uploads,
    wait_until,
)

TARGET = {"targets": {"h264": RENDITIONS["targets"]["r360"]}}
TARGET_TEXT = "h264 360p crf 23 veryfast + aac 128k"
SHORT, LONG, LATENCY = "w10", "w60", "lat"
CUSTOMER = {"name": "Bench", "profiles": {p: TARGET for p in (SHORT, LONG, LATENCY)}}
WORKER = ("transcoder_admin", "worker")  # a local worker's command line holds these
GOAL_RATIO = 1.05
GOAL_QUEUED_MS = 100.0
GOAL_WORKER_MB = 60.0
GOAL_ADMIN_MB = 90.0
SETTLE_S = 3.0  # quiet time before an idle memory sample
GAP_S = 0.5  # quiet time before each single drop
SAMPLE_S = 0.1
#: Imports, in this order, of a fresh interpreter: what each adds to its resident memory
#: hints at what a worker's and the admin's are made of.
IMPORTS = {
    "worker": (
        "OpenSSL",
        "twisted.internet.reactor",
        "twisted.spread.pb",
        "yaml",
        "transcoder_admin.worker.daemon",
        "transcoder_admin.job.job",
        "transcoder_admin.media.probe",  # ffmpeg describes the files: no PyAV
    ),
    "admin": (
        "OpenSSL",
        "twisted.internet.reactor",
        "twisted.web.server",
        "twisted.mail.smtp",
        "pydantic",
        "sqlalchemy",
        "transcoder_admin.admin",
        "alembic",
    ),
}


# -- the farm ------------------------------------------------------------------------------


def default_farm(base: str) -> BenchFarm:
    """A farm on the product's defaults but what the benchmark must set: roots, the
    customer, ports, the database, 1 local worker × 2 slots."""
    farm = BenchFarm(os.path.join(base, "farm"), {"bench": CUSTOMER}, max_jobs=2, local=1)
    for section in ("monitoring", "defaults"):  # tests.farm sets both; the product's own
        del farm.admin_config[section]
    farm.write_config()
    return farm


def wait_idle(farm: BenchFarm, quiet: float) -> None:
    """Wait until nothing is pending, queued, running or waiting for the database;
    then ``quiet`` seconds more."""

    def idle() -> bool:
        status = farm.get("/api/v1/status")
        return not (
            status["files"]["pending"]
            or status["queued"]
            or status["running"]
            or status["reports_pending"]
        )

    wait_until(idle, 300, "an idle farm", every=0.1)
    time.sleep(quiet)


def drop_one(farm: BenchFarm, source: str, name: str) -> dict[str, Any]:
    """Upload one file into the idle latency profile; wait for its source in *done*.

    Returns the times from the rename: to detected and queued (the report's times), to
    its output in outgoing and its source in done (their ctimes), and the report."""
    incoming = farm.folder("bench", "incoming", LATENCY)
    done = os.path.join(farm.folder("bench", "done", LATENCY), name)
    [(written, final)] = stage_uploads(source, incoming, [name])
    wait_idle(farm, GAP_S)
    dropped = time.time()
    os.rename(written, final)
    wait_until(lambda: os.path.exists(done), 120, f"{name} in done", every=0.005)
    [report] = [
        r
        for r in read_reports(farm.folder("bench", "reports-done", LATENCY))
        if r["relpath"] == name
    ]
    [output] = [o for t in report["targets"] for o in t["outputs"]]
    placed = os.path.join(farm.media, output.split(":", 1)[1].lstrip("/"))  # default:/…
    times = report["times"]
    return {
        "drop_to_detected_s": iso_seconds(times["detected"]) - dropped,
        "drop_to_queued_s": iso_seconds(times["queued"]) - dropped,
        "drop_to_started_s": iso_seconds(times["started"]) - dropped,
        "drop_to_output_s": os.stat(placed).st_ctime - dropped,
        "drop_to_done_s": os.stat(done).st_ctime - dropped,
        "children_cpu_s": float(report["cpu_time"] or 0),  # the job's ffmpeg, as it reports
        "report": report,
    }


# -- memory ---------------------------------------------------------------------------------


def processes_memory(farm: BenchFarm, workers: list[int]) -> dict[str, Any]:
    """:func:`memory_mb` of the admin and of each local worker."""
    return {"admin": memory_mb(farm.pid), "workers": [memory_mb(pid) for pid in workers]}


def largest_mappings(pid: int, top: int = 10) -> list[tuple[str, float]]:
    """The ``top`` files (or ``[anon]``, ``[heap]``, ``[stack]``) a process maps, by the
    resident memory of their mappings (/proc/PID/smaps), in MiB; a wheel's bundled
    libraries count as one (``av.libs``: PyAV's FFmpeg)."""
    sizes: dict[str, int] = {}
    name = "[anon]"
    with open(f"/proc/{pid}/smaps") as f:
        for line in f:
            head = line.split(None, 1)[0]
            if not head.endswith(":"):  # a mapping: range, perms, offset, dev, inode[, path]
                fields = line.split(None, 5)
                path = fields[5].strip() if len(fields) > 5 else "[anon]"
                folder, name = os.path.split(path)
                if folder.endswith(".libs"):
                    name = os.path.basename(folder)
            elif head == "Rss:":
                sizes[name] = sizes.get(name, 0) + int(line.split()[1])
    ranked = sorted(sizes.items(), key=lambda item: -item[1])[:top]
    return [(name, round(kib / 1024, 1)) for name, kib in ranked]


def import_rss(modules: tuple[str, ...]) -> dict[str, float]:
    """VmRSS (MiB) of one fresh interpreter, bare (``-``) and after importing each module
    in turn: each rise is what that module brings beyond the earlier ones. The second of
    two runs (the first may compile bytecode)."""
    lines = [
        "def rss():",
        "    for line in open('/proc/self/status'):",
        "        if line.startswith('VmRSS:'):",
        "            return line.split()[1]",
        "print('-', rss())",
    ]
    for module in modules:
        lines += [f"import {module}", f"print({module!r}, rss())"]
    for _ in range(2):
        out = subprocess.run(
            [sys.executable, "-c", "\n".join(lines)], capture_output=True, text=True, check=True
        ).stdout
    found = (line.split() for line in out.splitlines())
    return {module: round(int(kib) / 1024, 1) for module, kib in found}


def peaks(
    samplers: dict[int, MemorySampler], windows: list[tuple[float, float]]
) -> dict[int, float]:
    """Per pid, the largest RSS sampled inside any of the windows (start, end)."""
    return {
        pid: max(
            (rss for t, rss in s.samples if any(a <= t <= b for a, b in windows)),
            default=float("nan"),
        )
        for pid, s in samplers.items()
    }


# -- workloads --------------------------------------------------------------------------------


def batch(
    farm: BenchFarm, base: str, source: str, profile: str, index: int, clips: int
) -> dict[str, Any]:
    """One round of a batch workload: the farm, then ``xargs -P 2`` over its argv."""
    names = [f"{profile}-r{index}-{i:03d}.mp4" for i in range(clips)]
    start = time.time()
    farm_run = admin_round(farm, source, names, None, "bench", profile)
    end = time.time()
    folder = os.path.join(base, f"baseline-{profile}-r{index}")
    xargs = run_baseline(farm, farm_run.pop("reports"), folder, source, "bench", profile, 2)
    remove(folder)
    return {"farm": farm_run, "xargs": xargs, "window": (start, end)}


def latency(farm: BenchFarm, base: str, source: str, index: int) -> dict[str, Any]:
    """One round of the latency workload: a drop on the idle farm, then its argv alone."""
    start = time.time()
    drop = drop_one(farm, source, f"lat-r{index}.mp4")
    end = time.time()
    folder = os.path.join(base, f"alone-r{index}")
    alone = run_baseline(farm, [drop.pop("report")], folder, source, "bench", LATENCY, 1)
    remove(folder)
    return {"farm": drop, "alone": alone, "window": (start, end)}


def drops(farm: BenchFarm, source: str, count: int) -> dict[str, Any]:
    """``count`` single drops on the idle farm (the first is the farm's first job)."""
    start = time.time()
    found = [drop_one(farm, source, f"q{i:03d}.mp4") for i in range(count)]
    end = time.time()
    for d in found:
        del d["report"]
    stages = {
        key: distribution([d[f"drop_to_{key}_s"] for d in found])
        for key in ("detected", "queued", "output")
    }
    return {"drops": found, "latency": stages, "window": (start, end)}


def compare(rounds: list[dict[str, Any]], farm_key: str, other: str) -> dict[str, Any]:
    """Medians and ranges of the farm's and the baseline's seconds, their ratio."""
    farm = spread([r["farm"][farm_key] for r in rounds])
    base = spread([r[other]["wall_s"] for r in rounds])
    return {
        "farm_s": farm,
        "baseline_s": base,
        # the same ffmpeg commands: their CPU tells the machine's noise from the farm's cost
        "farm_ffmpeg_cpu_s": spread([r["farm"]["children_cpu_s"] for r in rounds]),
        "baseline_ffmpeg_cpu_s": spread([r[other]["children_cpu_s"] for r in rounds]),
        "ratio": round(farm["median"] / base["median"], 3),
        "round_ratios": [round(r["farm"][farm_key] / r[other]["wall_s"], 3) for r in rounds],
    }


def start_idle(farm: BenchFarm) -> dict[str, Any]:
    """Start the admin, wait for its local worker and an idle farm; sample their memory."""
    farm.start()
    farm.wait_for_workers(1)
    folders = [farm.folder("bench", "incoming", profile) for profile in (SHORT, LONG, LATENCY)]
    wait_until(lambda: all(map(os.path.isdir, folders)), 30, "the incoming folders")
    wait_idle(farm, SETTLE_S)
    workers = children_running(farm.pid, WORKER)
    return {
        "admin_pid": farm.pid,
        "worker_pids": workers,
        "memory": processes_memory(farm, workers),
        "mappings": {pid: largest_mappings(pid) for pid in [farm.pid, *workers]},
    }


def sitting(opts: Any, base: str) -> dict[str, Any]:
    """Start the farm, measure everything in one sitting, stop it; start it again on the
    same database (the first start made the schema) and sample the idle memory."""
    short, long = rendition_clip(opts.b7_short_seconds), rendition_clip(opts.b7_long_seconds)
    tiny = rendition_clip(opts.b7_latency_seconds)
    farm = default_farm(base)
    spawned = time.time()
    samplers: dict[int, MemorySampler] = {}
    try:
        start = start_idle(farm)
        ready = time.time()
        workers = start["worker_pids"]
        samplers = {pid: MemorySampler(pid, SAMPLE_S) for pid in [farm.pid, *workers]}
        for s in samplers.values():
            s.start()
        series = drops(farm, tiny, opts.b7_drops)
        rounds: dict[str, list[dict[str, Any]]] = {SHORT: [], LONG: [], LATENCY: []}
        loads = [loadavg()]  # 1, 5, 15 min: before each round and after the last
        by_round: list[dict[str, Any]] = []  # memory after each round
        for index in range(opts.b7_rounds):
            rounds[SHORT].append(batch(farm, base, short, SHORT, index, opts.b7_clips))
            rounds[LONG].append(batch(farm, base, long, LONG, index, opts.b7_clips))
            rounds[LATENCY].append(latency(farm, base, tiny, index))
            loads.append(loadavg())
            by_round.append(processes_memory(farm, workers))
        finished = time.time()
        wait_idle(farm, SETTLE_S)
        after = processes_memory(farm, workers)
        after_maps = {pid: largest_mappings(pid) for pid in [farm.pid, *workers]}
        workers_end = children_running(farm.pid, WORKER)
    finally:
        for s in samplers.values():
            s.stop()
        farm.stop()
    try:
        restart = start_idle(farm)
    finally:
        farm.stop()
    windows = [series["window"]] + [r["window"] for rs in rounds.values() for r in rs]
    running = peaks(samplers, windows)
    return {
        "spawn_to_ready_s": round(ready - spawned, 2),
        "sitting_s": round(finished - ready, 1),
        "admin_pid": start["admin_pid"],
        "worker_pids": workers,
        "worker_pids_at_end": workers_end,
        "loads": loads,
        "series": series,
        "rounds": rounds,
        "short": compare(rounds[SHORT], "wall_s", "xargs"),
        "long": compare(rounds[LONG], "wall_s", "xargs"),
        "latency": compare(rounds[LATENCY], "drop_to_output_s", "alone"),
        "memory": {
            "idle_after_start": start["memory"],
            "running_peak_sampled": {
                "admin": running[start["admin_pid"]],
                "workers": [running[pid] for pid in workers],
            },
            "after_run": after,
            "idle_after_restart": restart["memory"],
            "mappings_idle": start["mappings"],
            "mappings_after": after_maps,
            "mappings_restart": restart["mappings"],
            "after_each_round": by_round,
            # (seconds since ready, VmRSS MiB), about 200 per process
            "samples": {
                pid: [
                    (round(t - ready, 1), rss) for t, rss in s.samples[:: len(s.samples) // 200 + 1]
                ]
                for pid, s in samplers.items()
            },
        },
    }


def params(opts: Any) -> dict[str, Any]:
    """What was run, for the JSON."""
    return {
        "rounds": opts.b7_rounds,
        "clips": opts.b7_clips,
        "clip_seconds": [opts.b7_short_seconds, opts.b7_long_seconds],
        "latency_clip_seconds": opts.b7_latency_seconds,
        "drops": opts.b7_drops,
        "clip": "640x360 25 fps H.264 + AAC",
        "target": TARGET_TEXT,
        "workers.local": 1,
        "workers.max-jobs": 2,
        "monitoring": "product defaults (stable-for 5 s, inotify, atomic renames)",
        "upload": "written as .NAME.part in incoming, then renamed",
        "order": "per round: 10 s farm, xargs; 60 s farm, xargs; 2 s drop, alone",
    }


def run(opts: Any) -> dict[str, Any]:
    """Run B7."""
    tree = source_tree()  # another engineer may be changing it meanwhile
    base = scratch(opts.tmp, "b7")
    try:
        r = sitting(opts, base)
    finally:
        if not opts.keep:
            remove(base)
    imports = {side: import_rss(modules) for side, modules in IMPORTS.items()}
    return {
        "name": "b7",
        "title": "B7 limits (farm vs xargs -P 2, latency, memory; product defaults)",
        "params": params(opts),
        "tree": {"before": tree, "after": source_tree()},
        "imports_mb": imports,
        "sitting": r,
        "metrics": metrics(r, imports),
    }


def span(s: dict[str, Any], scale: float = 1.0, digits: int = 2) -> str:
    """``median (min–max)`` of a :func:`spread`, scaled."""
    median, low, high = (s[k] * scale for k in ("median", "min", "max"))
    return f"{median:.{digits}f} ({low:.{digits}f}–{high:.{digits}f})"


def pair(a: Any, b: Any) -> str:
    """Two values on one row."""
    return f"{a} / {b}"


def memory_rows(mem: dict[str, Any]) -> list[dict[str, Any]]:
    """RSS of the admin and of each local worker against their goals: VmRSS (RssAnon +
    RssFile) when idle after the start, after the run and after a restart; the peak
    sampled while jobs ran."""
    idle, after, peak = mem["idle_after_start"], mem["after_run"], mem["running_peak_sampled"]
    restart = mem["idle_after_restart"]

    def judged(name: str, states: list[dict[str, float]], goal: float) -> list[dict[str, Any]]:
        times = ("idle after start", "idle after the run", "idle after a restart")
        return [
            metric(
                f"{name} RSS {when} (anon + file)",
                f"{m['rss']} ({m['anon']} + {m['file']})",
                "MiB",
                f"<= {goal:g}",
                m["rss"] <= goal,
            )
            for when, m in zip(times, states, strict=True)
        ]

    rows = judged("admin", [idle["admin"], after["admin"], restart["admin"]], GOAL_ADMIN_MB)
    rows.append(metric("admin RSS peak while jobs run (sampled)", peak["admin"], "MiB"))
    for i, top in enumerate(peak["workers"]):
        name = f"worker {i + 1}"
        states = [idle["workers"][i], after["workers"][i], restart["workers"][i]]
        rows += judged(name, states, GOAL_WORKER_MB)
        rows.append(
            metric(
                f"{name} RSS peak while jobs run (sampled)",
                top,
                "MiB",
                f"<= {GOAL_WORKER_MB:g}",
                top <= GOAL_WORKER_MB,
            )
        )
    for i in range(len(peak["workers"])):
        after_each = " / ".join(str(m["workers"][i]["rss"]) for m in mem["after_each_round"])
        rows.append(metric(f"worker {i + 1} RSS after each round", after_each, "MiB"))
    rows.append(
        metric(
            "VmHWM at the end: admin / workers",
            pair(after["admin"]["hwm"], [w["hwm"] for w in after["workers"]]),
            "MiB",
        )
    )
    return rows


def metrics(r: dict[str, Any], imports: dict[str, dict[str, float]]) -> list[dict[str, Any]]:
    """The results table."""
    rows = []
    for key, label in (("short", "10 s clips"), ("long", "60 s clips")):
        c, goal = r[key], key == "short"
        rows += [
            metric(f"{label}: farm wall time, median (range)", span(c["farm_s"]), "s"),
            metric(f"{label}: xargs -P 2 wall time, median (range)", span(c["baseline_s"]), "s"),
            metric(
                f"{label}: ffmpeg CPU per round, farm / xargs (medians)",
                pair(c["farm_ffmpeg_cpu_s"]["median"], c["baseline_ffmpeg_cpu_s"]["median"]),
                "s",
            ),
            metric(
                f"{label}: ratio farm/xargs of the medians (rounds {c['round_ratios']})",
                c["ratio"],
                "",
                f"<= {GOAL_RATIO}" if goal else "",
                c["ratio"] <= GOAL_RATIO if goal else None,
            ),
        ]
    lat = r["latency"]
    extra = spread(
        [x["farm"]["drop_to_output_s"] - x["alone"]["wall_s"] for x in r["rounds"][LATENCY]]
    )
    rows += [
        metric(
            "2 s clip: rename → output in outgoing, median (range)",
            span(lat["farm_s"], 1000, 0),
            "ms",
        ),
        metric("2 s clip: ffmpeg alone, median (range)", span(lat["baseline_s"], 1000, 0), "ms"),
        metric("2 s clip: farm − ffmpeg alone, median (range)", span(extra, 1000, 0), "ms"),
        metric("2 s clip: ratio farm/ffmpeg alone (medians)", lat["ratio"], ""),
    ]
    series = r["series"]["latency"]
    queued, detected, output = series["queued"], series["detected"], series["output"]
    first = r["series"]["drops"][0]["drop_to_output_s"] * 1000
    rows += [
        metric(
            f"drop → queued p50 ({queued['n']} single drops; report's times.queued)",
            queued["p50_ms"],
            "ms",
            f"<= {GOAL_QUEUED_MS:g}",
            queued["p50_ms"] <= GOAL_QUEUED_MS,
        ),
        metric("drop → queued p95 / max", pair(queued["p95_ms"], queued["max_ms"]), "ms"),
        metric("drop → detected p50 / p95", pair(detected["p50_ms"], detected["p95_ms"]), "ms"),
        metric("drop → output p50 / p95", pair(output["p50_ms"], output["p95_ms"]), "ms"),
        metric("drop → output of the first drop (the farm's first job)", round(first), "ms"),
    ]
    rows += memory_rows(r["memory"])
    if r["worker_pids_at_end"] != r["worker_pids"]:
        rows.append(
            metric(
                "local worker restarted: pids at start / end",
                pair(r["worker_pids"], r["worker_pids_at_end"]),
                "",
            )
        )
    for pid, label in ((r["admin_pid"], "admin"), *((w, "worker") for w in r["worker_pids"])):
        top = r["memory"]["mappings_after"][pid][:6]
        listed = ", ".join(f"{name} {mib}" for name, mib in top)
        rows.append(metric(f"{label}'s largest mappings after the run", listed, "MiB"))
    for side, found in imports.items():
        steps = list(found.items())
        more = ", ".join(f"{m} +{v - steps[i][1]:.1f}" for i, (m, v) in enumerate(steps[1:]))
        rows.append(
            metric(f"fresh python RSS: bare {steps[0][1]}, {side}'s imports in turn", more, "MiB")
        )
    return rows
