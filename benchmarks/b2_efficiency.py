"""B2 efficiency: real transcodes through the admin against the same ffmpeg commands.

A profile with two H.264 renditions (360p and 240p, veryfast) and thumbnails runs on
2 slots over copies of a 10 s 640x360 clip with audio. The admin's wall time (first
rename into incoming → last source landing in *done*) is compared with running the
very commands the reports record (``targets[].commands``, outputs rewritten to a
scratch folder) with ``xargs -P 2``, one line per job running its commands in order.
"""

from __future__ import annotations

import os
import time
from typing import Any

import yaml

from .common import (
    BenchFarm,
    cached_clip,
    copies,
    count_files,
    cpu_times,
    loadavg,
    metric,
    remove,
    run_xargs,
    scratch,
    shell_command,
    wait_until,
)

PROFILE = {
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
CUSTOMER = {"name": "Bench", "profiles": {"b2": PROFILE}}
GOAL_RATIO = 1.05


def clip(seconds: float) -> str:
    """A 640x360 H.264 + AAC clip of ``seconds``, made once."""
    return cached_clip(
        f"clip-640x360-{seconds:g}s.mp4", duration=seconds, width=640, height=360, fps=25
    )


def read_reports(folder: str) -> list[dict[str, Any]]:
    """Every report file below ``folder``, parsed."""
    reports = []
    if not os.path.isdir(folder):
        return reports
    for name in sorted(os.listdir(folder)):
        if name.endswith(".yaml"):
            with open(os.path.join(folder, name)) as f:
                reports.append(yaml.safe_load(f))
    return reports


def baseline_scripts(
    farm: BenchFarm, reports: list[dict[str, Any]], folder: str, clip_path: str
) -> list[str]:
    """One shell script per job running its recorded commands, paths rewritten."""
    incoming = farm.folder("bench", "incoming", "b2")
    work = os.path.join(farm.temp, "bench", "work", "b2")
    sources = os.path.join(folder, "sources")
    scripts = []
    for i, report in enumerate(sorted(reports, key=lambda r: r["times"]["started"])):
        relpath = report["relpath"]
        job_dir = os.path.join(folder, "jobs", f"{i:03d}")
        os.makedirs(job_dir)
        [source] = copies(clip_path, sources, [relpath])
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


def admin_round(farm: BenchFarm, source: str, names: list[str], stage: str) -> dict[str, Any]:
    """Rename copies of the clip into incoming; wait for every job; measure and collect."""
    incoming = farm.folder("bench", "incoming", "b2")
    done = farm.folder("bench", "done", "b2")
    failed = farm.folder("bench", "failed", "b2")
    already = count_files(done) + count_files(failed)
    staged = copies(source, stage, names)
    load = loadavg()
    cpu0 = cpu_times(farm.pid)
    first = time.time()
    for path in staged:
        os.rename(path, os.path.join(incoming, os.path.basename(path)))
    wait_until(
        lambda: count_files(done) + count_files(failed) >= already + len(names),
        600 + 60 * len(names),
        "every clip to reach done or failed",
    )
    farm.settled(already + len(names))
    cpu1 = cpu_times(farm.pid)
    last = max(os.stat(os.path.join(done, n)).st_ctime for n in names)
    ours = set(names)
    reports = [
        r
        for r in read_reports(farm.folder("bench", "reports-done", "b2"))
        + read_reports(farm.folder("bench", "reports-failed", "b2"))
        if r["relpath"] in ours
    ]
    failures = [r for r in reports if r["outcome"] != "done"]
    if failures or len(reports) != len(names):
        reasons = sorted({str((r.get("failure") or {}).get("reason")) for r in failures})
        raise RuntimeError(f"{len(failures)} of {len(names)} jobs failed: {reasons[:3]}")
    children = cpu1["children"] - cpu0["children"]
    return {
        "wall_s": round(last - first, 3),
        "load_before": load,
        "load_after": loadavg(),
        "admin_cpu_s": round(cpu1["user"] + cpu1["system"] - cpu0["user"] - cpu0["system"], 3),
        "children_cpu_s": round(children, 3),
        "reported_cpu_time_sum_s": round(sum(float(r.get("cpu_time") or 0) for r in reports), 3),
        "real_time_sum_s": round(sum(float(r["real_time"]) for r in reports), 3),
        "reports": reports,
    }


def run(opts: Any) -> dict[str, Any]:
    """Run B2: admin, then the baseline, then the admin again (load drifts both ways)."""
    base = scratch(opts.tmp, "b2")
    source = clip(opts.clip_seconds)
    count = opts.clips
    result: dict[str, Any] = {
        "name": "b2",
        "title": "B2 efficiency (2 renditions + thumbnails, 2 slots)",
        "params": {
            "clips": count,
            "clip_seconds": opts.clip_seconds,
            "clip": "640x360 25 fps H.264 + AAC",
            "targets": "h264 360p crf 23 + h264 240p crf 25 (veryfast, aac) + 5 thumbnails",
            "slots": 2,
            "stable_for": opts.stable_for,
            "order": "admin, baseline, admin",
        },
    }
    try:
        farm = BenchFarm(
            os.path.join(base, "farm"),
            {"bench": CUSTOMER},
            stable_for=opts.stable_for,
            max_jobs=2,
            local=1,
            poll_interval=opts.poll_interval,
        )
        farm.start()
        stage = os.path.join(base, "stage")
        try:
            wait_until(
                lambda: os.path.isdir(farm.folder("bench", "incoming", "b2")),
                30,
                "the incoming folder",
            )
            first = admin_round(farm, source, [f"a{i:03d}.mp4" for i in range(count)], stage)
            folder = os.path.join(base, "baseline")
            scripts = baseline_scripts(farm, first["reports"], folder, source)
            baseline_load = loadavg()
            baseline_wall = run_xargs(scripts, ["sh"])
            baseline_load_after = loadavg()
            jobs = os.path.join(folder, "jobs")
            produced = sum(count_files(os.path.join(jobs, d)) for d in os.listdir(jobs))
            second = admin_round(farm, source, [f"b{i:03d}.mp4" for i in range(count)], stage)
        finally:
            farm.stop()
    finally:
        if not opts.keep:
            remove(base)
    commands = sum(len(t["commands"]) for r in first["reports"] for t in r["targets"])
    for r in (first, second):
        del r["reports"]
    admin_wall = (first["wall_s"] + second["wall_s"]) / 2
    ratio = admin_wall / baseline_wall
    children = first["children_cpu_s"] + second["children_cpu_s"]
    reported = first["reported_cpu_time_sum_s"] + second["reported_cpu_time_sum_s"]
    result.update(
        admin={"first": first, "second": second, "wall_s": round(admin_wall, 3)},
        baseline={
            "wall_s": round(baseline_wall, 3),
            "load_before": baseline_load,
            "load_after": baseline_load_after,
            "commands": commands,
            "outputs": produced,
        },
    )
    result["metrics"] = [
        metric("admin wall time (mean of 2 rounds)", round(admin_wall, 2), "s"),
        metric("  round 1 / round 2", f"{first['wall_s']:.2f} / {second['wall_s']:.2f}", "s"),
        metric("baseline xargs -P 2 wall time (between them)", round(baseline_wall, 2), "s"),
        metric(
            "wall time ratio admin/baseline",
            round(ratio, 3),
            "",
            f"<= {GOAL_RATIO}",
            ratio <= GOAL_RATIO,
        ),
        metric(
            "admin CPU (own, excluding ffmpeg, 2 rounds)",
            round(first["admin_cpu_s"] + second["admin_cpu_s"], 2),
            "s",
        ),
        metric("ffmpeg CPU (admin's children, 2 rounds)", round(children, 2), "s"),
        metric("sum of reports' cpu_time (should equal the line above)", round(reported, 2), "s"),
    ]
    return result
