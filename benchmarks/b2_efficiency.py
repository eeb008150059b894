"""B2 efficiency: real transcodes through the admin against the same ffmpeg commands.

A profile with two H.264 renditions (360p and 240p, veryfast) and thumbnails runs on
2 slots over copies of a 10 s 640x360 clip with audio. The admin's wall time (first
rename into incoming → last source landing in *done*) is compared with running the
very commands the reports record (``targets[].commands``, outputs rewritten to a
scratch folder) with ``xargs -P 2``, one line per job running its commands in order.
"""

from __future__ import annotations

import os
from typing import Any

from .common import (
    RENDITIONS,
    RENDITIONS_TEXT,
    BenchFarm,
    admin_round,
    metric,
    remove,
    rendition_clip,
    run_baseline,
    scratch,
    wait_until,
)

CUSTOMER = {"name": "Bench", "profiles": {"b2": RENDITIONS}}
GOAL_RATIO = 1.05


def run(opts: Any) -> dict[str, Any]:
    """Run B2: admin, then the baseline, then the admin again (load drifts both ways)."""
    base = scratch(opts.tmp, "b2")
    source = rendition_clip(opts.clip_seconds)
    count = opts.clips
    result: dict[str, Any] = {
        "name": "b2",
        "title": "B2 efficiency (2 renditions + thumbnails, 2 slots)",
        "params": {
            "clips": count,
            "clip_seconds": opts.clip_seconds,
            "clip": "640x360 25 fps H.264 + AAC",
            "targets": RENDITIONS_TEXT,
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
            names = [f"a{i:03d}.mp4" for i in range(count)]
            first = admin_round(farm, source, names, stage, "bench", "b2")
            folder = os.path.join(base, "baseline")
            baseline = run_baseline(farm, first["reports"], folder, source, "bench", "b2", 2)
            names = [f"b{i:03d}.mp4" for i in range(count)]
            second = admin_round(farm, source, names, stage, "bench", "b2")
        finally:
            farm.stop()
    finally:
        if not opts.keep:
            remove(base)
    for r in (first, second):
        del r["reports"]
    admin_wall = (first["wall_s"] + second["wall_s"]) / 2
    baseline_wall = baseline["wall_s"]
    ratio = admin_wall / baseline_wall
    children = first["children_cpu_s"] + second["children_cpu_s"]
    reported = first["reported_cpu_time_sum_s"] + second["reported_cpu_time_sum_s"]
    result.update(
        admin={"first": first, "second": second, "wall_s": round(admin_wall, 3)},
        baseline=baseline,
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
        metric(
            "worker process CPU (own, excluding ffmpeg, 2 rounds)",
            round(first["workers_cpu_s"] + second["workers_cpu_s"], 2),
            "s",
        ),
        metric("ffmpeg CPU (children of admin and workers, 2 rounds)", round(children, 2), "s"),
        metric("sum of reports' cpu_time (should equal the line above)", round(reported, 2), "s"),
    ]
    return result
