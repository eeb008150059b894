"""The embedded farm end to end: real admin process, real ffmpeg, real files."""

from __future__ import annotations

import os
import signal
import sys

import av
import pytest
import yaml

from tests.farm import Farm, processes_with, wait_for

#: The duration of the post-process that must be killed: unique to this test run, so
#: that runs of the suite side by side do not see each other's sleepers.
SLEEP_MARK = f"31.{os.getpid() % 10000:04d}"

FAIL_3 = [sys.executable, "-c", "import sys; sys.stderr.write('boom: disk full\\n'); sys.exit(3)"]

CUSTOMER = {
    "name": "ACME",
    "profiles": {
        "all": {
            "allow-without-audio": True,
            "targets": {
                "high": {
                    "type": "audio-video",
                    "extension": "mp4",
                    "video": {"codec": "h264", "height": 180},
                    "audio": {"codec": "aac", "bitrate": 96},
                },
                "vp9": {
                    "type": "video",
                    "extension": "webm",
                    "video": {"codec": "vp9", "width": 160, "height": 160},
                },
                "sound": {"type": "audio", "extension": "mp3", "audio": {"codec": "mp3"}},
                "thumbs": {
                    "type": "thumbnails",
                    "thumbnails": {"interval": 20, "unit": "frames", "max-count": 3, "width": 80},
                },
                "copy": {"type": "identity"},
            },
        },
        "videoonly": {"targets": {"v": {"type": "video", "video": {"height": 120}}}},
        "copyonly": {"targets": {"c": {"type": "identity"}}},
        "post": {
            "targets": {
                "a": {"type": "audio", "extension": "m4a", "post-process": FAIL_3},
            }
        },
        "slow": {
            "transcoding-timeout": 2,
            "targets": {
                "a": {
                    "type": "audio",
                    "extension": "m4a",
                    "post-process": ["sleep", SLEEP_MARK],
                    "post-process-timeout": 60,
                },
            },
        },
    },
}


@pytest.fixture
def farm(tmp_path):
    """A started farm with the ACME customer; stopped after the test."""
    f = Farm(str(tmp_path), {"acme": CUSTOMER})
    f.start()
    yield f
    f.stop()


def probe_streams(path):
    """(video size or None, has audio) of a media file."""
    with av.open(path) as c:
        v = c.streams.video[0] if c.streams.video else None
        return ((v.width, v.height) if v else None, bool(c.streams.audio))


def post_processed(post: list[str], **profile: object) -> dict:
    """A customer whose profile p has one audio target with a post-process command."""
    target = {"type": "audio", "extension": "m4a", "post-process": post}
    return {"name": "ACME", "profiles": {"p": {**profile, "targets": {"a": target}}}}


def sleepers():
    """Processes still running our marker sleep."""
    return processes_with(SLEEP_MARK)


def nice_of(pid):
    """The nice value of a process (field 19 of /proc/PID/stat)."""
    with open(f"/proc/{pid}/stat") as f:
        return int(f.read().rsplit(")", 1)[1].split()[16])


def test_every_target_type_lands_in_outgoing_and_source_in_done(farm, clips):
    """A clip dropped in a subfolder yields all targets, a done source, a report and a row."""
    farm.drop("acme", "all", "news/clip.mp4", clips["av"])
    wait_for(lambda: farm.finished("acme", "all") == 1, 120, "the job to end")
    out = farm.folder("acme", "outgoing", "all")
    [report] = farm.reports("acme", "all", "done")
    assert report["outcome"] == "done", report["failure"]
    assert probe_streams(f"{out}/news/high/clip.mp4") == ((240, 180), True)
    assert probe_streams(f"{out}/news/vp9/clip.webm") == ((160, 160), False)
    assert probe_streams(f"{out}/news/sound/clip.mp3") == (None, True)
    assert sorted(os.listdir(f"{out}/news/thumbs")) == ["clip.1.jpg", "clip.2.jpg", "clip.3.jpg"]
    assert probe_streams(f"{out}/news/thumbs/clip.1.jpg")[0] == (80, 60)
    with open(f"{out}/news/copy/clip.mp4", "rb") as a, open(clips["av"], "rb") as b:
        assert a.read() == b.read()
    assert os.path.exists(os.path.join(farm.folder("acme", "done", "all"), "news", "clip.mp4"))
    assert not os.path.exists(
        os.path.join(farm.folder("acme", "incoming", "all"), "news", "clip.mp4")
    )
    assert os.listdir(farm.folder("acme", "work", "all")) == []
    commands = {t["name"]: t["commands"] for t in report["targets"]}
    assert all(isinstance(c, list) and c for t in commands.values() for c in t), commands
    # Every target names the ffmpeg runs it took, the identity copy its full decode.
    assert all(commands.values()), commands
    [check] = commands["copy"]
    assert "-xerror" in check and check[-3:] == ["-f", "null", "-"], check
    # The job's CPU time is its own programs' (several ffmpeg runs, well under a minute).
    assert 0 < report["cpu_time"] < 60
    assert report["source_info"]["video"]["width"] == 320
    rows = wait_for(lambda: farm.get("/api/v1/reports?customer=ACME")["items"], 20, "the row")
    assert rows[0]["outcome"] == "done" and rows[0]["relative_path"] == "news/clip.mp4"
    assert rows[0]["video_codec"] == "h264" and rows[0]["file_size"] == os.path.getsize(clips["av"])


