"""The scan of incoming folders (real files) and the stability rule (driven by task.Clock)."""

from __future__ import annotations

import os
import signal

from twisted.internet.task import Clock

from transcoder_admin.monitoring import scanner, writers
from transcoder_admin.monitoring.scanner import (
    SYMLINK,
    Refusal,
    Scope,
    hard_links,
    ignore_matcher,
    scan_folder,
    scan_paths,
)
from transcoder_admin.monitoring.tracker import BUSY_RECHECK, StabilityTracker
from transcoder_admin.monitoring.writers import open_for_writing, proc_writers

A = (9, 1, 100, 1000)  # (dev, ino, size, mtime_ns)


def scan(tracker, files):
    """Run one scan through the tracker and return the changes."""
    return tracker.update(tracker.begin_scan(), files)


def test_file_is_complete_only_after_staying_unchanged_for_stable_for():
    """A file is taken once (inode, size, mtime) stayed the same for stable-for seconds."""
    clock = Clock()
    tracker = StabilityTracker(5, clock)
    first = scan(tracker, {"a.mov": A})
    assert first.complete == [] and first.next_check == 5
    clock.advance(4.9)
    assert scan(tracker, {"a.mov": A}).complete == []
    clock.advance(0.1)
    done = scan(tracker, {"a.mov": A})
    assert [r.relpath for r in done.complete] == ["a.mov"]
    assert done.complete[0].first_seen == 0
    clock.advance(10)
    assert scan(tracker, {"a.mov": A}).complete == []  # never offered twice


def test_growing_file_restarts_the_wait():
    """A file still being written (size or mtime changing) is not complete."""
    clock = Clock()
    tracker = StabilityTracker(3, clock)
    scan(tracker, {"a": (9, 1, 10, 1)})
    clock.advance(2)
    assert scan(tracker, {"a": (9, 1, 20, 2)}).next_check == 5
    clock.advance(2)
    assert scan(tracker, {"a": (9, 1, 20, 2)}).complete == []
    clock.advance(1)
    assert len(scan(tracker, {"a": (9, 1, 20, 2)}).complete) == 1


def test_replaced_file_same_name_new_inode_restarts_the_wait():
    """An upload that re-creates the file (new inode) is tracked anew."""
    clock = Clock()
    tracker = StabilityTracker(2, clock)
    scan(tracker, {"a": (9, 1, 10, 1)})
    clock.advance(1.5)
    scan(tracker, {"a": (9, 2, 10, 1)})
    clock.advance(1.5)
    assert scan(tracker, {"a": (9, 2, 10, 1)}).complete == []


def test_taken_file_that_vanishes_is_reported_removed():
    """A file offered but gone before its job took it is reported (to be dequeued)."""
    clock = Clock()
    tracker = StabilityTracker(0, clock)
    assert len(scan(tracker, {"a": A}).complete) == 1
    removed = scan(tracker, {})
    assert [r.relpath for r in removed.removed] == ["a"]
    assert tracker.files == {}


def test_pending_file_that_vanishes_is_forgotten_silently():
    """A partial file deleted before it was complete leaves no record."""
    clock = Clock()
    tracker = StabilityTracker(5, clock)
    scan(tracker, {"a": A})
    changes = scan(tracker, {})
    assert changes.removed == [] and tracker.files == {}


def test_stale_scan_after_release_does_not_take_the_file_again():
    """A scan started before the job ended cannot re-offer the source it moved away."""
    clock = Clock()
    tracker = StabilityTracker(0, clock)
    scan(tracker, {"a": A})
    token = tracker.begin_scan()  # scan starts while the job still runs
    tracker.release("a")  # job ended, source moved to done
    assert tracker.update(token, {"a": A}).complete == []
    assert tracker.update(tracker.begin_scan(), {}).removed == []
    assert tracker.files == {}  # no record outlives the job


def test_file_dropped_again_after_its_job_is_taken_again():
    """The same name dropped again (a new file) is transcoded again."""
    clock = Clock()
    tracker = StabilityTracker(1, clock)
    scan(tracker, {"a": A})
    clock.advance(1)
    assert len(scan(tracker, {"a": A}).complete) == 1
    tracker.release("a")
    scan(tracker, {})
    scan(tracker, {"a": (9, 7, 100, 2000)})
    clock.advance(1)
    assert len(scan(tracker, {"a": (9, 7, 100, 2000)}).complete) == 1


