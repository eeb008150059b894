"""The distributed farm end to end: an admin, a manager and worker processes on loopback.

Every process is real (``transcoder-admin run``, ``worker``, ``manager``), talks PB over
TCP or TLS with ``twisted.cred`` logins, and runs real ffmpeg on generated clips.  Crashes
are real signals.  Liveness settings are short (heartbeat 0.5 s, lost-timeout 3 s) so a
lost worker shows within seconds.
"""

from __future__ import annotations

import collections
import datetime
import os
import re
import shlex
import signal
import sys

import av

from tests.farm import Farm, free_port, wait_for
from tests.pki import make_ca
from transcoder_admin.media.ffmpeg import find_ffmpeg

CUSTOMER = "acme"
PROFILE = "p"
#: Seconds each job's post-process sleeps: long enough to kill a worker mid-job.
JOB_SECONDS = 2.0


def customer(job_seconds: float = JOB_SECONDS, max_attempts: int = 2) -> dict:
    """One profile, one audio target, and a post-process that keeps the job busy.

    The post-process names its output (under the farm's folder) so a process scan finds
    it if it outlives its job.
    """
    sleep = [sys.executable, "-c", "import sys, time; time.sleep(float(sys.argv[1]))"]
    target = {
        "type": "audio",
        "extension": "m4a",
        "audio": {"codec": "aac", "bitrate": 64},
        "post-process": [*sleep, f"{job_seconds:g}", "%(output)s"],
    }
    return {
        "name": "ACME",
        "profiles": {PROFILE: {"max-attempts": max_attempts, "targets": {"a": target}}},
    }


def make_farm(tmp_path, *, local: int = 0, lost_timeout: float = 3.0, **kw) -> Farm:
    """A farm with short liveness settings whose ffmpeg runs are counted."""
    farm = Farm(str(tmp_path), {CUSTOMER: customer(**kw)}, max_jobs=1, local=local)
    farm.configure("workers", lost_timeout=lost_timeout, heartbeat_interval=0.5)
    farm.configure("transcoding", ffmpeg=counting_ffmpeg(farm))
    return farm


def counting_ffmpeg(farm: Farm) -> str:
    """An ffmpeg wrapper that logs each run's arguments, then runs the real ffmpeg."""
    real = find_ffmpeg()
    folder = os.path.join(farm.base, "bin")
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, "ffmpeg")
    log = os.path.join(farm.base, "ffmpeg-runs.log")
    with open(path, "w") as f:
        f.write(f'#!/bin/sh\necho "$*" >> {shlex.quote(log)}\nexec {shlex.quote(real)} "$@"\n')
    os.chmod(path, 0o755)
    return path


def ffmpeg_runs(farm: Farm) -> dict[str, list[str]]:
    """Source name → the job id of each ffmpeg run that transcoded it (from the wrapper's
    log; a probe, which describes a file and writes nothing, is not one)."""
    runs: dict[str, list[str]] = collections.defaultdict(list)
    try:
        with open(os.path.join(farm.base, "ffmpeg-runs.log")) as f:
            lines = f.read().splitlines()
    except FileNotFoundError:
        return {}
    for line in lines:
        if "-progress" not in line:
            continue  # a probe (of the source or of an output)
        # Jobs read their private copy of the source: <work>/<job id>/source/<name>.
        source = re.search(rf"/work/{PROFILE}/[^/\s]+/source/(\S+)", line)
        job = re.search(rf"/work/{PROFILE}/([^/\s]+)/", line)
        assert source and job, line
        runs[source.group(1)].append(job.group(1))
    return dict(runs)


def drop_clips(farm: Farm, clip: str, count: int, prefix: str = "clip") -> list[str]:
    """Drop ``count`` copies of a clip; returns their names."""
    names = [f"{prefix}{i:02d}.m4a" for i in range(1, count + 1)]
    for name in names:
        farm.drop(CUSTOMER, PROFILE, name, clip)
    return names


def done_reports(farm: Farm) -> list[dict]:
    """The done reports of the profile."""
    return farm.reports(CUSTOMER, PROFILE, "done")