def test_an_identity_only_profile_decodes_the_source_once(farm, clips):
    """An identity-only profile (B1's): one decode check, named in the report, and the
    copy is the source byte for byte."""
    farm.drop("acme", "copyonly", "once.mp4", clips["av"])
    wait_for(lambda: farm.finished("acme", "copyonly") == 1, 60, "the job")
    [report] = farm.reports("acme", "copyonly", "done")
    [target] = report["targets"]
    [check] = target["commands"]
    assert "-xerror" in check and check[-3:] == ["-f", "null", "-"], check
    assert report["source_info"]["video"]["width"] == 320 and report["cpu_time"] > 0
    with open(
        os.path.join(farm.folder("acme", "outgoing", "copyonly"), "c", "once.mp4"), "rb"
    ) as a:
        with open(clips["av"], "rb") as b:
            assert a.read() == b.read()
    assert os.listdir(farm.folder("acme", "work", "copyonly")) == []


@pytest.mark.parametrize(
    "profile, clip, reason",
    [
        ("all", "text", "not a media file"),
        ("videoonly", "audio", "no video stream for video target 'v'"),
        ("all", "corrupt", "decode error at "),
        ("copyonly", "text", "not a media file"),
        ("copyonly", "corrupt", "decode error at "),
        ("all", "empty", "not a media file: the file is empty"),
        ("copyonly", "empty", "not a media file: the file is empty"),
        ("slow", "audio", "timed out after 2 s"),
        ("post", "audio", "post-process exited 3: boom: disk full"),
    ],
)
def test_failures_say_why_and_leave_nothing_behind(farm, clips, profile, clip, reason):
    """Each failure puts the source in failed with a report giving a human reason."""
    name = "in put" + os.path.splitext(clips[clip])[1]
    farm.drop("acme", profile, name, clips[clip])
    wait_for(lambda: farm.finished("acme", profile) == 1, 120, "the job to end")
    [report] = farm.reports("acme", profile, "failed")
    assert reason in report["failure"]["reason"], report["failure"]
    if clip == "empty":  # refused before any program: no target was started
        assert report["targets"] == [], report["targets"]
    assert os.path.exists(os.path.join(farm.folder("acme", "failed", profile), name))
    assert os.listdir(farm.folder("acme", "incoming", profile)) == []
    outgoing = farm.folder("acme", "outgoing", profile)
    assert (
        not os.path.exists(outgoing)
        or [f for _, _, files in os.walk(outgoing) for f in files] == []
    )
    assert os.listdir(farm.folder("acme", "work", profile)) == []
    # The janitor keeps the failed job's files (and its report) for inspection.
    kept = report["kept_for_inspection"]
    assert kept == f"temp:/.failed/test-local-1/{report['job_id']}"
    kept_dir = os.path.join(farm.temp, kept.split(":/", 1)[1])
    with open(os.path.join(kept_dir, "report.yaml")) as f:
        assert reason in yaml.safe_load(f)["failure"]["reason"]
    assert sleepers() == []  # the timed-out post-process was killed with its group
    assert processes_with(farm.folder("acme", "work", profile)) == []  # no program left
    rows = wait_for(lambda: farm.get("/api/v1/reports?outcome=failed")["items"], 20, "the row")
    assert reason in rows[0]["failure_reason"]


