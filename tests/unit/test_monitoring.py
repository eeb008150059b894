"""Monitoring with inotify: one reader for every folder, narrow re-checks after events.

Real folders and a real inotify instance; the reactor is a MemoryReactorClock whose
"thread pool" (tests/unit/pbpairs.py) runs scans at once, and the tests read inotify
themselves (``pump``).
"""

from __future__ import annotations

import ctypes
import errno
import os
import struct
import threading
from typing import Any

import pytest
from twisted.logger import LogLevel, capturedLogs, formatEvent

from transcoder_admin.config.errors import ConfigError
from transcoder_admin.config.loader import Configuration
from transcoder_admin.config.model import AdminConfig, CustomerConfig, MonitoringSection
from transcoder_admin.context.checks import load_configuration
from transcoder_admin.context.customers import StoreContext
from transcoder_admin.context.paths import Roots
from transcoder_admin.monitoring import TRIGGER_DELAY, FileOffer, Monitoring
from transcoder_admin.monitoring.trigger import IN_Q_OVERFLOW, ChangeTrigger

from .pbpairs import FakeReactor

pytestmark = pytest.mark.skipif(not ChangeTrigger.available(), reason="needs inotify")

IDENTITY = {"targets": {"c": {"type": "identity"}}}


class Setup:
    """A monitoring of customer C with the given profiles on a tmp media root."""

    def __init__(
        self, tmp_path, profiles: list[str], stable_for: float = 1.0, **settings: Any
    ) -> None:
        self.media, self.temp = str(tmp_path / "media"), str(tmp_path / "tmp")
        self.roots = Roots({"default": self.media, "temp": self.temp})
        self.reactor = FakeReactor()
        section = MonitoringSection.model_validate(
            {"stable-for": stable_for, "poll-interval": 60, "mode": "inotify", **settings}
        )
        self.mon = Monitoring(section, self.roots, self.reactor, host="scanner-host")
        self.added: list[tuple[str, str]] = []
        self.offers: list[FileOffer] = []
        self.removed: list[tuple[str, str]] = []
        self.mon.file_added.subscribe(lambda o: self.added.append((o.profile, o.relpath)))
        self.mon.file_added.subscribe(self.offers.append)
        self.mon.file_removed.subscribe(lambda o: self.removed.append((o.profile, o.relpath)))
        self.requests: list[dict[str, Any]] = []
        run_scan = self.mon.run_scan

        def spy(requests):
            self.requests.append(requests)
            return run_scan(requests)

        self.mon.run_scan = spy  # type: ignore[method-assign]
        self.set_profiles(profiles)

    def set_profiles(self, profiles: list[str]) -> None:
        """(Re)load customer C with these profiles."""
        admin = AdminConfig.model_validate({"roots": {"default": self.media, "temp": self.temp}})
        cust = CustomerConfig.model_validate(
            {"name": "C", "profiles": {p: IDENTITY for p in profiles}}
        )
        store = StoreContext(Configuration("/etc/a.yaml", admin, {"C": cust}, {}))
        self.mon.set_customers(store.customers())

    def incoming(self, profile: str) -> str:
        """The local incoming folder of a profile."""
        return os.path.join(self.media, "c", "files", "incoming", profile)

    @property
    def trigger(self) -> ChangeTrigger:
        """The running inotify trigger."""
        assert self.mon._trigger is not None
        return self.mon._trigger

    def pump(self) -> None:
        """Let the reactor read what inotify queued."""
        self.trigger.read_events()

    def advance(self, seconds: float) -> None:
        """Read inotify, then let time pass (timers fire, scans run inline)."""
        self.pump()
        self.reactor.advance(seconds)

    def drop(self, profile: str, relpath: str, data: bytes = b"x") -> None:
        """Write a file aside, then rename it into incoming (as uploads do)."""
        dest = os.path.join(self.incoming(profile), relpath)
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        aside = os.path.join(os.path.dirname(dest), ".upload.part")
        with open(aside, "wb") as f:
            f.write(data)
        os.rename(aside, dest)