def assert_all_done_once(farm: Farm, names: list[str]) -> dict[str, dict]:
    """Every file done exactly once with a valid output, none failed; reports by name."""
    reports = done_reports(farm)
    assert sorted(r["relpath"] for r in reports) == sorted(names)  # each exactly once
    assert farm.reports(CUSTOMER, PROFILE, "failed") == []
    assert sorted(os.listdir(farm.folder(CUSTOMER, "done", PROFILE))) == sorted(names)
    assert os.listdir(farm.folder(CUSTOMER, "incoming", PROFILE)) == []
    assert not os.path.exists(farm.folder(CUSTOMER, "failed", PROFILE))
    out = os.path.join(farm.folder(CUSTOMER, "outgoing", PROFILE), "a")
    assert sorted(os.listdir(out)) == sorted(names)
    for name in names:
        assert_valid_audio(os.path.join(out, name))
    return {r["relpath"]: r for r in reports}


def assert_valid_audio(path: str) -> None:
    """An AAC file of about the clip's two seconds that decodes to the end."""
    with av.open(path) as c:
        [stream] = c.streams.audio
        assert stream.codec_context.name == "aac"
        assert c.duration is not None and abs(c.duration / 1e6 - 2.0) < 0.2, c.duration
        assert sum(1 for _ in c.decode(stream)) > 50


def workers_up(farm: Farm, names: set[str]) -> list[dict]:
    """The API's workers once exactly ``names`` are attached, else []."""
    items = farm.get("/api/v1/workers")["items"]
    attached = {w["name"] for w in items if w["state"] == "attached"}
    return items if attached == names and len(items) == len(names) else []


def worker_processes(farm: Farm) -> list[int]:
    """Pids of the farm's ``transcoder-admin worker`` processes."""
    return [pid for pid, cmd in farm.processes() if " transcoder_admin worker " in cmd]


def work_is_empty(farm: Farm) -> bool:
    """Whether no job left a work folder (the profile's work folder may be absent)."""
    work = farm.folder(CUSTOMER, "work", PROFILE)
    return not os.path.isdir(work) or os.listdir(work) == []


def test_sigkill_of_a_worker_mid_job_fails_its_job_over(tmp_path, clips, farms):
    """3 workers, 12 files, one worker killed mid-job: every file done exactly once; the
    killed worker's job finished on another worker as attempt 2; the API shows it."""
    farm = make_farm(tmp_path)
    farms.append(farm)
    names = {f"w{i}" for i in (1, 2, 3)}
    creds = farm.write_credentials("workers.credentials", {n: f"secret-{n}" for n in names})
    farm.configure("manager", credentials=creds)
    farm.start()
    for name in sorted(names):
        farm.start_worker(name, creds)
    workers = wait_for(lambda: workers_up(farm, names), 30, "three workers")
    for w in workers:
        assert w["host"] and w["max_jobs"] == 1 and w["load"] == 0 and w["last_heartbeat"]
        assert w["roots"] == {"default": farm.media, "temp": farm.temp}
        datetime.datetime.fromisoformat(w["last_heartbeat"])

    files = drop_clips(farm, clips["audio"], 12)
    task = wait_for(lambda: farm.get("/api/v1/tasks")["items"], 30, "a job to start")[0]
    victim, relpath = task["worker"], task["relpath"]
    assert task["attempt"] == 1
    wait_for(lambda: relpath in ffmpeg_runs(farm), 30, "the victim to run ffmpeg")
    busy = {w["name"]: w["load"] for w in farm.get("/api/v1/workers")["items"]}
    assert busy[victim] == 1
    farm.daemons[victim].kill()

    # The job moves to a survivor as attempt 2 once the victim is lost (3 s of silence).
    seen: list[dict] = []

    def failed_over() -> bool:
        tasks = farm.get("/api/v1/tasks")["items"]
        seen.extend(t for t in tasks if t["relpath"] == relpath and t["attempt"] == 2)
        return bool(seen) or len(done_reports(farm)) == 12

    wait_for(failed_over, 30, "the killed worker's job to run again")
    wait_for(lambda: len(done_reports(farm)) == 12, 60, "all 12 files")
    reports = assert_all_done_once(farm, files)
    assert reports[relpath]["attempt"] == 2 and reports[relpath]["worker"] != victim
    assert seen and seen[0]["worker"] != victim
    assert all(r["attempt"] == 1 for name, r in reports.items() if name != relpath)
    assert {r["worker"] for r in reports.values()} <= names
    assert len(ffmpeg_runs(farm)[relpath]) == 2
    assert f"worker {victim} silent for" in farm.log()
    left = wait_for(lambda: workers_up(farm, names - {victim}), 10, "the victim to be gone")
    assert all(w["load"] == 0 for w in left)
    wait_for(lambda: work_is_empty(farm), 10, "the dead attempt's work folder to go")