def test_failed_jobs_are_kept_for_inspection_up_to_keep_failed(tmp_path, clips):
    """workers.keep-failed: 2 → the newest two failures stay, listed by the API, also
    after a restart; the oldest is removed."""
    farm = Farm(str(tmp_path), {"acme": CUSTOMER}, max_jobs=1)
    farm.configure("workers", keep_failed=2, heartbeat_interval=0.5, lost_timeout=5)
    farm.start()
    try:
        for i in range(3):
            farm.drop("acme", "all", f"bad {i}.txt", clips["text"])
            wait_for(lambda i=i: farm.finished("acme", "all") == i + 1, 60, f"failure {i}")
        reports = farm.reports("acme", "all", "failed")  # sorted by source name
        newest = sorted(r["job_id"] for r in reports[1:])
        kept_root = os.path.join(farm.temp, ".failed", "test-local-1")
        assert sorted(os.listdir(kept_root)) == newest
        assert not os.path.exists(os.path.join(kept_root, reports[0]["job_id"]))

        def listed():
            items = farm.get("/api/v1/components?kind=transcoder")["items"]
            return sorted(
                (c["name"], c["state"], (c["reason"] or "").split(":")[0], c["relpath"])
                for c in items
            )

        names = [r["relpath"] for r in reports[1:]]
        expected = sorted(
            (r["job_id"], "failed", "not a media file", r["relpath"]) for r in reports[1:]
        )
        assert names == ["bad 1.txt", "bad 2.txt"]
        wait_for(lambda: listed() == expected, 20, "the kept failures in /components")
        [worker] = farm.get("/api/v1/workers")["items"]
        assert worker["components"]["failed_kept"] == 2
        farm.stop()
        farm.start()  # a new worker process finds what its predecessor kept
        wait_for(lambda: listed() == expected, 20, "the kept failures after a restart")
    finally:
        farm.stop()


def test_sigterm_during_a_job_leaves_the_source_and_the_next_start_finishes_it(tmp_path, clips):
    """Stopping mid-job kills the job, keeps the source; the restart does it exactly once."""
    customer = post_processed(["sleep", SLEEP_MARK])
    farm = Farm(str(tmp_path), {"acme": customer})
    farm.start()
    try:
        farm.drop("acme", "p", "clip.m4a", clips["audio"])
        wait_for(lambda: sleepers(), 60, "the post-process to run")
        tasks = farm.get("/api/v1/tasks")["items"]
        assert tasks[0]["relpath"] == "clip.m4a" and tasks[0]["attempt"] == 1
        assert farm.stop() == 0
        assert sleepers() == []
        assert os.listdir(farm.folder("acme", "incoming", "p")) == ["clip.m4a"]
        assert os.listdir(farm.folder("acme", "work", "p")) == []
        assert farm.finished("acme", "p") == 0
        customer["profiles"]["p"]["targets"]["a"]["post-process"] = ["true"]
        farm.write_customer("acme", customer)
        farm.start()
        wait_for(lambda: farm.finished("acme", "p") == 1, 60, "the job to end")
        assert len(farm.reports("acme", "p", "done")) == 1
        assert os.listdir(farm.folder("acme", "done", "p")) == ["clip.m4a"]
        assert os.listdir(farm.folder("acme", "outgoing", "p")) == ["a"]
    finally:
        farm.stop()


def test_the_chart_of_the_last_hour_survives_a_restart(tmp_path, clips):
    """A file done before a restart is still in /throughput's last hour after it (read
    from the reports database), in the minute it ended."""
    farm = Farm(str(tmp_path), {"acme": CUSTOMER})
    farm.start()
    try:
        farm.drop("acme", "copyonly", "before.mp4", clips["av"])
        wait_for(lambda: farm.recorded() == 1, 60, "the job")
        wait_for(lambda: farm.get("/api/v1/reports")["total"] == 1, 20, "its row")
        before = farm.get("/api/v1/throughput")
        assert before["done"] == 1
        farm.stop()
        farm.start()
        after = wait_for(
            lambda: (t := farm.get("/api/v1/throughput"))["done"] == 1 and t, 20, "the seed"
        )
        minute = [m["minute"] for m in before["minutes"] if m["done"]]
        assert [m["minute"] for m in after["minutes"] if m["done"]] == minute
    finally:
        farm.stop()


HOSTILE = [
    "with space.m4a",
    "quo'te\"s.m4a",
    "$(touch PWNED).m4a",
    "semi;colon && echo PWNED.m4a",
    "new\nline.m4a",
    "ünïcödé ファイル.m4a",
    "-leading-dash.m4a",
    "x" * 190 + ".m4a",
    "a/b/c/d/e/f/deep.m4a",
]


