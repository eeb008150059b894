"""B5 failover: SIGKILL of a worker mid-job → its job running on another worker.

Two *external* workers (``transcoder-admin worker`` processes started by the benchmark,
listed in the admin's ``manager.credentials``, one slot each, heartbeat every 1 s) and
an admin with ``workers.lost-timeout`` of 10 s (``--lost-timeout``). Each trial drops
one copy of the B2 clip (B2 profile: two H.264 renditions and thumbnails, max-attempts
3), waits until its job runs (``/api/v1/tasks``) and its first ffmpeg has run for
``--kill-after`` seconds, SIGKILLs the worker running it, and measures until the job's
attempt 2 runs on the other worker:

- *failover* = ``start_time`` of the final report row (attempt 2: the worker's own
  start of the job) − the moment of the SIGKILL; goal ≤ lost-timeout + 5 s;
- the time the admin's ``/api/v1/tasks`` first showed attempt 2 on the other worker
  (polled every 50 ms), and that row's ``started`` (the admin's dispatch time).

A killed *local* worker would be restarted by the admin at once and its job rerun
quickly; an external one can only be declared lost after ``lost-timeout`` of silence,
which is the case measured here. Between trials the killed worker is started again.
Orphans: the killed worker's ffmpeg runs in its own process group and survives it;
the admin has a surviving worker clean the dead attempt (``clean_job``). Any process of
the dead attempt still alive 10 s after the failover is counted, then killed.
"""

from __future__ import annotations

import os
import signal
import time
from typing import Any

from .common import (
    RENDITIONS,
    RENDITIONS_TEXT,
    BenchFarm,
    count_files,
    credentials_file,
    iso_seconds,
    loadavg,
    metric,
    remove,
    rendition_clip,
    scratch,
    wait_until,
    worker_argv,
)

PROFILE = "b5"
CUSTOMER = {"name": "Bench", "profiles": {PROFILE: {**RENDITIONS, "max-attempts": 3}}}
GOAL_SLACK_S = 5.0
HEARTBEAT_S = 1.0
WORKERS = ("ext1", "ext2")


def find_task(farm: BenchFarm, relpath: str) -> dict[str, Any] | None:
    """The running task of a file, if any."""
    for t in farm.get("/api/v1/tasks")["items"]:
        if t["relpath"] == relpath:
            return dict(t)
    return None


def leftovers(farm: BenchFarm, job_id: str) -> list[int]:
    """Pids of live processes whose command line names a job (its work folder)."""
    return [pid for pid, cmd in farm.processes() if job_id in cmd]


def trial(farm: BenchFarm, opts: Any, index: int, source: str, argvs: dict[str, list[str]]) -> Any:
    """One kill and failover; returns the measurements."""
    farm.wait_for_workers(len(WORKERS))
    wait_until(lambda: not farm.get("/api/v1/tasks")["items"], 120, "an idle farm")
    name = f"t{index:02d}.mp4"
    stage = os.path.join(farm.base, "stage")
    os.makedirs(stage, exist_ok=True)
    with open(source, "rb") as f, open(os.path.join(stage, name), "wb") as out:
        out.write(f.read())
    done = farm.folder("bench", "done", PROFILE)
    before = count_files(done)
    incoming = farm.folder("bench", "incoming", PROFILE)
    os.rename(os.path.join(stage, name), os.path.join(incoming, name))
    first = wait_until(
        lambda: (t := find_task(farm, name)) and t["worker"] and t["job_id"] and t, 60, "the job"
    )
    if first["attempt"] != 1:
        raise RuntimeError(f"the trial's job started as attempt {first['attempt']}")
    job_id = first["job_id"]
    wait_until(lambda: leftovers(farm, job_id), 60, "the job's first ffmpeg", every=0.05)
    time.sleep(opts.kill_after)
    still = find_task(farm, name)
    running = leftovers(farm, job_id)
    if not still or still["job_id"] != job_id or not running:
        raise RuntimeError(
            f"the job ended within --kill-after {opts.kill_after:g} s: use a longer clip"
        )
    victim = first["worker"]
    progress = (still.get("progress") or {}).get("percent")
    killed = time.time()
    farm.daemons[victim].kill()
    seen: dict[str, Any] = {}

    def failed_over() -> bool:
        t = find_task(farm, name)
        if t and t["attempt"] >= 2 and t["worker"] and t["job_id"] != first["job_id"]:
            seen.update(t, seen_at=time.time())
            return True
        return count_files(done) > before  # so quick it was never seen running

    wait_until(failed_over, opts.lost_timeout + 120, "attempt 2", every=0.05)
    wait_until(lambda: count_files(done) > before, 300, "the job to finish")
    farm.settled(before + 1)
    [row] = [r for r in farm.rows() if r["relative_path"] == name]
    started = iso_seconds(row["start_time"])
    orphans: list[int] = []
    try:
        wait_until(lambda: not leftovers(farm, first["job_id"]), 10, "the dead attempt's processes")
    except TimeoutError:
        orphans = leftovers(farm, first["job_id"])
        for pid in orphans:  # ffmpeg of the killed worker's job, started by this benchmark
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    work_left = os.path.isdir(os.path.join(farm.folder("bench", "work", PROFILE), first["job_id"]))
    farm.start_daemon(victim, argvs[victim])  # back for the next trial
    return {
        "file": name,
        "victim": victim,
        "progress_at_kill": progress,
        "job_processes_at_kill": len(running),
        "kill_after_s": round(killed - iso_seconds(first["started"]), 3),
        "outcome": row["outcome"],
        "attempt": row["attempt_count"],
        "final_worker": row["worker_name"],
        "failover_s": round(started - killed, 3),
        "api_dispatch_s": round(iso_seconds(seen["started"]) - killed, 3) if seen else None,
        "api_seen_s": round(seen["seen_at"] - killed, 3) if seen else None,
        "orphan_processes": len(orphans),
        "work_folder_left": work_left,
    }