def test_sigkill_of_the_admin_mid_job_transcodes_nothing_twice(tmp_path, clips, farms):
    """The admin killed while 3 local workers run jobs, then started again: every file is
    done once by one ffmpeg run, and the same 3 worker processes remain."""
    farm = make_farm(tmp_path, local=3, lost_timeout=3.0)
    farms.append(farm)
    local = {f"test-local-{i}" for i in (1, 2, 3)}
    farm.start()
    before = wait_for(lambda: workers_up(farm, local), 30, "three local workers")
    files = drop_clips(farm, clips["audio"], 9)
    tasks = wait_for(
        lambda: (lambda t: t if len(t) == 3 else None)(farm.get("/api/v1/tasks")["items"]),
        30,
        "three running jobs",
    )
    running = {t["relpath"] for t in tasks}
    wait_for(lambda: running <= set(ffmpeg_runs(farm)), 30, "the workers to run ffmpeg")
    farm.signal(signal.SIGKILL)
    assert farm.process is not None
    farm.process.wait(30)

    farm.start()
    wait_for(lambda: len(done_reports(farm)) == 9, 60, "all 9 files")
    reports = assert_all_done_once(farm, files)
    assert all(r["attempt"] == 1 for r in reports.values())
    runs = ffmpeg_runs(farm)
    assert {name: len(jobs) for name, jobs in runs.items()} == {name: 1 for name in files}
    assert {name: r["job_id"] for name, r in reports.items()} == {
        name: jobs[0] for name, jobs in runs.items()
    }
    log = farm.log()
    assert log.count("survived the last admin: adopted") == 3
    assert "adopted job" in log
    after = wait_for(lambda: workers_up(farm, local), 30, "three local workers")
    assert {w["name"]: w["pid"] for w in after} == {w["name"]: w["pid"] for w in before}
    assert sorted(worker_processes(farm)) == sorted(w["pid"] for w in before)
    wait_for(lambda: work_is_empty(farm), 10, "no work folder left")


def test_a_stopped_worker_past_lost_timeout_moves_nothing(tmp_path, clips, farms):
    """A worker SIGSTOPped past lost-timeout loses its job to another worker; when it
    is continued, its stale attempt is cancelled and moves no file."""
    farm = make_farm(tmp_path, job_seconds=3.0)
    farms.append(farm)
    creds = farm.write_credentials("workers.credentials", {"w1": "one", "w2": "two"})
    farm.configure("manager", credentials=creds)
    farm.start()
    farm.start_worker("w1", creds)
    farm.start_worker("w2", creds)
    wait_for(lambda: workers_up(farm, {"w1", "w2"}), 30, "two workers")
    [name] = drop_clips(farm, clips["audio"], 1)
    [task] = wait_for(lambda: farm.get("/api/v1/tasks")["items"], 30, "the job to start")
    stale, other = task["worker"], ({"w1", "w2"} - {task["worker"]}).pop()
    wait_for(lambda: name in ffmpeg_runs(farm), 30, "the job to run ffmpeg")
    farm.daemons[stale].signal(signal.SIGSTOP)

    def second_attempt() -> list[dict]:
        tasks = farm.get("/api/v1/tasks")["items"]
        return [t for t in tasks if t["attempt"] == 2]

    [retry] = wait_for(second_attempt, 30, "attempt 2")
    assert retry["worker"] == other
    farm.daemons[stale].signal(signal.SIGCONT)  # back while attempt 2 runs
    cancelled = f"worker {stale} runs job {task['job_id']} (attempt 1) that is no longer current"
    wait_for(lambda: cancelled in farm.log(), 30, "the stale attempt to be cancelled")
    wait_for(lambda: len(done_reports(farm)) == 1, 30, "attempt 2 to finish")
    reports = assert_all_done_once(farm, [name])
    assert reports[name]["attempt"] == 2 and reports[name]["worker"] == other
    assert reports[name]["job_id"] == retry["job_id"]
    # The stale worker is back, with nothing left of its attempt.
    wait_for(lambda: workers_up(farm, {"w1", "w2"}), 30, "the stale worker to attach again")
    wait_for(lambda: work_is_empty(farm), 10, "the stale attempt's work folder to go")
    assert os.listdir(farm.folder(CUSTOMER, "done", PROFILE)) == [name]
    assert len(done_reports(farm)) == 1 and farm.reports(CUSTOMER, PROFILE, "failed") == []