def test_hostile_names_transcode_and_nothing_runs_through_a_shell(tmp_path, clips):
    """Every odd name is an ordinary file name end to end."""
    customer = {
        "name": "Odd",
        "profiles": {
            "p": {
                "targets": {"a": {"type": "audio", "extension": "mp3"}, "c": {"type": "identity"}}
            }
        },
    }
    farm = Farm(str(tmp_path), {"odd": customer}, max_jobs=2)
    farm.start()
    try:
        for name in HOSTILE:
            farm.drop("odd", "p", name, clips["audio"])
        wait_for(lambda: farm.finished("odd", "p") == len(HOSTILE), 180, "every job")
        done = farm.reports("odd", "p", "done")
        assert sorted(r["relpath"] for r in done) == sorted(HOSTILE)
        out = farm.folder("odd", "outgoing", "p")
        for name in HOSTILE:
            stem = name.rsplit(".", 1)[0]
            folder, _, base = stem.rpartition("/")
            assert os.path.exists(os.path.join(out, folder, "a", base + ".mp3")), name
            assert os.path.exists(os.path.join(farm.folder("odd", "done", "p"), name)), name
        for top, _, files in os.walk(str(tmp_path)):
            assert "PWNED" not in files, top
        assert not os.path.exists("PWNED")
    finally:
        farm.stop()


def test_same_name_dropped_again_is_transcoded_again(farm, clips):
    """A second file under the same name runs again and replaces the outputs."""
    farm.drop("acme", "post", "again.m4a", clips["audio"])
    wait_for(lambda: farm.finished("acme", "post") == 1, 60, "first job")
    farm.drop("acme", "post", "again.m4a", clips["audio"])
    wait_for(lambda: farm.finished("acme", "post") == 2, 60, "second job")
    assert len({r["job_id"] for r in farm.reports("acme", "post", "failed")}) == 2


def test_pause_holds_new_jobs_and_resume_runs_them(farm, clips):
    """While paused, a dropped file waits in the queue; resume runs it."""
    status, body = farm.request("POST", "/api/v1/pause")
    assert (status, body["state"]) == (200, "paused")
    farm.drop("acme", "videoonly", "wait.mp4", clips["av"])
    queued = wait_for(lambda: farm.get("/api/v1/queue")["items"], 30, "the file to be queued")
    assert queued[0]["relpath"] == "wait.mp4"
    assert farm.get("/api/v1/files?state=queued")["items"][0]["relpath"] == "wait.mp4"
    assert farm.finished("acme", "videoonly") == 0
    assert farm.request("POST", "/api/v1/pause")[0] == 409
    status, body = farm.request("POST", "/api/v1/resume")
    assert (status, body["state"]) == (200, "started")
    wait_for(lambda: farm.finished("acme", "videoonly") == 1, 60, "the job")
    wait_for(lambda: farm.recorded() == 1, 10, "the admin to record it")
    assert farm.get("/api/v1/files?state=done")["items"][0]["relpath"] == "wait.mp4"
    assert farm.get("/api/v1/status")["files"]["done"] == 1


def test_sighup_reload_adds_and_removes_customers_without_restart(farm, clips):
    """A customer file added then SIGHUP: its incoming folder appears and works."""
    farm.write_customer(
        "newco", {"name": "NewCo", "profiles": {"p": {"targets": {"c": {"type": "identity"}}}}}
    )
    farm.signal(signal.SIGHUP)
    incoming = farm.folder("newco", "incoming", "p")
    wait_for(lambda: os.path.isdir(incoming), 30, "the new incoming folder")
    farm.drop("newco", "p", "x.m4a", clips["audio"])
    wait_for(lambda: farm.finished("newco", "p") == 1, 60, "the job")
    farm.remove_customer("newco")
    status, body = farm.request("POST", "/api/v1/reload")
    assert status == 200 and body["removed"] == ["NewCo"]
    farm.write_customer("bad", {"name": "Bad", "profiles": {"p": {"targets": {}}}})
    status, body = farm.request("POST", "/api/v1/reload")
    assert status == 422 and any("at least one target" in p for p in body["error"]["problems"])
    log = wait_for(lambda: "reload refused" in farm.log() and farm.log(), 10, "the log line")
    assert "bad.yaml" in log.split("reload refused", 1)[1]  # logged with its problems


