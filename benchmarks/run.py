"""Run the benchmarks: ``python -m benchmarks.run [b1 … b7] [--files N …]``.

Prints a results table (goal next to each measured value) and writes the JSON results
to ``benchmarks/results/<time>-<names>.json``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
import traceback
from collections.abc import Callable
from typing import Any

from . import (
    b1_overhead,
    b2_efficiency,
    b3_scale,
    b4_scaleout,
    b5_failover,
    b6_dispatch,
    b7_limits,
)
from .common import RESULTS_DIR, loadavg, machine

BENCHMARKS: dict[str, Callable[[argparse.Namespace], dict[str, Any]]] = {
    "b1": b1_overhead.run,
    "b2": b2_efficiency.run,
    "b3": b3_scale.run,
    "b4": b4_scaleout.run,
    "b5": b5_failover.run,
    "b6": b6_dispatch.run,
    "b7": b7_limits.run,
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line: benchmark names and the sizes to shrink them."""
    p = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__)
    p.add_argument(
        "names", nargs="*", metavar="NAME", help="benchmarks to run: b1 … b7 (default: all)"
    )
    p.add_argument("--tmp", default="/tmp", help="folder for the farms (default /tmp)")
    p.add_argument("--keep", action="store_true", help="keep the scratch folders")
    p.add_argument(
        "--stable-for",
        type=float,
        default=0.5,
        help="monitoring.stable-for of every farm (s, default 0.5)",
    )
    p.add_argument(
        "--poll-interval",
        type=float,
        default=10.0,
        help="monitoring.poll-interval (s, default 10, the product default)",
    )
    b1 = p.add_argument_group("B1 overhead")
    b1.add_argument("--files", type=int, default=2000, help="tiny files of the burst (2000)")
    b1.add_argument(
        "--trickle",
        type=int,
        default=200,
        help="files dropped at half the measured rate afterwards (200; 0: none)",
    )
    b2 = p.add_argument_group("B2 efficiency and B4 scale-out")
    b2.add_argument("--clips", type=int, default=24, help="clips (24)")
    b2.add_argument("--clip-seconds", type=float, default=10.0, help="clip duration (10 s)")
    b3 = p.add_argument_group("B3 scale")
    b3.add_argument("--customers", type=int, default=10, help="customers (10)")
    b3.add_argument("--profiles", type=int, default=100, help="profiles per customer (100)")
    b3.add_argument("--files-per-profile", type=int, default=100, help="files per profile (100)")
    b3.add_argument(
        "--leak-jobs",
        type=int,
        default=20000,
        help="jobs of the leak check after the warm-up (20000; 0: skip)",
    )
    b3.add_argument("--warmup", type=int, default=1000, help="warm-up jobs before (1000)")
    b3.add_argument(
        "--leak-budget",
        type=float,
        default=1200.0,
        help="stop the leak check after this many seconds (1200)",
    )
    b4 = p.add_argument_group("B4 scale-out (also --clips, --clip-seconds)")
    b4.add_argument(
        "--scale-workers", default="1,2,4", help="local worker counts, one slot each (1,2,4)"
    )
    b4.add_argument(
        "--scale-rounds",
        type=int,
        default=2,
        help="admin rounds per count: 2 = admin, baseline, admin; 1 = admin, baseline (2)",
    )
    b5 = p.add_argument_group("B5 failover")
    b5.add_argument("--lost-timeout", type=float, default=10.0, help="workers.lost-timeout (10 s)")
    b5.add_argument("--failover-trials", type=int, default=3, help="workers killed (3)")
    b5.add_argument(
        "--kill-after",
        type=float,
        default=1.0,
        help="kill this long after the job's first ffmpeg started (1 s)",
    )
    b5.add_argument(
        "--failover-clip-seconds",
        type=float,
        default=10.0,
        help="duration of the clip whose job is killed (10 s)",
    )
    b6 = p.add_argument_group("B6 dispatch")
    b6.add_argument("--dispatch-files", type=int, default=10000, help="queued files (10000)")
    b6.add_argument("--dispatch-workers", type=int, default=50, help="null workers (50)")
    b6.add_argument(
        "--dispatch-slots", type=int, default=1, help="max-jobs of each null worker (1)"
    )
    b7 = p.add_argument_group("B7 limits (on product defaults: no --stable-for, --poll-interval)")
    b7.add_argument("--b7-rounds", type=int, default=3, help="farm/baseline rounds (3)")
    b7.add_argument("--b7-clips", type=int, default=12, help="clips per batch workload (12)")
    b7.add_argument("--b7-short-seconds", type=float, default=10.0, help="short clips (10 s)")
    b7.add_argument("--b7-long-seconds", type=float, default=60.0, help="long clips (60 s)")
    b7.add_argument("--b7-latency-seconds", type=float, default=2.0, help="single drops (2 s)")
    b7.add_argument("--b7-drops", type=int, default=20, help="drops for drop → queued (20)")
    opts = p.parse_args(argv)
    unknown = [n for n in opts.names if n not in BENCHMARKS]
    if unknown:
        p.error(f"unknown benchmark(s) {', '.join(unknown)}; choose among {', '.join(BENCHMARKS)}")
    return opts


