"""The ComponentSet and its views, the janitor's rules, and failed jobs kept on disk."""

from __future__ import annotations

import os

from twisted.internet.task import Clock

from transcoder_admin.context.paths import Roots
from transcoder_admin.janitor import Janitor, keep_failed_folder, kept_path, list_kept, prune_kept
from transcoder_admin.job.job import Job, build_report
from transcoder_admin.prognosis import JobFailure
from transcoder_admin.proxy import WorkerSet
from transcoder_admin.proxy.components import MONITOR, TRANSCODER, ComponentSet
from transcoder_admin.records import JobSpec
from transcoder_admin.worker.local import JobHost

from .pbpairs import RecordingManager

LOST = 10.0


def job(job_id, state="running", attempt=1, key=("acme", "web", "a.mov")):
    return {"job_id": job_id, "state": state, "attempt": attempt, "key": list(key)}


def components(monitors=(), failed=()):
    return {
        "components": {
            "monitors": list(monitors),
            "failed": [
                {"job_id": j, "path": f"temp:/.failed/w1/{j}", "reason": "not a media file"}
                for j in failed
            ],
        }
    }


class Recorder:
    """Every event of a ComponentSet and its views, in order."""

    def __init__(self, cs: ComponentSet) -> None:
        self.events: list[tuple[str, str, str]] = []
        for where, source in (("all", cs), ("monitors", cs.monitors), ("jobs", cs.transcoders)):
            source.component_added.subscribe(lambda c, w=where: self.events.append((w, "+", c.id)))
            source.component_removed.subscribe(
                lambda c, w=where: self.events.append((w, "-", c.id))
            )
            source.component_message.subscribe(
                lambda m, w=where: self.events.append((w, "msg", m[0].id))
            )

    def take(self, where: str) -> list[tuple[str, str]]:
        taken = [(kind, cid) for w, kind, cid in self.events if w == where]
        self.events = [e for e in self.events if e[0] != where]
        return taken


def setup():
    clock = Clock()
    ws = WorkerSet(clock, lost_timeout=LOST)
    manager = RecordingManager()
    ws.manager = manager
    cs = ComponentSet(ws)
    return clock, ws, manager, cs, Recorder(cs)


def test_a_worker_s_report_becomes_components_in_the_set_and_its_views():
    """Hello with a job, a monitor and a kept failure: three components, each in its view."""
    _clock, ws, _m, cs, rec = setup()
    ws.worker_attached("w1", {"max_jobs": 2, **components(["acme"], ["J0"])}, [job("J1")])
    assert sorted(c.id for c in cs) == [
        "w1/monitor/acme",
        "w1/transcoder/J0",
        "w1/transcoder/J1",
    ]
    assert [c.name for c in cs.monitors] == ["acme"]
    assert cs.monitors.get("w1", "acme") is not None and cs.monitors.get("w2", "acme") is None
    assert [c.name for c in cs.transcoders.kept("w1")] == ["J0"]
    assert cs.counts("w1") == {"monitors": 1, "jobs": 1, "failed_kept": 1}
    assert sorted(rec.take("monitors")) == [("+", "w1/monitor/acme")]
    assert sorted(rec.take("jobs")) == [("+", "w1/transcoder/J0"), ("+", "w1/transcoder/J1")]
    kept, running = cs.describe(kind=TRANSCODER, worker="w1")
    assert (running["customer"], running["relpath"], running["attempt"]) == ("acme", "a.mov", 1)
    # Every job row has the same keys: a client reads reason and path of any of them.
    assert set(running) == set(kept)
    assert (running["reason"], running["path"]) == (None, None)
    assert (kept["reason"], kept["path"]) == ("not a media file", "temp:/.failed/w1/J0")