def started(tmp_path, profiles, **kw) -> Setup:
    """A Setup whose monitoring has started and done its first scans."""
    s = Setup(tmp_path, profiles, **kw)
    d = s.mon.start()
    s.reactor.advance(0)
    assert d.called
    return s


def test_one_reader_and_no_thread_whatever_the_number_of_folders(tmp_path):
    """Watching 300 folder trees adds no thread and one reader to the reactor."""
    before = threading.active_count()
    s = started(tmp_path, [f"p{i}" for i in range(300)])
    for i in range(300):
        os.makedirs(os.path.join(s.incoming(f"p{i}"), "sub"))
    s.mon.scan_all()
    s.reactor.advance(0)
    assert threading.active_count() == before
    assert len(s.reactor.getReaders()) == 1
    assert s.trigger.watch_count() == 600
    s.mon.stop()
    assert s.reactor.getReaders() == []


def test_event_in_one_profile_rescans_only_that_profile_and_only_that_file(tmp_path):
    """A file dropped in A is looked at alone: B is not scanned, A is not walked."""
    s = started(tmp_path, ["a", "b"], stable_for=1.0)
    for i in range(50):
        s.drop("b", f"old{i}.mov")
    s.mon.scan_all()
    s.advance(1.0)
    s.advance(1.0)
    assert len(s.added) == 50
    s.requests.clear()
    s.drop("a", "news/clip.mov")  # a new subfolder and a file in it
    s.advance(TRIGGER_DELAY)
    assert [set(r) for r in s.requests] == [{"a"}]
    request = s.requests[0]["a"]
    assert request.paths == {"news"} and request.trees == {"news"}
    s.advance(1.0)
    assert s.added[-1] == ("a", "news/clip.mov")
    assert all(set(r) == {"a"} for r in s.requests)
    assert all(r["a"].paths is not None for r in s.requests)  # never a full walk


def test_events_are_coalesced_into_one_scan(tmp_path):
    """A burst of drops within the trigger delay costs one scan of the entries named."""
    s = started(tmp_path, ["a"], stable_for=1.0)
    s.requests.clear()
    for i in range(20):
        s.drop("a", f"f{i}.mov")
    s.pump()
    s.reactor.advance(TRIGGER_DELAY)
    assert len(s.requests) == 1
    assert s.requests[0]["a"].paths == {f"f{i}.mov" for i in range(20)}


def test_periodic_poll_still_scans_every_folder_in_full(tmp_path):
    """The poll interval asks for a full scan of every profile (the source of truth)."""
    s = started(tmp_path, ["a", "b"])
    s.requests.clear()
    s.reactor.advance(60)
    assert len(s.requests) == 1
    assert {n: r.paths for n, r in s.requests[0].items()} == {"a": None, "b": None}


def test_subfolder_created_after_start_is_watched_even_when_nested(tmp_path):
    """mkdir -p of a tree after start: every level gets a watch and its files are seen."""
    s = started(tmp_path, ["a"], stable_for=1.0)
    os.makedirs(os.path.join(s.incoming("a"), "late", "deeper", "deepest"))
    s.advance(TRIGGER_DELAY)  # late is watched at once; the scan finds the levels below
    s.advance(TRIGGER_DELAY)  # ... which get watches, and are looked into once more
    assert s.trigger.watched(s.incoming("a")) == ["", "late", "late/deeper", "late/deeper/deepest"]
    s.requests.clear()
    s.drop("a", "late/deeper/deepest/clip.mov")
    s.advance(TRIGGER_DELAY)
    assert s.requests and s.requests[0]["a"].paths == {"late/deeper/deepest/clip.mov"}
    s.advance(1.0)
    assert s.added == [("a", "late/deeper/deepest/clip.mov")]