def test_workers_mapping_a_root_to_different_folders_both_transcode(tmp_path, clips, farms):
    """Two workers see the media under different local paths (one through a symlink,
    each with its own temp): both take jobs and every output is right."""
    farm = make_farm(tmp_path)
    farms.append(farm)
    creds = farm.write_credentials("workers.credentials", {"w1": "one", "w2": "two"})
    farm.configure("manager", credentials=creds)
    os.makedirs(farm.media, exist_ok=True)
    alias = os.path.join(farm.base, "mnt", "media")
    os.makedirs(os.path.dirname(alias))
    os.symlink(farm.media, alias)
    roots = {
        "w1": {"default": farm.media, "temp": os.path.join(farm.base, "tmp-w1")},
        "w2": {"default": alias, "temp": os.path.join(farm.base, "tmp-w2")},
    }
    farm.start()
    for name, mapping in roots.items():
        farm.start_worker(name, creds, roots=mapping)
    workers = wait_for(lambda: workers_up(farm, {"w1", "w2"}), 30, "two workers")
    assert {w["name"]: w["roots"] for w in workers} == roots
    files = drop_clips(farm, clips["audio"], 4)
    wait_for(lambda: len(done_reports(farm)) == 4, 60, "all 4 files")
    reports = assert_all_done_once(farm, files)
    assert {r["worker"] for r in reports.values()} == {"w1", "w2"}
    for report in reports.values():  # each ran ffmpeg on its own paths
        mapping = roots[report["worker"]]
        argv = report["targets"][0]["commands"][0]
        # ffmpeg reads the job's private copy of the source, in the worker's own temp.
        work = os.path.join(mapping["temp"], CUSTOMER, "work", PROFILE, report["job_id"])
        assert f"file:{work}/source/{report['relpath']}" in argv, argv
        assert argv[-1].startswith(f"file:{mapping['temp']}/"), argv
    for name in ("w1", "w2"):
        work = os.path.join(roots[name]["temp"], CUSTOMER, "work", PROFILE)
        assert not os.path.isdir(work) or os.listdir(work) == []


def test_wrong_credentials_are_refused_and_no_secret_is_logged(tmp_path, clips, farms):
    """A worker with a wrong password never attaches; the manager logs the user and the
    peer's address, never a password; the same worker with the right one attaches."""
    farm = make_farm(tmp_path)
    farms.append(farm)
    right, wrong = "right-secret-8c1f", "wrong-secret-5e7a"
    creds = farm.write_credentials("workers.credentials", {"w1": right})
    bad = farm.write_credentials("bad.credentials", {"w1": wrong})
    farm.configure("manager", credentials=creds)
    farm.start()
    intruder = farm.start_worker("w1", bad)
    refused = re.compile(r"login refused for 'w1' from .*127\.0\.0\.1")
    wait_for(lambda: len(refused.findall(farm.log())) >= 2, 30, "two refused logins")
    assert farm.get("/api/v1/workers")["items"] == []
    assert "cannot log in to the manager" in intruder.log()
    intruder.stop()
    farm.start_worker("w1", creds)  # the same worker, now with the right password
    wait_for(lambda: workers_up(farm, {"w1"}), 30, "w1 with the right password")
    [name] = drop_clips(farm, clips["audio"], 1)
    wait_for(lambda: len(done_reports(farm)) == 1, 30, "the file")
    assert_all_done_once(farm, [name])
    logs = farm.log() + "".join(d.log() for d in farm.daemons.values())
    assert right not in logs and wrong not in logs