def test_heartbeats_add_remove_and_announce_state_changes():
    """A job that finishes is a message; one acknowledged and gone is removed."""
    _clock, ws, _m, cs, rec = setup()
    ws.worker_attached("w1", {"max_jobs": 2}, [])
    rec.take("all")
    ws.worker_heartbeat("w1", {"jobs": [job("J1")], **components()})
    assert rec.take("all") == [("+", "w1/transcoder/J1")]
    ws.worker_heartbeat("w1", {"jobs": [job("J1", "finished")], **components()})
    assert rec.take("all") == [("msg", "w1/transcoder/J1")]
    assert cs.transcoders.get("w1", "J1").state == "finished"
    # It failed: acknowledged, its files kept for inspection; the same component.
    ws.worker_heartbeat("w1", {"jobs": [], **components(failed=["J1"])})
    assert rec.take("all") == [("msg", "w1/transcoder/J1")]
    kept = cs.transcoders.get("w1", "J1")
    assert (kept.state, kept.detail["path"]) == ("failed", "temp:/.failed/w1/J1")
    # The janitor removed it on the worker: gone from the set.
    ws.worker_heartbeat("w1", {"jobs": [], **components()})
    assert rec.take("all") == [("-", "w1/transcoder/J1")]
    assert len(cs) == 0


def test_a_lost_worker_takes_its_components_with_it():
    """Lost-timeout passes: every component of that worker is removed, others stay."""
    clock, ws, _m, cs, rec = setup()
    ws.start()
    ws.worker_attached("w1", {"max_jobs": 1, **components(["a"])}, [job("J1")])
    ws.worker_attached("w2", {"max_jobs": 1, **components(["b"])}, [])
    rec.take("all")
    for _ in range(int(LOST) + 2):
        clock.advance(1)
        ws.worker_heartbeat("w2", {"jobs": [], **components(["b"])})
    assert sorted(rec.take("all")) == [("-", "w1/monitor/a"), ("-", "w1/transcoder/J1")]
    assert [c.id for c in cs] == ["w2/monitor/b"]


def test_monitor_news_is_a_message_of_its_component():
    """A monitor's file event reaches the MonitorSet as that component's message."""
    _clock, ws, _m, cs, _rec = setup()
    ws.worker_attached("w1", {"max_jobs": 1, **components(["acme"])}, [])
    heard = []
    cs.monitors.component_message.subscribe(heard.append)
    event = {"event": "added", "customer": "acme", "profile": "web", "relpath": "x.mov"}
    ws.monitor_event("w1", event)
    [(component, message)] = heard
    assert (component.id, message) == ("w1/monitor/acme", event)


def test_a_worker_that_reports_no_components_keeps_the_monitors_its_news_shows():
    """An earlier worker version: no components key; its monitor does not churn."""
    _clock, ws, _m, cs, rec = setup()
    ws.worker_attached("w1", {"max_jobs": 1}, [])
    event = {"event": "added", "customer": "acme", "profile": "web", "relpath": "x.mov"}
    ws.monitor_event("w1", event)
    for _ in range(3):
        ws.worker_heartbeat("w1", {"jobs": [job("J1")]})
    assert rec.take("monitors") == [("+", "w1/monitor/acme"), ("msg", "w1/monitor/acme")]
    assert sorted(c.id for c in cs) == ["w1/monitor/acme", "w1/transcoder/J1"]
    ws.worker_heartbeat("w1", {"jobs": []})
    assert [c.id for c in cs] == ["w1/monitor/acme"]  # its jobs are still mirrored


def test_the_janitor_stops_unclaimed_monitors_when_a_worker_attaches():
    """Orphans (claimed by no task) are stopped; claimed ones and kept failures stay."""
    clock, ws, manager, cs, _rec = setup()
    janitor = Janitor(cs, clock)
    janitor.claim(MONITOR, lambda c: c.name == "mine")
    ws.on_unknown_job = lambda proxy, job: True  # J1 adopted: the worker set's fence passes
    report = components(["mine", "orphan"], ["J0"])
    ws.worker_attached("w1", {"max_jobs": 1, **report}, [job("J1")])
    assert manager.calls == [], "judged once every part has heard of the worker"
    clock.advance(0)
    assert manager.calls == [("w1", "unmonitor", ("orphan",))]
    assert sorted(c.name for c in cs) == ["J0", "J1", "mine"]  # jobs: no claimer, left alone
    assert janitor.sweep() == []  # nothing left to stop