def test_sigkill_of_the_admin_during_a_job_then_restart_adopts_the_job(tmp_path, clips):
    """The local worker outlives the admin; the restarted admin adopts it and its job."""
    customer = post_processed(["sleep", "2.5"])
    farm = Farm(str(tmp_path), {"acme": customer})
    farm.start()
    try:
        farm.drop("acme", "p", "clip.m4a", clips["audio"])
        wait_for(lambda: farm.get("/api/v1/tasks")["items"], 60, "the job to start")
        [worker] = farm.get("/api/v1/workers")["items"]
        farm.signal(signal.SIGKILL)
        assert farm.process is not None
        farm.process.wait(30)
        farm.start()
        wait_for(lambda: farm.finished("acme", "p") == 1, 60, "the job to end")
        [report] = farm.reports("acme", "p", "done")
        assert report["attempt"] == 1  # adopted, not started again
        assert os.listdir(farm.folder("acme", "done", "p")) == ["clip.m4a"]
        assert os.listdir(farm.folder("acme", "work", "p")) == []
        log = farm.log()
        assert "survived the last admin: adopted" in log and "adopted job" in log
        [again] = farm.get("/api/v1/workers")["items"]
        assert again["pid"] == worker["pid"]  # the same process: still one local worker
    finally:
        farm.stop()


def test_sigkill_of_a_worker_during_a_job_kills_its_leftovers_and_retries(tmp_path, clips):
    """A local worker killed outright is restarted; the job runs again as attempt 2."""
    customer = post_processed(["sleep", SLEEP_MARK], **{"max-attempts": 2})
    farm = Farm(str(tmp_path), {"acme": customer})
    farm.start()
    try:
        farm.drop("acme", "p", "clip.m4a", clips["audio"])
        wait_for(lambda: sleepers(), 60, "the post-process to run")
        assert [nice_of(pid) for pid in sleepers()] == [10]  # process-priority → nice
        [worker] = farm.get("/api/v1/workers")["items"]
        os.kill(worker["pid"], signal.SIGKILL)
        customer["profiles"]["p"]["targets"]["a"]["post-process"] = ["true"]
        farm.write_customer("acme", customer)
        farm.signal(signal.SIGHUP)
        wait_for(lambda: farm.finished("acme", "p") == 1, 90, "the job to end")
        [report] = farm.reports("acme", "p", "done")
        assert report["attempt"] == 2
        assert sleepers() == []  # the dead worker's post-process was killed
        assert os.listdir(farm.folder("acme", "work", "p")) == []
        [again] = farm.get("/api/v1/workers")["items"]
        assert again["pid"] != worker["pid"]
    finally:
        farm.stop()


def test_system_failure_is_retried_up_to_max_attempts(tmp_path, clips):
    """A timeout is a system failure: attempt 2 runs, then the file fails with the reason."""
    customer = {
        "name": "R",
        "profiles": {
            "p": {
                "max-attempts": 2,
                "transcoding-timeout": 1,
                "targets": {"a": {"type": "audio", "post-process": ["sleep", SLEEP_MARK]}},
            }
        },
    }
    farm = Farm(str(tmp_path), {"r": customer})
    farm.start()
    try:
        farm.drop("r", "p", "x.m4a", clips["audio"])
        wait_for(lambda: farm.finished("r", "p") == 1, 60, "the job to end")
        [report] = farm.reports("r", "p", "failed")
        assert report["attempt"] == 2
        assert report["failure"]["reason"] == "timed out after 1 s"
        assert report["failure"]["kind"] == "system"
        assert farm.log().count("trying again") == 1
        assert sleepers() == []
    finally:
        farm.stop()


def test_file_removed_while_queued_leaves_the_queue(farm, clips):
    """A queued file deleted by the customer is dequeued and never runs."""
    farm.request("POST", "/api/v1/pause")
    path = farm.drop("acme", "videoonly", "gone.mp4", clips["av"])
    wait_for(lambda: farm.get("/api/v1/queue")["items"], 30, "the file to be queued")
    os.unlink(path)
    wait_for(lambda: not farm.get("/api/v1/queue")["items"], 30, "the file to leave the queue")
    farm.request("POST", "/api/v1/resume")
    assert farm.finished("acme", "videoonly") == 0
    assert "disappeared before it was transcoded: dequeued" in farm.log()