def test_released_file_left_in_place_is_not_taken_again():
    """A source that could not be moved stays put and is not transcoded in a loop."""
    clock = Clock()
    tracker = StabilityTracker(0, clock)
    scan(tracker, {"a": A})
    tracker.release("a")
    for _ in range(3):
        clock.advance(10)
        assert scan(tracker, {"a": A}).complete == []


def test_scanner_skips_partial_and_hidden_files_and_refuses_links(tmp_path):
    """Ignore patterns and hidden folders are left out, links refused; subfolders kept."""
    (tmp_path / "sub" / "deeper").mkdir(parents=True)
    (tmp_path / "sub" / "deeper" / "clip.mov").write_bytes(b"x")
    (tmp_path / "up.part").write_bytes(b"x")
    (tmp_path / ".hidden").write_bytes(b"x")
    (tmp_path / "a.crdownload").write_bytes(b"x")
    (tmp_path / ".sync").mkdir()
    (tmp_path / ".sync" / "inner.mov").write_bytes(b"x")
    (tmp_path / "evil").symlink_to("/etc/hostname")
    ignored = ignore_matcher([".*", "*.part", "*.filepart", "*.tmp", "*.crdownload"])
    result = scan_folder(str(tmp_path), ignored)
    assert sorted(result.files) == ["sub/deeper/clip.mov"]
    assert result.refused == {"evil": Refusal(SYMLINK)}


def test_partial_scan_judges_gone_only_what_it_examined():
    """A scan of some entries cannot report files outside its scope as removed."""
    clock = Clock()
    tracker = StabilityTracker(0, clock)
    scan(tracker, {"a": A, "b": A, "sub/c": A, "sub/d": A})
    only_a = tracker.update(tracker.begin_scan(), {}, Scope(frozenset({"a"})))
    assert [r.relpath for r in only_a.removed] == ["a"]
    assert sorted(tracker.files) == ["b", "sub/c", "sub/d"]
    below_sub = tracker.update(tracker.begin_scan(), {"sub/d": A}, Scope(prefixes=("sub/",)))
    assert [r.relpath for r in below_sub.removed] == ["sub/c"]
    assert sorted(tracker.files) == ["b", "sub/d"]


def test_partial_scan_takes_new_files_and_keeps_pending_ones_listed():
    """Files found by a partial scan wait for stability like any other; pending is cheap."""
    clock = Clock()
    tracker = StabilityTracker(2, clock)
    scan(tracker, {"old": A})
    tracker.update(tracker.begin_scan(), {"new": (9, 2, 1, 1)}, Scope(frozenset({"new"})))
    assert tracker.pending_paths() == {"old", "new"}
    clock.advance(2)
    done = tracker.update(tracker.begin_scan(), {"old": A, "new": (9, 2, 1, 1)}, Scope())
    assert sorted(r.relpath for r in done.complete) == ["new", "old"]
    assert tracker.pending_paths() == set() and tracker.pending() == []


def test_stale_partial_scan_after_release_keeps_the_record_until_a_newer_one():
    """The job-end rule holds for partial scans: only a scan started after release counts."""
    clock = Clock()
    tracker = StabilityTracker(0, clock)
    scan(tracker, {"a": A})
    token = tracker.begin_scan()
    tracker.release("a")
    assert tracker.update(token, {}, Scope(frozenset({"a"}))).removed == []
    assert "a" in tracker.files
    tracker.update(tracker.begin_scan(), {}, Scope(frozenset({"a"})))
    assert tracker.files == {}


def test_rechecks_due_at_stable_for_complete_despite_float_rounding():
    """A re-check timer firing a rounding error early does not wait another stable-for."""
    clock = Clock()
    tracker = StabilityTracker(0.3, clock)
    clock.advance(0.15)  # 0.15 + (0.45 - 0.15) < 0.45 in floats
    first = scan(tracker, {"a": A})
    clock.advance(first.next_check - clock.seconds())
    assert len(scan(tracker, {"a": A}).complete) == 1