def test_workers_attach_over_tls_with_a_test_ca(tmp_path, clips, farms):
    """With the manager on an ssl: endpoint, a worker trusting the test CA attaches over
    TLS and transcodes; one trusting another CA is never attached."""
    farm = make_farm(tmp_path)
    farms.append(farm)
    pki = make_ca(os.path.join(farm.base, "pki"))
    other = make_ca(os.path.join(farm.base, "other-pki"))
    creds = farm.write_credentials("workers.credentials", {"w1": "one", "w2": "two"})
    port = farm.manager_port
    farm.configure(
        "manager",
        credentials=creds,
        listen=f"ssl:{port}:interface=127.0.0.1:privateKey={pki['key']}:certKey={pki['cert']}",
    )
    farm.start()
    farm.start_worker("w1", creds, manager=f"tls:127.0.0.1:{port}:trustRoots={pki['ca_dir']}")
    untrusting = farm.start_worker(
        "w2", creds, manager=f"tls:127.0.0.1:{port}:trustRoots={other['ca_dir']}"
    )
    wait_for(lambda: workers_up(farm, {"w1"}), 30, "w1 over TLS")
    [name] = drop_clips(farm, clips["audio"], 1)
    wait_for(lambda: len(done_reports(farm)) == 1, 30, "the file")
    reports = assert_all_done_once(farm, [name])
    assert reports[name]["worker"] == "w1"
    wait_for(lambda: "certificate verify failed" in untrusting.log(), 30, "w2 refusing")
    assert [w["name"] for w in farm.get("/api/v1/workers")["items"]] == ["w1"]
    assert f"attached to the manager at tls:127.0.0.1:{port}" in farm.daemons["w1"].log()


def test_local_workers_attach_when_the_manager_listens_with_tls(tmp_path, clips, farms):
    """manager.listen on ssl: and workers.local: the local worker logs in over the admin's
    own Unix socket, and transcodes."""
    farm = make_farm(tmp_path, local=1)
    farms.append(farm)
    pki = make_ca(os.path.join(farm.base, "pki"))
    port = farm.manager_port
    farm.configure(
        "manager",
        listen=f"ssl:{port}:interface=127.0.0.1:privateKey={pki['key']}:certKey={pki['cert']}",
    )
    farm.start()
    [worker] = wait_for(lambda: workers_up(farm, {"test-local-1"}), 30, "the local worker")
    [name] = drop_clips(farm, clips["audio"], 1)
    wait_for(lambda: len(done_reports(farm)) == 1, 30, "the file")
    assert assert_all_done_once(farm, [name])[name]["worker"] == "test-local-1"
    assert "manager.sock" in dict(farm.processes())[worker["pid"]]


def test_a_standalone_manager_restart_pauses_and_resumes_the_admin(tmp_path, clips, farms):
    """Admin and worker attach to a standalone manager; when it is killed mid-job the
    admin pauses, and when it is back both attach again, the running job is kept (one
    ffmpeg run) and a file dropped afterwards transcodes."""
    farm = make_farm(tmp_path, lost_timeout=20.0)
    farms.append(farm)
    port = free_port()
    users = farm.write_credentials("manager.credentials", {"admin": "adm-pw", "w1": "one"})
    admin_creds = farm.write_credentials("admin.credentials", {"admin": "adm-pw"})
    worker_creds = farm.write_credentials("w1.credentials", {"w1": "one"})
    manager_config = os.path.join(farm.base, "etc", "manager.yaml")
    with open(manager_config, "w") as f:
        f.write(
            f"roots: {{default: {farm.media}, temp: {farm.temp}}}\n"
            f"manager:\n  listen: tcp:{port}:interface=127.0.0.1\n"
            f"  credentials: manager.credentials\n"
        )
    assert os.path.dirname(users) == os.path.dirname(manager_config)
    farm.configure("manager", connect=f"tcp:127.0.0.1:{port}", credentials=admin_creds)
    manager = farm.start_manager(manager_config)
    wait_for(lambda: "manager listening on" in manager.log(), 30, "the manager")
    farm.start()
    farm.start_worker("w1", worker_creds, manager=f"tcp:127.0.0.1:{port}")
    wait_for(lambda: workers_up(farm, {"w1"}), 30, "w1")
    [first] = drop_clips(farm, clips["audio"], 1, prefix="first")
    wait_for(lambda: len(done_reports(farm)) == 1, 30, "the first file")
    wait_for(lambda: farm.recorded() == 1, 10, "the admin to record it")

    [second] = drop_clips(farm, clips["audio"], 1, prefix="second")
    [task] = wait_for(lambda: farm.get("/api/v1/tasks")["items"], 30, "the second job")
    wait_for(lambda: second in ffmpeg_runs(farm), 30, "the second job to run ffmpeg")
    manager.kill()
    wait_for(lambda: farm.get("/api/v1/status")["state"] == "paused", 30, "the admin to pause")
    assert [t["job_id"] for t in farm.get("/api/v1/tasks")["items"]] == [task["job_id"]]
    manager = farm.start_manager(manager_config)
    wait_for(lambda: farm.get("/api/v1/status")["state"] == "started", 30, "the admin to resume")
    wait_for(lambda: workers_up(farm, {"w1"}), 30, "w1 to attach again")
    wait_for(lambda: len(done_reports(farm)) == 2, 30, "the second file")
    [third] = drop_clips(farm, clips["audio"], 1, prefix="third")
    wait_for(lambda: len(done_reports(farm)) == 3, 30, "the third file")
    reports = assert_all_done_once(farm, [first, second, third])
    assert reports[second]["job_id"] == task["job_id"] and reports[second]["attempt"] == 1
    assert {name: len(jobs) for name, jobs in ffmpeg_runs(farm).items()} == {
        first: 1,
        second: 1,
        third: 1,
    }
    log = farm.log()
    assert "manager detached: pausing" in log and "manager attached again: resuming" in log
    # The worker brought its job (running or waiting for its acknowledgement) back.
    assert re.search(r"worker w1 attached from \S+ \(1 slots, 1 jobs\)", manager.log())