def test_file_removed_before_taken_and_same_name_dropped_again(tmp_path):
    """A taken file deleted is reported removed; after its job, the same name runs again."""
    s = started(tmp_path, ["a"], stable_for=1.0)
    s.drop("a", "one.mov")
    s.advance(TRIGGER_DELAY)
    s.advance(1.0)
    assert s.added == [("a", "one.mov")]
    os.unlink(os.path.join(s.incoming("a"), "one.mov"))
    s.advance(TRIGGER_DELAY)
    assert s.removed == [("a", "one.mov")]
    s.drop("a", "two.mov")
    s.advance(TRIGGER_DELAY)
    s.advance(1.0)
    assert s.added[-1] == ("a", "two.mov")
    done = os.path.join(str(tmp_path), "done.mov")
    os.rename(os.path.join(s.incoming("a"), "two.mov"), done)  # the job moves the source
    s.mon.release("C", "a", "two.mov")
    s.advance(TRIGGER_DELAY)
    os.rename(done, os.path.join(s.incoming("a"), "two.mov"))  # the very same file, back
    s.advance(TRIGGER_DELAY)
    s.advance(1.0)
    assert s.added[-1] == ("a", "two.mov") and len(s.added) == 3


def test_ignored_names_trigger_nothing(tmp_path):
    """Writes to hidden and partial files do not cause scans."""
    s = started(tmp_path, ["a"])
    s.requests.clear()
    for name in (".hidden", "up.part", "x.tmp", "y.crdownload"):
        with open(os.path.join(s.incoming("a"), name), "wb") as f:
            f.write(b"data")
    s.advance(1.0)
    assert s.requests == []


def test_removed_profile_is_unwatched_on_reload(tmp_path):
    """A profile removed by a reload loses its inotify watches (also below)."""
    s = started(tmp_path, ["a", "b"])
    os.makedirs(os.path.join(s.incoming("b"), "sub"))
    s.advance(TRIGGER_DELAY)
    assert s.trigger.watched(s.incoming("b")) == ["", "sub"]
    count = s.trigger.watch_count()
    s.set_profiles(["a"])
    assert s.trigger.watched(s.incoming("b")) == []
    assert s.trigger.watch_count() == count - 2
    s.requests.clear()
    s.drop("b", "late.mov")
    s.advance(1.0)
    assert all("b" not in r for r in s.requests)


def test_watch_limit_reached_logs_once_and_polling_finds_files(tmp_path):
    """ENOSPC from inotify_add_watch: one warning, and the poll still takes the files."""
    s = Setup(tmp_path, ["a", "b"], stable_for=0.0)
    events: list[dict[str, Any]] = []
    s.mon.start()
    trigger = s.trigger
    real = trigger._libc

    class Full:
        init1, rm_watch = real.init1, real.rm_watch

        @staticmethod
        def add_watch(fd, path, mask):
            ctypes.set_errno(errno.ENOSPC)
            return -1

    trigger._libc = Full()  # type: ignore[assignment]
    trigger.log = type(trigger.log)(observer=events.append)
    for folder in (s.incoming("a"), s.incoming("b")):
        trigger.unwatch(folder)
    s.mon.scan_all()
    s.reactor.advance(0)
    assert trigger.watch_count() == 0
    warnings = [e for e in events if "watch limit" in e["log_format"]]
    assert len(warnings) == 1
    s.drop("a", "clip.mov")
    s.advance(60)
    s.advance(0)
    assert s.added == [("a", "clip.mov")]


def test_queue_overflow_rescans_every_folder_in_full(tmp_path):
    """A lost event cannot lose a file: an overflow makes every folder scanned in full."""
    s = started(tmp_path, ["a", "b"])
    s.requests.clear()
    s.trigger.handle_events(struct.pack("iIII", -1, IN_Q_OVERFLOW, 0, 0))
    s.reactor.advance(TRIGGER_DELAY)
    assert {n: r.paths for n, r in s.requests[0].items()} == {"a": None, "b": None}


def test_deleted_incoming_folder_is_recreated_and_watched_again(tmp_path):
    """Removing a profile's folder makes a full scan that recreates and re-watches it."""
    s = started(tmp_path, ["a"], stable_for=0.0)
    os.rmdir(s.incoming("a"))
    s.advance(TRIGGER_DELAY)
    assert os.path.isdir(s.incoming("a"))
    assert s.trigger.watched(s.incoming("a")) == [""]
    s.drop("a", "back.mov")
    s.advance(TRIGGER_DELAY)
    assert s.added == [("a", "back.mov")]