IGNORE = [".*", "*.part", "*.filepart", "*.tmp", "*.crdownload"]


def test_scan_paths_examines_only_what_is_named(tmp_path):
    """Named files are stat'ed, named folders walked, missing ones reported in scope."""
    (tmp_path / "big").mkdir()
    for i in range(5):
        (tmp_path / "big" / f"f{i}.mov").write_bytes(b"x")
    (tmp_path / "one.mov").write_bytes(b"x")
    (tmp_path / "tree" / "deep").mkdir(parents=True)
    (tmp_path / "tree" / "deep" / "clip.mov").write_bytes(b"x")
    (tmp_path / "tree" / "up.part").write_bytes(b"x")
    (tmp_path / "evil").symlink_to("/etc/hostname")
    ignored = ignore_matcher(IGNORE)
    result = scan_paths(
        str(tmp_path), {"one.mov", "gone.mov", "evil", ".hidden"}, {"tree"}, ignored
    )
    assert sorted(result.files) == ["one.mov", "tree/deep/clip.mov"]
    assert result.refused == {"evil": Refusal(SYMLINK)}
    assert result.scope is not None
    assert result.scope.paths == {"one.mov", "gone.mov", "evil", "tree"}
    assert result.scope.prefixes == ("tree/",)
    assert sorted(result.dirs) == ["tree", "tree/deep"]


def test_scan_folder_lists_subfolders_for_the_watches(tmp_path):
    """A full scan reports every subfolder it walked (not ignored ones)."""
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / ".sync" / "c").mkdir(parents=True)
    result = scan_folder(str(tmp_path), ignore_matcher(IGNORE))
    assert sorted(result.dirs) == ["a", "a/b"] and result.scope is None


def links_folder(tmp_path):
    """An incoming folder holding every kind of link next to a plain file; the roots' other
    files (``elsewhere``) beside it."""
    incoming, elsewhere = tmp_path / "in", tmp_path / "elsewhere"
    (elsewhere / "folder").mkdir(parents=True)
    (elsewhere / "output.mp4").write_bytes(b"bob's")
    (elsewhere / "folder" / "clip.mov").write_bytes(b"x")
    incoming.mkdir()
    (incoming / "plain.mov").write_bytes(b"mine")
    (incoming / "inside.mp4").symlink_to(elsewhere / "output.mp4")
    (incoming / "outside").symlink_to("/etc/hostname")
    (incoming / "relative.mov").symlink_to("plain.mov")
    (incoming / "dir").symlink_to(elsewhere / "folder")
    (incoming / "dangling.mov").symlink_to(tmp_path / "nothing")
    return incoming, elsewhere


LINKS = ["dangling.mov", "dir", "inside.mp4", "outside", "relative.mov"]


def test_every_symbolic_link_is_refused_wherever_it_points(tmp_path):
    """Links to files inside or outside the roots, to folders, dangling: none is a file."""
    incoming, _elsewhere = links_folder(tmp_path)
    ignored = ignore_matcher(IGNORE)
    full = scan_folder(str(incoming), ignored)
    some = scan_paths(str(incoming), {*LINKS, "plain.mov"}, (), ignored)
    for result in (full, some):
        assert sorted(result.files) == ["plain.mov"]
        assert sorted(result.refused) == LINKS
        assert {r.reason for r in result.refused.values()} == {"a symbolic link"}
        assert result.dirs == []  # a link to a folder is not walked
    # a link named as a tree to walk (inotify said a folder appeared) is refused too
    tree = scan_paths(str(incoming), (), {"dir"}, ignored)
    assert tree.files == {} and list(tree.refused) == ["dir"]