def test_running_task_shows_progress(tmp_path, clips):
    """/api/v1/tasks shows the job's worker, attempt and progress while it runs."""
    customer = {
        "name": "P",
        "profiles": {
            "p": {
                "process-priority": 5,
                "targets": {
                    "v": {
                        "type": "video",
                        "video": {
                            "codec": "av1",
                            "height": 360,
                            "upscale": True,
                            "preset": "veryslow",
                        },
                    }
                },
            }
        },
    }
    farm = Farm(str(tmp_path), {"p": customer})
    farm.start()
    try:
        farm.drop("p", "p", "long.ts", clips["long"])
        task = wait_for(
            lambda: [
                t
                for t in farm.get("/api/v1/tasks")["items"]
                if (t["progress"] or {}).get("percent")
            ],
            60,
            "progress",
        )[0]
        assert task["worker"] == "test-local-1" and task["attempt"] == 1
        assert 0 < task["progress"]["percent"] <= 100
        wait_for(lambda: farm.finished("p", "p") == 1, 300, "the job to end")
    finally:
        farm.stop()


def test_an_identity_only_check_shows_its_progress_in_percent(tmp_path, clips):
    """An identity-only job's decode check describes the source as it starts: the
    running job shows its progress in percent before the check ends. (The ffmpeg here
    reads its input at the clip's own pace, ``-re``, so that the 6 s check is seen.)"""
    from transcoder_admin.media.locate import find_ffmpeg

    paced = os.path.join(str(tmp_path), "paced-ffmpeg")
    with open(paced, "w") as f:
        f.write(f'#!/bin/sh\nexec "{find_ffmpeg()}" -re "$@"\n')
    os.chmod(paced, 0o755)
    farm = Farm(str(tmp_path), {"acme": CUSTOMER})
    farm.configure("transcoding", ffmpeg=paced)
    farm.start()
    try:
        farm.drop("acme", "copyonly", "long.ts", clips["long"])
        [task] = wait_for(
            lambda: [
                t
                for t in farm.get("/api/v1/tasks")["items"]
                if (t["progress"] or {}).get("percent")
            ],
            30,
            "the check's progress in percent",
        )
        assert 0 < task["progress"]["percent"] < 100
        wait_for(lambda: farm.recorded() == 1, 60, "the job to end")
        [report] = farm.reports("acme", "copyonly", "done")
        assert report["source_info"]["duration"] == pytest.approx(6.0, abs=0.1)
    finally:
        farm.stop()


def test_a_job_checks_all_its_outputs_in_one_ffmpeg_and_names_the_invalid_one(tmp_path, clips):
    """The transcoded outputs of a job are described by one ffmpeg run (after the one
    that described the source); an output that is not media fails the job naming its
    target. (The ffmpeg here empties the audio target's output after making it.)"""
    from transcoder_admin.media.locate import find_ffmpeg

    log = os.path.join(str(tmp_path), "ffmpeg-runs.log")
    tampering = os.path.join(str(tmp_path), "tampering-ffmpeg")
    with open(tampering, "w") as f:
        f.write(
            "#!/bin/sh\n"
            f'echo "$*" >> "{log}"\n'
            f'"{find_ffmpeg()}" "$@"\n'
            "code=$?\n"
            "for last; do :; done\n"
            'case "$last" in *-audio.mp3) : > "${last#file:}" ;; esac\n'
            "exit $code\n"
        )
    os.chmod(tampering, 0o755)
    customer = {
        "name": "ACME",
        "profiles": {"all": {**CUSTOMER["profiles"]["all"], "max-attempts": 1}},
    }
    farm = Farm(str(tmp_path), {"acme": customer})
    farm.configure("transcoding", ffmpeg=tampering)
    farm.start()
    try:
        farm.drop("acme", "all", "clip.mp4", clips["av"])
        wait_for(lambda: farm.recorded() == 1, 120, "the job")
        [report] = farm.reports("acme", "all", "failed")
        assert report["failure"]["kind"] == "system"
        assert report["failure"]["reason"] == (
            "output of target 'sound' is invalid: not a media file: the file is empty"
        )
        entries = {t["name"]: t for t in report["targets"]}
        assert entries["sound"]["invalid_output"] and entries["sound"]["reason"]
        assert not entries["high"]["invalid_output"] and entries["high"]["reason"] is None
        with open(log) as f:
            probes = [line.split() for line in f if "-progress" not in line]
        assert len(probes) == 2, probes  # the source, then every transcoded output
        outputs = [arg for arg in probes[1] if arg.startswith("file:")]
        kinds = sorted(o.rsplit("/", 1)[1].split("-", 1)[1] for o in outputs)
        assert kinds == ["audio-video.mp4", "audio.mp3", "video.webm"], outputs
        assert farm.finished("acme", "all") == 1 and farm.folder("acme", "work", "all")
        assert os.listdir(farm.folder("acme", "work", "all")) == []
    finally:
        farm.stop()