def test_subfolder_moved_away_reports_its_taken_files_removed(tmp_path):
    """A folder of queued files moved out of incoming: each file is reported removed."""
    s = started(tmp_path, ["a"], stable_for=0.0)
    s.drop("a", "show/ep1.mov")
    s.drop("a", "show/ep2.mov")
    s.advance(TRIGGER_DELAY)
    s.advance(TRIGGER_DELAY)
    assert sorted(s.added) == [("a", "show/ep1.mov"), ("a", "show/ep2.mov")]
    os.rename(os.path.join(s.incoming("a"), "show"), str(tmp_path / "elsewhere"))
    s.advance(TRIGGER_DELAY)
    assert sorted(s.removed) == [("a", "show/ep1.mov"), ("a", "show/ep2.mov")]
    assert s.trigger.watched(s.incoming("a")) == [""]


def test_inotify_mode_refuses_to_start_without_an_instance(tmp_path, monkeypatch):
    """mode inotify with the instance limit reached is an error; auto falls back to polling."""
    s = Setup(tmp_path, ["a"])

    def refuse(self):
        raise OSError(errno.EMFILE, "inotify_init1: Too many open files")

    monkeypatch.setattr(ChangeTrigger, "start", refuse)
    with pytest.raises(RuntimeError, match="mode is inotify"):
        s.mon.start()
    auto = Setup(tmp_path / "auto", ["a"], stable_for=0.0)
    auto.mon.settings = auto.mon.settings.model_copy(update={"mode": "auto"})
    d = auto.mon.start()
    auto.reactor.advance(0)
    assert d.called and auto.mon._trigger is None


def test_subfolder_deleted_and_made_again_is_watched_again(tmp_path):
    """rmdir + mkdir of a watched subfolder (a scan in between): the new one is watched."""
    s = started(tmp_path, ["a"])
    sub = os.path.join(s.incoming("a"), "sub")
    os.mkdir(sub)
    s.advance(TRIGGER_DELAY)
    os.rmdir(sub)
    os.mkdir(sub)
    s.mon.scan_all()  # a full scan sees "sub" before the events are read
    s.reactor.advance(0)
    s.advance(TRIGGER_DELAY)
    assert s.trigger.watched(s.incoming("a")) == ["", "sub"]
    s.requests.clear()
    s.drop("a", "sub/clip.mov")
    s.advance(TRIGGER_DELAY)
    assert s.requests[0]["a"].paths == {"sub/clip.mov"}
    s.trigger.unwatch(s.incoming("a"))
    assert s.trigger.watch_count() == 0


def test_folder_renamed_over_a_watched_one_keeps_its_watch(tmp_path):
    """mv over an empty watched subfolder: the late IN_IGNORED of the old one drops nothing."""
    s = started(tmp_path, ["a"], stable_for=0.0)
    sub = os.path.join(s.incoming("a"), "sub")
    os.mkdir(sub)
    s.advance(TRIGGER_DELAY)
    outside = tmp_path / "upload"
    outside.mkdir()
    (outside / "inside.mov").write_bytes(b"x")
    os.rename(outside, sub)  # IN_MOVED_TO sub comes before the old sub's IN_IGNORED
    s.pump()
    assert s.trigger.watched(s.incoming("a")) == ["", "sub"]
    s.reactor.advance(TRIGGER_DELAY)
    assert s.added == [("a", "sub/inside.mov")]
    s.drop("a", "sub/later.mov")
    s.advance(TRIGGER_DELAY)
    assert s.added[-1] == ("a", "sub/later.mov")
    s.trigger.unwatch(s.incoming("a"))
    assert s.trigger.watch_count() == 0


def warnings(events) -> list[str]:
    """The warnings among captured log events, formatted."""
    return [formatEvent(e) for e in events if e.get("log_level") == LogLevel.warn]


