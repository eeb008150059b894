"""Monitors on workers: placement, moves, stale news, and the worker's side on real folders."""

from __future__ import annotations

import os

from twisted.internet.task import Clock

from transcoder_admin.config.model import MonitoringSection
from transcoder_admin.context.paths import Roots
from transcoder_admin.janitor import Janitor
from transcoder_admin.monitoring.remote import MonitorHost, RemoteMonitoring
from transcoder_admin.proxy import WorkerSet
from transcoder_admin.proxy.components import MONITOR, ComponentSet
from transcoder_admin.wire import decode

from .pbpairs import FakeReactor, RecordingManager


class Manager(RecordingManager):
    """Records every call to a worker; tells where the monitors were placed."""

    def assigned(self) -> dict[str, str]:
        """customer → worker, from the monitor/unmonitor calls in order."""
        placed: dict[str, str] = {}
        for worker, method, args in self.calls:
            if method == "monitor":
                placed[decode(args[1])["customer"]] = worker
            elif method == "unmonitor" and placed.get(args[0]) == worker:
                del placed[args[0]]
        return placed


class Customer:
    def __init__(self, name, profiles):
        self.name = name
        self._profiles = [Profile(n, f) for n, f in profiles.items()]

    def profiles(self):
        return self._profiles


class Profile:
    def __init__(self, name, incoming):
        self.name = name
        self.incoming = incoming

    def folder(self, kind):
        return self.incoming


def setup(workers=("w1", "w2"), customers=("a", "b", "c", "d")):
    clock = Clock()
    ws = WorkerSet(clock, lost_timeout=10)
    manager = Manager()
    ws.manager = manager
    components = ComponentSet(ws)
    janitor = Janitor(components, clock)
    mon = RemoteMonitoring(MonitoringSection(), ws, components.monitors, clock)
    janitor.claim(MONITOR, mon.claims)
    mon.set_customers([Customer(c, {"p": f"default:/{c}/in"}) for c in customers])
    mon.start()
    for w in workers:
        ws.worker_attached(w, {"max_jobs": 1}, [])
    return clock, ws, manager, mon


def test_customers_spread_over_the_attached_workers():
    """Each customer gets one monitor, on the worker with the fewest."""
    _clock, _ws, manager, mon = setup()
    assert sorted(mon.placed) == ["a", "b", "c", "d"]
    counts = {w: list(mon.placed.values()).count(w) for w in ("w1", "w2")}
    assert counts == {"w1": 2, "w2": 2}
    assert manager.assigned() == mon.placed


def test_a_detached_worker_s_monitors_move_and_its_news_is_ignored():
    """Detach → its customers move to the other worker; late events from it are dropped."""
    _clock, ws, manager, mon = setup()
    heard = []
    mon.file_added.subscribe(heard.append)
    moved = [c for c, w in mon.placed.items() if w == "w1"]
    ws.worker_detached("w1")
    assert all(mon.placed[c] == "w2" for c in moved)
    stale = {
        "event": "added",
        "customer": moved[0],
        "profile": "p",
        "relpath": "x.mov",
        "detected_at": 1.0,
        "sig": [1, 2, 3],
    }
    ws.monitor_event("w1", stale)
    assert heard == []
    ws.monitor_event("w2", stale)
    assert [o.key for o in heard] == [(moved[0], "p", "x.mov")]
    # Back again, still watching what it had: the janitor stops what is no longer its own.
    manager.calls.clear()
    had = {"components": {"monitors": sorted(moved)}}
    ws.worker_attached("w1", {"max_jobs": 1, **had}, [])
    _clock.advance(0)
    stopped = sorted(args[0] for w, m, args in manager.calls if w == "w1" and m == "unmonitor")
    mine = {c for c, w in mon.placed.items() if w == "w1"}
    assert stopped == sorted(set(moved) - mine) and stopped
    # w2 only gave up the monitors moved to w1 to balance the load.
    assert {args[0] for w, m, args in manager.calls if w == "w2" and m == "unmonitor"} == mine


def test_no_worker_then_one_attaches():
    """Without workers nothing is placed; the first worker to attach gets every monitor."""
    _clock, ws, manager, mon = setup(workers=())
    assert mon.placed == {}
    ws.worker_attached("w9", {"max_jobs": 1}, [])
    assert set(mon.placed.values()) == {"w9"} and manager.assigned() == mon.placed


