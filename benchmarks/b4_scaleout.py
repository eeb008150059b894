"""B4 scale-out: the same real transcodes on 1, 2 and 4 local workers against xargs -P N.

For each N, a farm with ``workers.local: N`` and ``workers.max-jobs: 1`` (N worker
processes with one slot each, started by the admin) transcodes copies of the B2 clip
with the B2 profile (two H.264 renditions and thumbnails). Its wall time (first rename
into incoming → last source in *done*) is compared with ``xargs -P N`` over the very
commands the reports of the first round record (B2's baseline, :func:`run_baseline`).
Order per N: admin, baseline, admin (``--scale-rounds 2``), so load drifting during
the run hits both sides; the ratio uses the mean of the admin rounds.
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

PROFILE = "b4"
CUSTOMER = {"name": "Bench", "profiles": {PROFILE: RENDITIONS}}
GOAL_RATIO = 1.05


def one_size(opts: Any, base: str, source: str, workers: int) -> dict[str, Any]:
    """Admin round(s) and the baseline with ``workers`` local workers of one slot each."""
    folder = os.path.join(base, f"n{workers}")
    farm = BenchFarm(
        os.path.join(folder, "farm"),
        {"bench": CUSTOMER},
        stable_for=opts.stable_for,
        max_jobs=1,
        local=workers,
        poll_interval=opts.poll_interval,
    )
    farm.start()
    rounds: list[dict[str, Any]] = []
    baseline: dict[str, Any] = {}
    try:
        farm.wait_for_workers(workers)
        wait_until(
            lambda: os.path.isdir(farm.folder("bench", "incoming", PROFILE)),
            30,
            "the incoming folder",
        )
        stage = os.path.join(folder, "stage")
        for index in range(max(1, opts.scale_rounds)):
            names = [f"r{index}-{i:03d}.mp4" for i in range(opts.clips)]
            rounds.append(admin_round(farm, source, names, stage, "bench", PROFILE))
            if index == 0:
                baseline = run_baseline(
                    farm,
                    rounds[0]["reports"],
                    os.path.join(folder, "baseline"),
                    source,
                    "bench",
                    PROFILE,
                    workers,
                )
    finally:
        farm.stop()
        if not opts.keep:
            remove(folder)
    for r in rounds:
        del r["reports"]
    admin_wall = sum(r["wall_s"] for r in rounds) / len(rounds)
    return {
        "workers": workers,
        "admin": {"rounds": rounds, "wall_s": round(admin_wall, 3)},
        "baseline": baseline,
        "ratio": round(admin_wall / baseline["wall_s"], 3),
    }


def run(opts: Any) -> dict[str, Any]:
    """Run B4 for each worker count of ``--scale-workers``."""
    sizes = [int(n) for n in str(opts.scale_workers).split(",") if n.strip()]
    base = scratch(opts.tmp, "b4")
    source = rendition_clip(opts.clip_seconds)
    result: dict[str, Any] = {
        "name": "b4",
        "title": f"B4 scale-out ({', '.join(map(str, sizes))} local workers × 1 slot)",
        "params": {
            "clips": opts.clips,
            "clip_seconds": opts.clip_seconds,
            "clip": "640x360 25 fps H.264 + AAC",
            "targets": RENDITIONS_TEXT,
            "workers": sizes,
            "max_jobs": 1,
            "stable_for": opts.stable_for,
            "order": "per N: admin, baseline" + (", admin" * (opts.scale_rounds - 1)),
        },
    }
    runs = []
    try:
        for workers in sizes:
            runs.append(one_size(opts, base, source, workers))
    finally:
        if not opts.keep:
            remove(base)
    result["runs"] = runs
    metrics = []
    for r in runs:
        n = r["workers"]
        walls = " / ".join(f"{x['wall_s']:.2f}" for x in r["admin"]["rounds"])
        used = sorted({w for x in r["admin"]["rounds"] for w in x["workers"]})
        metrics += [
            metric(f"N={n}: admin wall time (rounds {walls})", r["admin"]["wall_s"], "s"),
            metric(f"N={n}: baseline xargs -P {n} wall time", r["baseline"]["wall_s"], "s"),
            metric(
                f"N={n}: wall time ratio admin/baseline",
                r["ratio"],
                "",
                f"<= {GOAL_RATIO}",
                r["ratio"] <= GOAL_RATIO,
            ),
            metric(
                f"N={n}: admin + workers CPU (own, all rounds)",
                round(sum(x["admin_cpu_s"] + x["workers_cpu_s"] for x in r["admin"]["rounds"]), 2),
                "s",
            ),
            metric(f"N={n}: workers that ran jobs", len(used), "", f"{n}", len(used) == n),
        ]
    if len(runs) > 1:
        first = runs[0]["admin"]["wall_s"]
        for r in runs[1:]:
            metrics.append(
                metric(
                    f"speed-up N={r['workers']} vs N={runs[0]['workers']} (admin)",
                    round(first / r["admin"]["wall_s"], 2),
                    "x",
                )
            )
    result["metrics"] = metrics
    return result
