"""The stability rule of incoming files, driven by task.Clock."""

from __future__ import annotations

from twisted.internet.task import Clock

from transcoder_admin.monitoring.scanner import Scope, ignore_matcher, scan_folder, scan_paths
from transcoder_admin.monitoring.tracker import StabilityTracker

A = (1, 100, 1000)


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
    scan(tracker, {"a": (1, 10, 1)})
    clock.advance(2)
    assert scan(tracker, {"a": (1, 20, 2)}).next_check == 5
    clock.advance(2)
    assert scan(tracker, {"a": (1, 20, 2)}).complete == []
    clock.advance(1)
    assert len(scan(tracker, {"a": (1, 20, 2)}).complete) == 1


def test_replaced_file_same_name_new_inode_restarts_the_wait():
    """An upload that re-creates the file (new inode) is tracked anew."""
    clock = Clock()
    tracker = StabilityTracker(2, clock)
    scan(tracker, {"a": (1, 10, 1)})
    clock.advance(1.5)
    scan(tracker, {"a": (2, 10, 1)})
    clock.advance(1.5)
    assert scan(tracker, {"a": (2, 10, 1)}).complete == []


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
    scan(tracker, {"a": (7, 100, 2000)})
    clock.advance(1)
    assert len(scan(tracker, {"a": (7, 100, 2000)}).complete) == 1


def test_released_file_left_in_place_is_not_taken_again():
    """A source that could not be moved stays put and is not transcoded in a loop."""
    clock = Clock()
    tracker = StabilityTracker(0, clock)
    scan(tracker, {"a": A})
    tracker.release("a")
    for _ in range(3):
        clock.advance(10)
        assert scan(tracker, {"a": A}).complete == []


def test_scanner_skips_partial_and_hidden_files_and_links_out_of_roots(tmp_path):
    """Ignore patterns, hidden folders and escaping links are left out; subfolders kept."""
    (tmp_path / "sub" / "deeper").mkdir(parents=True)
    (tmp_path / "sub" / "deeper" / "clip.mov").write_bytes(b"x")
    (tmp_path / "up.part").write_bytes(b"x")
    (tmp_path / ".hidden").write_bytes(b"x")
    (tmp_path / "a.crdownload").write_bytes(b"x")
    (tmp_path / ".sync").mkdir()
    (tmp_path / ".sync" / "inner.mov").write_bytes(b"x")
    (tmp_path / "evil").symlink_to("/etc/hostname")
    ignored = ignore_matcher([".*", "*.part", "*.filepart", "*.tmp", "*.crdownload"])
    result = scan_folder(str(tmp_path), ignored, lambda p: False)
    assert sorted(result.files) == ["sub/deeper/clip.mov"]
    assert result.refused == ["evil"]


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
    tracker.update(tracker.begin_scan(), {"new": (2, 1, 1)}, Scope(frozenset({"new"})))
    assert tracker.pending_paths() == {"old", "new"}
    clock.advance(2)
    done = tracker.update(tracker.begin_scan(), {"old": A, "new": (2, 1, 1)}, Scope())
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
        str(tmp_path), {"one.mov", "gone.mov", "evil", ".hidden"}, {"tree"}, ignored, None
    )
    assert sorted(result.files) == ["one.mov", "tree/deep/clip.mov"]
    assert result.refused == ["evil"]
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