def test_reports_land_in_postgresql(tmp_path, clips, postgres_url):
    """With a postgresql+psycopg2 URL the admin creates the schema and writes rows there."""
    import sqlalchemy as sa

    customer = {"name": "PG", "profiles": {"p": {"targets": {"c": {"type": "identity"}}}}}
    farm = Farm(str(tmp_path), {"pg": customer}, reports_url=postgres_url)
    farm.start()
    try:
        farm.drop("pg", "p", "a.m4a", clips["audio"])
        farm.drop("pg", "p", "b.txt", clips["text"])
        wait_for(lambda: farm.finished("pg", "p") == 2, 60, "both jobs")
        body = wait_for(
            lambda: (lambda b: b if b["total"] == 2 else None)(
                farm.get("/api/v1/reports?customer=PG")
            ),
            20,
            "both rows",
        )
        assert {r["outcome"] for r in body["items"]} == {"done", "failed"}
    finally:
        farm.stop()
    engine = sa.create_engine(postgres_url)
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text("SELECT relative_path, outcome, failure_reason FROM transcode_reports")
        ).all()
    engine.dispose()
    rows = sorted(rows)
    assert rows[0] == ("a.m4a", "done", None)
    assert rows[1][:2] == ("b.txt", "failed")
    assert rows[1][2].startswith("not a media file")


def test_twistd_runs_the_same_service(tmp_path, clips):
    """`twistd -n transcoder-admin --config PATH` serves the farm and stops on SIGTERM."""
    import shutil
    import subprocess

    twistd = shutil.which("twistd", path=os.path.dirname(sys.executable))
    assert twistd, "twistd is installed with Twisted"
    customer = {"name": "T", "profiles": {"p": {"targets": {"c": {"type": "identity"}}}}}
    farm = Farm(str(tmp_path), {"t": customer})
    log = open(farm.log_path, "ab")
    farm.process = subprocess.Popen(
        [twistd, "-n", "--pidfile=", "transcoder-admin", "--config", farm.config_path],
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=str(tmp_path),
    )
    log.close()
    try:
        wait_for(farm._started, 60, "twistd to start the admin")
        farm.drop("t", "p", "a.m4a", clips["audio"])
        wait_for(lambda: farm.finished("t", "p") == 1, 60, "the job")
        assert len(farm.reports("t", "p", "done")) == 1
    finally:
        # twistd re-raises the signal it stopped on once the shutdown is complete
        assert farm.stop() in (0, -signal.SIGTERM)
    assert "admin stopped" in farm.log()
    # Files the settings name are checked as `run` checks them: twistd says why, starts nothing.
    farm.configure("notifications", smtp={"trust-roots": "missing-ca.pem"})
    refused = subprocess.run(
        [twistd, "-n", "--pidfile=", "transcoder-admin", "--config", farm.config_path],
        capture_output=True,
        text=True,
        cwd=str(tmp_path),
        timeout=60,
    )
    assert refused.returncode != 0
    assert "notifications.smtp.trust-roots" in refused.stderr + refused.stdout
    assert "missing-ca.pem" in refused.stderr + refused.stdout


def test_poll_mode_without_inotify_takes_files(tmp_path, clips):
    """With monitoring.mode poll (network filesystems) the periodic scan alone works."""
    customer = {"name": "N", "profiles": {"p": {"targets": {"c": {"type": "identity"}}}}}
    farm = Farm(str(tmp_path), {"n": customer}, mode="poll", poll_interval=0.5)
    farm.start()
    try:
        farm.drop("n", "p", "deep/er/a.m4a", clips["audio"])
        wait_for(lambda: farm.finished("n", "p") == 1, 60, "the job")
        assert os.path.exists(os.path.join(farm.folder("n", "done", "p"), "deep/er/a.m4a"))
    finally:
        farm.stop()