def fmt(value: Any) -> str:
    """A measured value for the table."""
    if value is None:
        return "-"
    if isinstance(value, float):
        if math.isnan(value):
            return "n/a"
        return f"{value:,.3f}" if abs(value) < 10 else f"{value:,.1f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def table(results: list[dict[str, Any]]) -> str:
    """The results as a plain-text table."""
    lines = []
    for r in results:
        lines.append(f"\n== {r.get('title', r['name'])}")
        if "error" in r:
            lines.append(f"   FAILED TO RUN: {r['error']}")
            continue
        width = max(len(m["metric"]) for m in r["metrics"])
        for m in r["metrics"]:
            verdict = {True: "ok", False: "MISSED", None: ""}[m["ok"]]
            measured = f"{fmt(m['measured'])} {m['unit']}".strip()
            goal = f"goal {m['goal']} {m['unit']}".strip() if m["goal"] else ""
            lines.append(f"   {m['metric']:<{width}}  {measured:>16}  {goal:<22} {verdict}")
        lines.append(f"   load before/after: {r.get('load_before')} / {r.get('load_after')}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the chosen benchmarks; print the table; write the JSON; 0 unless one crashed."""
    opts = parse_args(argv)
    names = opts.names or list(BENCHMARKS)
    info = machine(opts.tmp)
    print(
        f"machine: {info['cpu']}, {info['cores']} cores, {info['ram_gib']} GiB, "
        f"Python {info['python']}, {info['ffmpeg']}, /tmp {info['tmp_filesystem']}; "
        f"load {info['loadavg']}",
        flush=True,
    )
    os.makedirs(RESULTS_DIR, exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%S")
    path = os.path.join(RESULTS_DIR, f"{stamp}-{'-'.join(names)}.json")
    results = []
    crashed = False
    for name in names:
        print(f"running {name} …", flush=True)
        started = time.time()
        load = loadavg()
        try:
            result = BENCHMARKS[name](opts)
        except Exception as e:
            traceback.print_exc()
            result = {"name": name, "error": f"{type(e).__name__}: {e}"}
            crashed = True
        result["load_before"] = load
        result["load_after"] = loadavg()
        result["duration_s"] = round(time.time() - started, 1)
        results.append(result)
        print(table([result]), flush=True)
        with open(path, "w") as f:  # after each benchmark: a crash later loses nothing
            json.dump({"machine": info, "options": vars(opts), "results": results}, f, indent=2)
    print("\nRESULTS" + table(results))
    print(f"\nJSON results: {os.path.relpath(path)}")
    return 1 if crashed else 0


if __name__ == "__main__":
    sys.exit(main())