def run(opts: Any) -> dict[str, Any]:
    """Run B5: ``--failover-trials`` kills of the worker running the job."""
    base = scratch(opts.tmp, "b5")
    source = rendition_clip(opts.failover_clip_seconds)
    goal = opts.lost_timeout + GOAL_SLACK_S
    result: dict[str, Any] = {
        "name": "b5",
        "title": f"B5 failover (2 external workers, lost-timeout {opts.lost_timeout:g} s)",
        "params": {
            "workers": list(WORKERS),
            "lost_timeout": opts.lost_timeout,
            "heartbeat_interval": HEARTBEAT_S,
            "trials": opts.failover_trials,
            "kill_after": opts.kill_after,
            "clip_seconds": opts.failover_clip_seconds,
            "targets": RENDITIONS_TEXT,
        },
    }
    trials: list[dict[str, Any]] = []
    try:
        farm = BenchFarm(
            os.path.join(base, "farm"),
            {"bench": CUSTOMER},
            stable_for=opts.stable_for,
            max_jobs=1,
            local=0,
            poll_interval=opts.poll_interval,
        )
        farm.configure("workers", lost_timeout=opts.lost_timeout, heartbeat_interval=HEARTBEAT_S)
        credentials = credentials_file(farm, "workers.credentials", WORKERS)
        argvs = {
            n: worker_argv(farm, n, credentials, heartbeat_interval=HEARTBEAT_S) for n in WORKERS
        }
        farm.start()
        try:
            for n in WORKERS:
                farm.start_daemon(n, argvs[n])
            load = loadavg()
            for i in range(opts.failover_trials):
                trials.append(trial(farm, opts, i + 1, source, argvs))
            lost_lines = farm.log().count("silent for")
        finally:
            farm.stop()
    finally:
        if not opts.keep:
            remove(base)
    result["trials"] = trials
    result["load_before"], result["load_after"] = load, loadavg()
    failovers = [t["failover_s"] for t in trials]
    worst = max(failovers)
    moved = all(
        t["attempt"] == 2 and t["final_worker"] != t["victim"] and t["outcome"] == "done"
        for t in trials
    )
    result["metrics"] = [
        metric(
            "SIGKILL → attempt 2 started on the other worker, worst",
            worst,
            "s",
            f"<= {goal:g}",
            worst <= goal,
        ),
        metric("  each trial", " / ".join(f"{x:.2f}" for x in failovers), "s"),
        metric(
            "  SIGKILL → admin dispatched attempt 2 (API), each",
            " / ".join(f"{t['api_dispatch_s']}" for t in trials),
            "s",
        ),
        metric(
            "jobs done as attempt 2 on the other worker",
            sum(1 for t in trials if t["attempt"] == 2 and t["final_worker"] != t["victim"]),
            "",
            f"{len(trials)}",
            moved,
        ),
        metric(
            "workers declared lost (admin log)",
            lost_lines,
            "",
            f"{len(trials)}",
            lost_lines == len(trials),
        ),
        metric(
            "dead attempts' processes alive 10 s after failover",
            sum(t["orphan_processes"] for t in trials),
            "",
            "0",
            sum(t["orphan_processes"] for t in trials) == 0,
        ),
    ]
    return result