def test_hard_linked_file_is_refused_unless_accepted(tmp_path):
    """A file with a second hard link is refused with the count; the setting takes it."""
    (tmp_path / "bob").mkdir()
    (tmp_path / "bob" / "done.mov").write_bytes(b"bob's")
    incoming = tmp_path / "in"
    incoming.mkdir()
    os.link(tmp_path / "bob" / "done.mov", incoming / "linked.mov")
    (incoming / "own.mov").write_bytes(b"mine")
    st = os.stat(incoming / "linked.mov")
    sig = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
    ignored = ignore_matcher(IGNORE)
    for result in (
        scan_folder(str(incoming), ignored),
        scan_paths(str(incoming), {"linked.mov", "own.mov"}, (), ignored),
    ):
        assert list(result.files) == ["own.mov"]
        assert result.refused == {"linked.mov": Refusal("a file with 2 hard links", sig)}
    accepted = scan_folder(str(incoming), ignored, accept_hard_links=True)
    assert sorted(accepted.files) == ["linked.mov", "own.mov"] and accepted.refused == {}
    assert accepted.files["linked.mov"] == sig


def test_signature_records_the_device(tmp_path):
    """A file's signature is (device, inode, size, mtime): a move to another disk changes it."""
    (tmp_path / "a.mov").write_bytes(b"12345")
    st = os.stat(tmp_path / "a.mov")
    result = scan_folder(str(tmp_path), ignore_matcher(IGNORE))
    assert result.files == {"a.mov": (st.st_dev, st.st_ino, 5, st.st_mtime_ns)}


def test_a_change_of_device_or_inode_is_a_change():
    """The same size and mtime on another device or inode restarts the wait."""
    clock = Clock()
    tracker = StabilityTracker(2, clock)
    scan(tracker, {"a": A})
    for sig in ((8, 1, 100, 1000), (8, 2, 100, 1000)):
        clock.advance(1.5)
        assert scan(tracker, {"a": sig}).complete == []
    clock.advance(2)
    assert len(scan(tracker, {"a": (8, 2, 100, 1000)}).complete) == 1


def refuse(tracker, found, refused, scope=None):
    """Run one scan with refused entries through the tracker."""
    return tracker.update(tracker.begin_scan(), found, scope, refused=refused)


LINK = {"evil": Refusal(SYMLINK)}


def test_refused_entry_is_reported_once_and_listed_until_it_goes():
    """One report per entry, not per scan; gone → unlisted; back → reported again."""
    clock = Clock()
    tracker = StabilityTracker(0, clock)
    first = refuse(tracker, {}, LINK)
    assert [(i.relpath, i.reason) for i in first.refused] == [("evil", "a symbolic link")]
    for _ in range(3):
        clock.advance(10)
        again = refuse(tracker, {}, LINK)
        assert again.refused == [] and again.complete == []
    assert [i.relpath for i in tracker.ignored()] == ["evil"]
    refuse(tracker, {}, {})
    assert tracker.ignored() == []
    assert [i.relpath for i in refuse(tracker, {}, LINK).refused] == ["evil"]


def test_partial_scan_unlists_only_refused_entries_it_examined():
    """A scan of some entries cannot say that a refused entry elsewhere went away."""
    clock = Clock()
    tracker = StabilityTracker(0, clock)
    refuse(tracker, {}, {**LINK, "sub/x": Refusal(SYMLINK)})
    refuse(tracker, {}, {}, Scope(frozenset({"other"})))
    assert sorted(i.relpath for i in tracker.ignored()) == ["evil", "sub/x"]
    refuse(tracker, {}, {}, Scope(prefixes=("sub/",)))
    assert [i.relpath for i in tracker.ignored()] == ["evil"]


def test_refused_entry_that_becomes_a_plain_file_is_tracked_and_taken():
    """A link replaced by a regular file with one link is a normal upload from then on."""
    clock = Clock()
    tracker = StabilityTracker(1, clock)
    refuse(tracker, {}, {"a": Refusal(hard_links(2), A)})
    assert scan(tracker, {"a": A}).complete == []
    assert tracker.ignored() == [] and tracker.pending_paths() == {"a"}
    clock.advance(1)
    assert [r.relpath for r in scan(tracker, {"a": A}).complete] == ["a"]


def test_file_replaced_by_a_link_is_dropped_and_dequeued():
    """A pending file that became a link is forgotten; an offered one is reported removed."""
    clock = Clock()
    tracker = StabilityTracker(0, clock)
    assert len(scan(tracker, {"a": A}).complete) == 1
    changes = refuse(tracker, {}, {"a": Refusal(SYMLINK)})
    assert [r.relpath for r in changes.removed] == ["a"]
    assert [i.relpath for i in changes.refused] == ["a"] and tracker.files == {}