def test_removed_customer_is_withdrawn_and_release_reaches_its_monitor():
    """Reload without a customer → unmonitor; a job's end → release on its monitor."""
    _clock, _ws, manager, mon = setup(customers=("a", "b"))
    where = mon.placed["a"]
    mon.release("a", "p", "x.mov")
    assert (where, "monitor_release", ("a", "p", "x.mov")) in manager.calls
    mon.set_customers([Customer("b", {"p": "default:/b/in"})])
    assert "a" not in mon.placed and (where, "unmonitor", ("a",)) in manager.calls


def test_monitor_host_offers_complete_files_with_its_own_roots(tmp_path):
    """The worker's side: a spec of virtual folders, scanned with the worker's roots."""
    reactor = FakeReactor()
    incoming = tmp_path / "media" / "a" / "in"
    incoming.mkdir(parents=True)
    (incoming / "clip.mov").write_bytes(b"x" * 10)
    sent: list[dict] = []
    host = MonitorHost(Roots({"default": str(tmp_path / "media")}), reactor, sent.append)
    settings = MonitoringSection(stable_for=1, mode="poll").model_dump(mode="json")
    host.assign(settings, {"customer": "a", "profiles": {"p": "default:/a/in"}})
    reactor.advance(2)  # stable for 1 s, then the re-check
    host.monitoring.scan_all()
    reactor.advance(1)
    added = [e for e in sent if e["event"] == "added"]
    assert [(e["customer"], e["profile"], e["relpath"]) for e in added] == [("a", "p", "clip.mov")]
    os.unlink(incoming / "clip.mov")
    host.monitoring.scan_all()
    reactor.advance(1)
    assert [e["relpath"] for e in sent if e["event"] == "removed"] == ["clip.mov"]
    host.unassign("a")
    assert host.monitoring.tasks == {}
    host.stop()


def test_monitor_host_never_offers_links_and_names_itself_in_offers(tmp_path):
    """On a worker too: links are not offered but listed (heartbeat), offers carry the
    worker's host and the file's device."""
    reactor = FakeReactor()
    incoming = tmp_path / "media" / "a" / "in"
    incoming.mkdir(parents=True)
    (tmp_path / "media" / "b.mov").write_bytes(b"bob's")
    (incoming / "link.mov").symlink_to(tmp_path / "media" / "b.mov")
    os.link(tmp_path / "media" / "b.mov", incoming / "hard.mov")
    (incoming / "clip.mov").write_bytes(b"x" * 10)
    sent: list[dict] = []
    host = MonitorHost(Roots({"default": str(tmp_path / "media")}), reactor, sent.append)
    settings = MonitoringSection(stable_for=1, mode="poll").model_dump(mode="json")
    host.assign(settings, {"customer": "a", "profiles": {"p": "default:/a/in"}})
    reactor.advance(2)
    host.monitoring.scan_all()
    reactor.advance(1)
    (added,) = [e for e in sent if e["event"] == "added"]
    st = os.stat(incoming / "clip.mov")
    assert added["relpath"] == "clip.mov" and added["host"] == host.monitoring.host
    assert added["sig"] == [st.st_dev, st.st_ino, 10, st.st_mtime_ns]
    beat = {(r["relpath"], r["state"], r["reason"]) for r in host.pending()}
    assert beat == {
        ("link.mov", "ignored", "a symbolic link"),
        ("hard.mov", "ignored", "a file with 2 hard links"),
    }
    host.stop()


def test_admin_side_keeps_host_and_device_and_splits_pending_from_ignored():
    """The admin's offer from a monitor event names the worker's host; heartbeat rows are
    listed as pending or ignored by their state."""
    _clock, ws, _manager, mon = setup()
    heard = []
    mon.file_added.subscribe(heard.append)
    where = mon.placed["a"]
    event = {
        "event": "added",
        "customer": "a",
        "profile": "p",
        "relpath": "x.mov",
        "detected_at": 1.0,
        "sig": [7, 8, 9, 10],
        "host": "worker-host",
    }
    ws.monitor_event(where, event)
    assert heard[0].identity == {
        "dev": 7,
        "ino": 8,
        "size": 9,
        "mtime_ns": 10,
        "host": "worker-host",
    }
    row = {"customer": "a", "profile": "p", "detected": 1.0}
    ws.proxies[where].pending = [
        {**row, "relpath": "up.mov", "state": "pending", "size": 3},
        {**row, "relpath": "l.mov", "state": "ignored", "reason": "a symbolic link"},
    ]
    assert [r["relpath"] for r in mon.pending()] == ["up.mov"]
    assert [r["relpath"] for r in mon.ignored()] == ["l.mov"]