def test_monitors_on_workers_need_no_media_on_the_admin_host(tmp_path, clips, farms):
    """monitoring.on-workers: the admin's default root is an empty folder; the customer's
    monitor runs on a worker that has the media, and moves when that worker is lost."""
    farm = make_farm(tmp_path)
    farms.append(farm)
    creds = farm.write_credentials("workers.credentials", {"w1": "one", "w2": "two"})
    farm.configure("manager", credentials=creds)
    farm.configure("monitoring", on_workers=True)
    elsewhere = os.path.join(farm.base, "admin-sees-no-media")
    os.makedirs(elsewhere)
    farm.configure("roots", default=elsewhere)
    farm.start()
    for name in ("w1", "w2"):
        farm.start_worker(name, creds, roots={"default": farm.media, "temp": farm.temp})
    wait_for(lambda: workers_up(farm, {"w1", "w2"}), 30, "two workers")
    placed = wait_for(
        lambda: re.search(r"monitor of \S+ placed on (w\d)", farm.log()), 30, "the monitor"
    )
    first = drop_clips(farm, clips["audio"], 2)
    wait_for(lambda: len(done_reports(farm)) == 2, 60, "the first files")
    assert os.listdir(elsewhere) == []  # the admin never touched the media
    watcher = placed.group(1)
    other = {"w1": "w2", "w2": "w1"}[watcher]
    farm.daemons[watcher].process.send_signal(signal.SIGKILL)
    farm.daemons[watcher].process.wait(10)
    wait_for(lambda: f"placed on {other}" in farm.log(), 30, "the monitor to move")
    later = drop_clips(farm, clips["audio"], 2, prefix="later")
    wait_for(lambda: len(done_reports(farm)) == 4, 60, "the files dropped after the move")
    reports = assert_all_done_once(farm, first + later)
    assert {reports[name]["worker"] for name in later} == {other}

    def monitors() -> list[str]:
        return [c["worker"] for c in farm.get("/api/v1/components?kind=monitor")["items"]]

    wait_for(lambda: monitors() == [other], 10, "the monitor in /api/v1/components")
    # Restarted to watch from its own host: the monitor on the worker is an orphan.
    farm.signal(signal.SIGTERM)
    assert farm.process is not None and farm.process.wait(60) == 0
    farm.configure("monitoring", on_workers=False)
    farm.configure("roots", default=farm.media)
    farm.start()
    wait_for(lambda: workers_up(farm, {other}), 30, "the worker back")
    wait_for(lambda: monitors() == [], 30, "the janitor to stop the orphan monitor")
    assert re.search(rf"janitor: monitor \S+ on {other} is claimed by no task", farm.log())
    final = drop_clips(farm, clips["audio"], 1, prefix="final")
    wait_for(lambda: len(done_reports(farm)) == 5, 60, "the file dropped after the restart")
    assert_all_done_once(farm, first + later + final)