def test_offered_file_gaining_a_hard_link_is_still_the_same_file():
    """Its job may link the source into its work folder: no refusal, no removal."""
    clock = Clock()
    tracker = StabilityTracker(0, clock)
    assert len(scan(tracker, {"a": A}).complete) == 1
    changes = refuse(tracker, {}, {"a": Refusal(hard_links(2), A)})
    assert changes.removed == [] and changes.refused == [] and "a" in tracker.files
    tracker.release("a")
    assert refuse(tracker, {}, {"a": Refusal(hard_links(2), A)}).complete == []
    # but another file linked in under that name is refused
    other = (9, 5, 100, 1000)
    assert [i.relpath for i in refuse(tracker, {}, {"a": Refusal(hard_links(2), other)}).refused]


def test_stable_file_is_taken_only_once_checked_free_of_writers():
    """Due but not checked: re-checked at once; open for writing: pending, re-checked later."""
    clock = Clock()
    tracker = StabilityTracker(0.3, clock)
    both = {"a": A, "b": A}
    tracker.update(tracker.begin_scan(), both, quiet=set())
    assert tracker.due() == {}
    clock.advance(0.3)
    assert tracker.due() == both
    unchecked = tracker.update(tracker.begin_scan(), both, quiet=set())
    assert unchecked.complete == [] and unchecked.next_check == clock.seconds()
    busy = tracker.update(tracker.begin_scan(), both, quiet={"b"}, busy={"a"})
    assert [r.relpath for r in busy.complete] == ["b"]
    assert busy.next_check == clock.seconds() + BUSY_RECHECK
    assert [(r.relpath, r.busy) for r in tracker.pending()] == [("a", True)]
    clock.advance(1)
    taken = tracker.update(tracker.begin_scan(), both, quiet={"a"})
    assert [r.relpath for r in taken.complete] == ["a"]
    assert tracker.pending_paths() == set()


def test_file_written_again_after_a_stall_waits_stable_for_anew():
    """A busy file that grows again is no longer busy and waits the whole stable-for."""
    clock = Clock()
    tracker = StabilityTracker(0.3, clock)
    scan(tracker, {"a": A})
    clock.advance(0.3)
    tracker.update(tracker.begin_scan(), {"a": A}, quiet=set(), busy={"a"})
    clock.advance(1)
    grown = (9, 1, 200, 2000)
    changes = tracker.update(tracker.begin_scan(), {"a": grown}, quiet={"a"})
    assert changes.complete == [] and changes.next_check == clock.seconds() + 0.3
    assert [r.busy for r in tracker.pending()] == [False]


def test_open_for_writing_by_this_process_then_closed(tmp_path):
    """A file this process holds open for writing is busy; read-only or closed, it is not."""
    path = str(tmp_path / "up.mov")
    writer = open(path, "wb")
    try:
        writer.write(b"half")
        writer.flush()
        st = os.stat(path)
        files = {"up": (path, st.st_dev, st.st_ino)}
        assert open_for_writing(files) == {"up"}
        assert proc_writers({(st.st_dev, st.st_ino)}) == {(st.st_dev, st.st_ino)}
    finally:
        writer.close()
    with open(path, "rb"):
        assert open_for_writing(files) == set()
        assert proc_writers({(st.st_dev, st.st_ino)}) == set()


def test_lease_check_is_used_when_sigio_is_ignored(tmp_path, monkeypatch):
    """With SIGIO ignored the kernel lease answers (a replaced file counts as written, and
    no descriptor is left open); without it /proc alone does."""
    path = str(tmp_path / "up.mov")
    seen: list[str] = []
    real_proc = writers.proc_writers

    def spy(wanted, proc="/proc"):
        seen.append("proc")
        return real_proc(wanted, proc)

    monkeypatch.setattr(writers, "proc_writers", spy)
    with open(path, "wb") as writer:
        writer.write(b"x")
        writer.flush()
        st = os.stat(path)
        files = {"up": (path, st.st_dev, st.st_ino)}
        monkeypatch.setattr(signal, "getsignal", lambda s: signal.SIG_IGN)
        descriptors = len(os.listdir("/proc/self/fd"))
        assert open_for_writing(files) == {"up"} and seen == []
        monkeypatch.setattr(signal, "getsignal", lambda s: signal.SIG_DFL)
        assert open_for_writing(files) == {"up"} and seen == ["proc"]
        os.rename(path, path + ".old")
        (tmp_path / "up.mov").write_bytes(b"new")  # the path now names another file
        monkeypatch.setattr(signal, "getsignal", lambda s: signal.SIG_IGN)
        assert open_for_writing(files) == {"up"} and seen == ["proc"]
        assert len(os.listdir("/proc/self/fd")) == descriptors  # every look closed