def keep(temp, job_id, worker="w1"):
    """A failed job's work folder with a partial output and its report, kept."""
    work = temp / "acme" / "work" / "web" / job_id
    work.mkdir(parents=True)
    (work / "partial.mp4").write_bytes(b"x")
    kept = keep_failed_folder(str(work), str(temp), worker, job_id)
    if kept:
        (temp / ".failed" / worker / job_id / "report.yaml").write_text(
            f"attempt: 1\nfailure: {{reason: {job_id} is not media}}\nrelpath: {job_id}.mov\n"
        )
    return kept, work


def test_kept_failures_keep_only_the_newest_even_within_one_clock_tick(tmp_path):
    """Folders move under .failed/<worker>; the newest N stay, by when they were kept,
    not by mtime or name (job ids are random within a second)."""
    temp = tmp_path / "tmp"
    for job_id in ("J9", "J5", "J7", "J1"):  # kept in this order, names unordered
        kept, work = keep(temp, job_id)
        assert kept and not work.exists()
    for name in os.listdir(temp / ".failed" / "w1"):  # one mtime for all: no help
        os.utime(temp / ".failed" / "w1" / name, (1, 1))
    assert kept_path("temp:/acme/work/web/J1", "w1", "J1") == "temp:/.failed/w1/J1"
    snapshot = prune_kept("temp", str(temp), "w1", 2)
    assert [e["job_id"] for e in snapshot.entries] == ["J7", "J1"]
    assert sorted(os.listdir(temp / ".failed" / "w1")) == ["J1", "J7"]
    assert snapshot.entries[1] == {
        "job_id": "J1",
        "path": "temp:/.failed/w1/J1",
        "reason": "J1 is not media",
        "attempt": 1,
        "key": [None, None, "J1.mov"],
    }
    [_default, found] = list_kept({"temp": str(temp), "default": str(tmp_path / "m")}, "w1")
    assert [e["job_id"] for e in found.entries] == ["J7", "J1"] and found.seq == 0
    assert prune_kept("temp", str(temp), "w1", 0).entries == ()  # keep-failed: 0
    assert os.listdir(temp / ".failed" / "w1") == []


def test_a_linked_failed_folder_is_refused_and_nothing_outside_is_touched(tmp_path):
    """.failed as a link out of the root: nothing is kept or removed there."""
    temp, outside = tmp_path / "tmp", tmp_path / "outside"
    (outside / "w1" / "precious").mkdir(parents=True)
    temp.mkdir()
    os.symlink(outside, temp / ".failed")
    kept, work = keep(temp, "J1")
    assert not kept and work.exists()  # the caller removes it
    assert prune_kept("temp", str(temp), "w1", 0).entries == ()
    assert list_kept({"temp": str(temp)}, "w1")[0].entries == ()
    assert os.listdir(outside / "w1") == ["precious"]


def test_the_host_keeps_the_latest_snapshot_whatever_order_they_arrive_in(tmp_path):
    """Two failures committing at once: the later snapshot wins, the earlier is ignored."""
    temp = tmp_path / "tmp"
    host = JobHost("w1", Roots({"temp": str(temp)}), 2, Clock())
    keep(temp, "JA")
    first = prune_kept("temp", str(temp), "w1", 3)
    keep(temp, "JB")
    second = prune_kept("temp", str(temp), "w1", 3)
    host._note_kept(second)
    host._note_kept(first)  # arrives late: stale
    assert [e["job_id"] for e in host.kept_failed()] == ["JA", "JB"]