def test_links_in_incoming_are_never_offered_logged_once_and_listed(tmp_path):
    """Symlinks (to a file in the roots, a folder, nowhere) and hard links: each ignored,
    warned about once whatever the number of scans, listed with its reason."""
    s = started(tmp_path, ["a", "b"], stable_for=0.3)
    other = os.path.join(s.media, "c", "files", "outgoing", "b")
    os.makedirs(os.path.join(other, "folder"))
    with open(os.path.join(other, "output.mp4"), "wb") as f:
        f.write(b"someone else's output")
    incoming = s.incoming("a")
    with capturedLogs() as events:
        os.symlink(os.path.join(other, "output.mp4"), os.path.join(incoming, "link.mp4"))
        os.symlink(os.path.join(other, "folder"), os.path.join(incoming, "folder"))
        os.symlink(os.path.join(other, "nothing"), os.path.join(incoming, "dangling.mov"))
        os.link(os.path.join(other, "output.mp4"), os.path.join(incoming, "hard.mp4"))
        for _ in range(5):
            s.advance(TRIGGER_DELAY)
            s.mon.scan_all()
            s.advance(0.5)
    assert s.added == []
    listed = {r["relpath"]: (r["state"], r["reason"]) for r in s.mon.ignored()}
    assert listed == {
        "link.mp4": ("ignored", "a symbolic link"),
        "folder": ("ignored", "a symbolic link"),
        "dangling.mov": ("ignored", "a symbolic link"),
        "hard.mp4": ("ignored", "a file with 2 hard links"),
    }
    assert s.mon.pending() == []
    logged = warnings(events)
    assert len(logged) == 4, logged
    for name in listed:
        assert sum(f"C/a/{name} " in line for line in logged) == 1
    assert "accept-hard-links" in next(line for line in logged if "hard.mp4" in line)
    # gone: unlisted; replaced by a file of one's own: an upload like any other
    os.unlink(os.path.join(incoming, "link.mp4"))
    os.unlink(os.path.join(incoming, "hard.mp4"))
    s.drop("a", "hard.mp4", b"my own")
    s.advance(TRIGGER_DELAY)
    s.advance(0.3)
    assert s.added == [("a", "hard.mp4")]
    assert sorted(r["relpath"] for r in s.mon.ignored()) == ["dangling.mov", "folder"]


def test_hard_links_are_taken_with_accept_hard_links(tmp_path):
    """monitoring.accept-hard-links: true offers a file with several links."""
    s = started(tmp_path, ["a"], stable_for=0.3, **{"accept-hard-links": True})
    s.drop("a", "one.mov")
    os.link(os.path.join(s.incoming("a"), "one.mov"), os.path.join(str(tmp_path), "other"))
    s.advance(TRIGGER_DELAY)
    s.advance(0.3)
    s.advance(0.3)
    assert s.added == [("a", "one.mov")] and s.mon.ignored() == []


def test_file_open_for_writing_stays_pending_until_closed(tmp_path):
    """A stalled upload (stable, still open for writing) is not offered; closed, it is."""
    s = started(tmp_path, ["a"], stable_for=0.3)
    path = os.path.join(s.incoming("a"), "upload.mov")
    writer = open(path, "wb")
    try:
        writer.write(b"half")
        writer.flush()
        s.advance(TRIGGER_DELAY)
        for _ in range(4):
            s.advance(1.0)
        assert s.added == []
        (row,) = s.mon.pending()
        assert row["relpath"] == "upload.mov" and "open for writing" in row["reason"]
        writer.write(b" and the rest")
    finally:
        writer.close()
    s.advance(TRIGGER_DELAY)  # inotify: closed after writing
    s.advance(0.3)
    assert s.added == [("a", "upload.mov")]
    assert s.offers[0].identity["size"] == len(b"half and the rest")