def test_paths_named_again_are_not_looked_at_through_a_linked_folder(tmp_path):
    """A folder of incoming replaced by a link to another customer's folder: the files
    named below it (pending ones are named on every scan) are gone, not found there."""
    incoming, elsewhere = tmp_path / "in", tmp_path / "bob"
    (incoming / "news").mkdir(parents=True)
    (incoming / "news" / "clip.mov").write_bytes(b"mine")
    elsewhere.mkdir()
    (elsewhere / "clip.mov").write_bytes(b"bob's")
    ignored = ignore_matcher(IGNORE)
    before = scan_paths(str(incoming), {"news/clip.mov"}, (), ignored)
    assert list(before.files) == ["news/clip.mov"]
    (incoming / "news").rename(tmp_path / "moved")
    (incoming / "news").symlink_to(elsewhere)
    after = scan_paths(str(incoming), {"news/clip.mov", "news"}, {"news/deeper"}, ignored)
    assert after.files == {} and list(after.refused) == ["news"]
    assert after.scope is not None
    assert after.scope.paths == {"news", "news/clip.mov", "news/deeper"}
    tracker = StabilityTracker(0, Clock())
    scan(tracker, before.files)
    gone = tracker.update(
        tracker.begin_scan(), after.files, after.scope, refused=after.refused, quiet=set()
    )
    assert [r.relpath for r in gone.removed] == ["news/clip.mov"]


def test_folder_swapped_for_a_link_while_walking_is_not_looked_into(tmp_path, monkeypatch):
    """An uploader replacing a subfolder by a link to bob's folder right after its parent
    was listed: the walk notices it is another folder and takes nothing from bob's."""
    incoming, bob = tmp_path / "in", tmp_path / "bob"
    (incoming / "sub").mkdir(parents=True)
    (incoming / "sub" / "mine.mov").write_bytes(b"mine")
    bob.mkdir()
    (bob / "clip.mov").write_bytes(b"bob's")
    listed = scanner._entries

    def swapping(path, ident, ignored):
        found = listed(path, ident, ignored)
        if path == str(incoming):
            (incoming / "sub").rename(tmp_path / "moved")
            (incoming / "sub").symlink_to(bob)
        return found

    monkeypatch.setattr(scanner, "_entries", swapping)
    result = scan_folder(str(incoming), ignore_matcher(IGNORE))
    assert result.files == {} and result.refused == {}


def test_a_file_that_arrived_by_a_rename_is_complete_at_once_unless_written_to():
    """Renamed into place: complete on the scan that confirms it, once free of writers;
    one still open for writing waits like any other; the next scans use the timing rule."""
    clock = Clock()
    tracker = StabilityTracker(30, clock)
    changes = tracker.update(tracker.begin_scan(), {"a": A, "b": A}, arrived={"a"})
    assert [r.relpath for r in changes.complete] == ["a"]
    assert [r.relpath for r in tracker.pending()] == ["b"]
    held = tracker.update(tracker.begin_scan(), {"c": A}, quiet=set(), busy={"c"}, arrived={"c"})
    assert held.complete == [] and [r.busy for r in tracker.pending() if r.relpath == "c"] == [True]
    later = tracker.update(tracker.begin_scan(), {"c": A}, quiet={"c"})
    assert later.complete == []  # no longer "arrived": stable-for applies from here
    replaced = (9, 2, 100, 1000)  # renamed over the pending file b: a new inode
    again = tracker.update(tracker.begin_scan(), {"b": replaced}, arrived={"b"}, quiet={"b"})
    assert [r.relpath for r in again.complete] == ["b"]