def test_reload_leaves_running_jobs_with_the_settings_they_started_with(tmp_path, clips):
    """A job running during a reload finishes with its old target; the next uses the new."""
    customer = {
        "name": "H",
        "profiles": {
            "p": {
                "targets": {
                    "a": {"type": "audio", "extension": "m4a", "post-process": ["sleep", "2"]}
                }
            }
        },
    }
    farm = Farm(str(tmp_path), {"h": customer})
    farm.start()
    try:
        farm.drop("h", "p", "first.m4a", clips["audio"])
        wait_for(lambda: farm.get("/api/v1/tasks")["items"], 30, "the first job to start")
        customer["profiles"]["p"]["targets"]["a"] = {"type": "audio", "extension": "mp3"}
        farm.write_customer("h", customer)
        status, body = farm.request("POST", "/api/v1/reload")
        assert status == 200 and body["changed"] == ["H"]
        farm.drop("h", "p", "second.m4a", clips["audio"])
        wait_for(lambda: farm.finished("h", "p") == 2, 60, "both jobs")
        out = os.path.join(farm.folder("h", "outgoing", "p"), "a")
        assert sorted(os.listdir(out)) == ["first.m4a", "second.mp3"]
    finally:
        farm.stop()


def test_a_post_process_gets_the_jobs_private_copy_of_the_source(tmp_path, clips):
    """%(source)s names the checked private copy in the work folder, not the incoming path."""
    # Exits 3 (a failure in the report) unless the path is under the job's work folder.
    check = 'case "$1" in */source/clip.m4a) [ -f "$1" ] && exit 0;; esac; echo "got $1"; exit 3'
    customer = post_processed(["sh", "-c", check, "sh", "%(source)s"])
    farm = Farm(str(tmp_path), {"acme": customer})
    farm.start()
    try:
        farm.drop("acme", "p", "clip.m4a", clips["audio"])
        wait_for(lambda: farm.finished("acme", "p") == 1, 60, "the job to end")
        assert os.listdir(farm.folder("acme", "done", "p")) == ["clip.m4a"]
        assert not farm.reports("acme", "p", "failed")
    finally:
        farm.stop()


def test_commands_get_a_small_environment_not_the_daemons(tmp_path, clips, monkeypatch):
    """A variable of the admin's environment (a credential, say) does not reach a
    post-process; PATH and SVT_LOG do (README: Operations)."""
    monkeypatch.setenv("TRANSCODER_TEST_SECRET", "s3cret")
    check = (
        '[ -z "$TRANSCODER_TEST_SECRET" ] || { echo "leaked"; exit 3; }; '
        '[ "$SVT_LOG" = 1 ] && [ -n "$PATH" ] || { echo "no PATH or SVT_LOG"; exit 4; }'
    )
    farm = Farm(str(tmp_path), {"acme": post_processed(["sh", "-c", check])})
    farm.start()
    try:
        farm.drop("acme", "p", "clip.m4a", clips["audio"])
        wait_for(lambda: farm.finished("acme", "p") == 1, 60, "the job to end")
        failed = farm.reports("acme", "p", "failed")
        assert not failed, failed[0]["failure"]
        assert os.listdir(farm.folder("acme", "done", "p")) == ["clip.m4a"]
    finally:
        farm.stop()


def test_local_workers_start_with_one_malloc_arena_unless_the_operator_set_it(tmp_path):
    """The spawner gives local workers MALLOC_ARENA_MAX=1 (less resident memory); an
    operator's own value in the admin's environment is kept; a worker on a plain link
    loads no TLS library (test_distributed's TLS workers show the other case works)."""
    farm = Farm(str(tmp_path), {"acme": post_processed(["true"])})

    def worker_environment() -> dict[str, str]:
        [pid] = [pid for pid, cmd in farm.processes() if " worker " in cmd]
        with open(f"/proc/{pid}/environ", "rb") as f:
            pairs = [entry.partition(b"=") for entry in f.read().split(b"\0") if entry]
        return {k.decode(): v.decode() for k, _, v in pairs}

    farm.start()
    try:
        assert worker_environment()["MALLOC_ARENA_MAX"] == "1"
        # Its link to the admin is plain loopback TCP: no pyOpenSSL, no cryptography.
        [pid] = [pid for pid, cmd in farm.processes() if " worker " in cmd]
        with open(f"/proc/{pid}/maps") as f:
            libraries = {line.split()[-1] for line in f if "/" in line}
        assert not [lib for lib in libraries if "/cryptography/" in lib or "/OpenSSL/" in lib]
    finally:
        farm.stop()
    os.environ["MALLOC_ARENA_MAX"] = "4"
    try:
        farm.start()
        try:
            assert worker_environment()["MALLOC_ARENA_MAX"] == "4"
        finally:
            farm.stop()
    finally:
        del os.environ["MALLOC_ARENA_MAX"]