def failed_job(tmp_path, keep: int, with_work: bool):
    """A job whose failed outcome is ready to commit, on real folders."""
    roots = Roots({"default": str(tmp_path / "media"), "temp": str(tmp_path / "tmp")})
    (tmp_path / "media" / "in").mkdir(parents=True)
    (tmp_path / "media" / "in" / "x.txt").write_text("not media")
    spec = JobSpec.from_wire(
        {
            "job_id": "J1",
            "attempt": 1,
            "customer": "acme",
            "profile": "web",
            "relpath": "x.txt",
            "source": "default:/in/x.txt",
            "done": "default:/done/x.txt",
            "failed": "default:/failed/x.txt",
            "report_done": "default:/reports/done/x.txt.J1.yaml",
            "report_failed": "default:/reports/failed/x.txt.J1.yaml",
            "work": "temp:/acme/work/web/J1",
            "keep_failed": keep,
        }
    )
    job = Job(spec, roots, "w1", Clock())
    if with_work:
        (tmp_path / "tmp" / "acme" / "work" / "web" / "J1").mkdir(parents=True)
    report = build_report(spec, "w1", Clock(), JobFailure("source", "not a media file"))
    return job, report


def test_a_failed_commit_keeps_the_work_folder_and_names_it_in_the_report(tmp_path):
    """keep_failed in the spec: the work folder moves under .failed/w1 with its report."""
    job, report = failed_job(tmp_path, keep=2, with_work=True)
    committed = job.commit_files(report)
    assert committed["kept_for_inspection"] == "temp:/.failed/w1/J1"
    kept = tmp_path / "tmp" / ".failed" / "w1" / "J1"
    assert "not a media file" in (kept / "report.yaml").read_text()
    assert (tmp_path / "media" / "failed" / "x.txt").exists()
    assert job.kept is not None
    assert [(e["job_id"], e["reason"]) for e in job.kept.entries] == [("J1", "not a media file")]


def test_a_report_names_no_folder_when_keeping_failed(tmp_path):
    """.failed is a link: the work folder is removed and the report claims nothing."""
    job, report = failed_job(tmp_path, keep=2, with_work=True)
    os.symlink(tmp_path, tmp_path / "tmp" / ".failed")
    assert "kept_for_inspection" not in job.commit_files(report)
    assert not (tmp_path / "tmp" / "acme" / "work" / "web" / "J1").exists()
    assert (tmp_path / "media" / "failed" / "x.txt").exists()


def test_without_a_work_folder_or_keep_failed_nothing_is_kept_and_the_commit_succeeds(tmp_path):
    """A job that failed before it made its work folder commits as usual; keep 0: removed."""
    job, report = failed_job(tmp_path / "a", keep=2, with_work=False)
    assert "kept_for_inspection" not in job.commit_files(report)
    assert (tmp_path / "a" / "media" / "failed" / "x.txt").exists()
    job, report = failed_job(tmp_path / "b", keep=0, with_work=True)
    earlier, _work = keep(tmp_path / "b" / "tmp", "J0")  # kept while keep-failed was 1
    assert earlier
    assert "kept_for_inspection" not in job.commit_files(report)
    assert not (tmp_path / "b" / "tmp" / "acme" / "work" / "web" / "J1").exists()
    assert os.listdir(tmp_path / "b" / "tmp" / ".failed" / "w1") == []  # keep 0: none


def test_a_new_kept_folder_is_the_newest_even_after_a_clock_step(tmp_path):
    """A folder stamped in the future (clock stepped back since): the new one still wins."""
    temp = tmp_path / "tmp"
    keep(temp, "J1")
    (temp / ".failed" / "w1" / "J1" / ".kept").write_text(f"{10**30}\n")
    keep(temp, "J2")
    snapshot = prune_kept("temp", str(temp), "w1", 1)
    assert [e["job_id"] for e in snapshot.entries] == ["J2"]


def test_a_stamp_that_cannot_be_written_still_keeps_the_folder(tmp_path, monkeypatch):
    """Disk full while stamping: logged; the folder is kept and the commit goes on."""
    import transcoder_admin.janitor as janitor

    def full(path, *args, **kwargs):
        if str(path).endswith(".kept") and "w" in (args[0] if args else kwargs.get("mode", "r")):
            raise OSError(28, "No space left on device")
        return open(path, *args, **kwargs)

    monkeypatch.setattr(janitor, "open", full, raising=False)
    kept, work = keep(tmp_path / "tmp", "J1")
    assert kept and not work.exists()
    assert (tmp_path / "tmp" / ".failed" / "w1" / "J1" / "partial.mp4").exists()