def test_offers_carry_the_device_inode_and_scanning_host(tmp_path):
    """An offer's identity is the file's (dev, ino, size, mtime) and the host that saw it."""
    s = started(tmp_path, ["a"], stable_for=0.3)
    s.drop("a", "one.mov", b"12345")
    s.advance(TRIGGER_DELAY)
    s.advance(0.3)
    st = os.stat(os.path.join(s.incoming("a"), "one.mov"))
    assert [o.identity for o in s.offers] == [
        {
            "dev": st.st_dev,
            "ino": st.st_ino,
            "size": 5,
            "mtime_ns": st.st_mtime_ns,
            "host": "scanner-host",
        }
    ]


def test_accept_hard_links_is_a_checked_setting_in_yaml_and_ini(tmp_path):
    """monitoring.accept-hard-links: false by default, true in YAML or INI, junk refused."""
    os.makedirs(tmp_path / "customers")
    base = "admin:\n  customers: customers\nroots:\n  default: media\n  temp: tmp\n"
    (tmp_path / "a.yaml").write_text(base)
    (tmp_path / "b.yaml").write_text(base + "monitoring:\n  accept-hard-links: true\n")
    (tmp_path / "c.ini").write_text(
        "[admin]\ncustomers = customers\n[roots]\ndefault = media\ntemp = tmp\n"
        "[monitoring]\naccept-hard-links = true\n"
    )
    (tmp_path / "d.yaml").write_text(base + "monitoring:\n  accept-hard-links: sometimes\n")
    monitoring = [
        load_configuration(str(tmp_path / name)).admin.monitoring
        for name in ("a.yaml", "b.yaml", "c.ini")
    ]
    assert [m.accept_hard_links for m in monitoring] == [False, True, True]
    with pytest.raises(ConfigError) as info:
        load_configuration(str(tmp_path / "d.yaml"))
    assert "accept-hard-links" in info.value.render()


def test_a_file_renamed_into_incoming_is_offered_at_once(tmp_path):
    """With stable-for 30 s: a finished upload renamed into place is offered on the scan
    its event asks for; one written in place, or written to after its rename, waits."""
    s = started(tmp_path, ["a"], stable_for=30.0)
    s.drop("a", "renamed.mov")
    s.advance(TRIGGER_DELAY)
    assert s.added == [("a", "renamed.mov")]
    with open(os.path.join(s.incoming("a"), "in-place.mov"), "wb") as f:
        f.write(b"written where it lies")
    s.drop("a", "appended.mov")
    with open(os.path.join(s.incoming("a"), "appended.mov"), "ab") as f:
        f.write(b" and more after the rename")
    s.advance(TRIGGER_DELAY)
    assert s.added == [("a", "renamed.mov")]
    assert {row["relpath"] for row in s.mon.pending()} == {"in-place.mov", "appended.mov"}
    s.advance(30.0)
    assert sorted(s.added) == [("a", "appended.mov"), ("a", "in-place.mov"), ("a", "renamed.mov")]


def test_a_renamed_file_still_open_for_writing_waits_until_closed(tmp_path):
    """Renamed while its writer still holds it open: not complete until it is closed."""
    s = started(tmp_path, ["a"], stable_for=30.0)
    aside = os.path.join(s.incoming("a"), ".upload.part")
    writer = open(aside, "wb")
    try:
        writer.write(b"half")
        writer.flush()
        os.rename(aside, os.path.join(s.incoming("a"), "early.mov"))
        s.advance(TRIGGER_DELAY)
        s.advance(1.0)
        assert s.added == []
    finally:
        writer.close()
    s.advance(TRIGGER_DELAY)
    s.advance(30.0)
    assert s.added == [("a", "early.mov")]


def test_atomic_renames_off_makes_every_file_wait_stable_for(tmp_path):
    """monitoring.atomic-renames: false: a renamed file waits stable-for like the rest."""
    s = started(tmp_path, ["a"], stable_for=30.0, **{"atomic-renames": False})
    s.drop("a", "renamed.mov")
    s.advance(TRIGGER_DELAY)
    assert s.added == []
    s.advance(30.0)
    assert s.added == [("a", "renamed.mov")]
