"""The commit lock of an output folder: slots of one process take turns without polling,
another process's lock file is polled with a growing pause, a stale one is taken over."""

from __future__ import annotations

import os
import threading
import time

import pytest

from transcoder_admin.job import owners
from transcoder_admin.job.owners import LOCK_FILE, LOCK_STALE, LOCK_WAIT, folder_lock
from transcoder_admin.reports.files import PathProblem


class RecordingClock:
    """Real time, but every pause is recorded; with ``fake`` the pauses pass at once."""

    def __init__(self, fake: bool = False) -> None:
        self.fake = fake
        self.now = 1000.0
        self.pauses: list[float] = []

    def monotonic(self) -> float:
        return self.now if self.fake else time.monotonic()

    def time(self) -> float:
        return time.time()

    def sleep(self, seconds: float) -> None:
        self.pauses.append(seconds)
        if self.fake:
            self.now += seconds
        else:
            time.sleep(seconds)


@pytest.fixture
def folder(tmp_path):
    fd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    yield tmp_path, fd
    os.close(fd)


def test_two_slots_of_one_process_take_turns_without_polling(folder):
    """The second commit waits on the first, in order, and never sleeps on the lock file."""
    path, fd = folder
    clock = RecordingClock()
    order: list[str] = []
    first_in = threading.Event()
    release_first = threading.Event()

    def first() -> None:
        with folder_lock(fd, str(path), clock):
            order.append("first in")
            first_in.set()
            release_first.wait(10)
            order.append("first out")

    def second() -> None:
        first_in.wait(10)
        with folder_lock(fd, str(path), clock):
            order.append("second in")
            assert (path / LOCK_FILE).exists()

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for t in threads:
        t.start()
    first_in.wait(10)
    time.sleep(0.1)  # the second is waiting by now
    assert order == ["first in"]
    release_first.set()
    for t in threads:
        t.join(10)
    assert order == ["first in", "first out", "second in"]
    assert clock.pauses == []
    assert not (path / LOCK_FILE).exists()
    assert owners._turns._locks == {}


def test_another_process_lock_is_polled_with_a_growing_pause_then_given_up(folder):
    """A fresh lock file of another host: tries at 2, 4, 8 … 50 ms pauses, then a clear error."""
    path, fd = folder
    (path / LOCK_FILE).write_text("otherhost 123\n")
    clock = RecordingClock(fake=True)
    with pytest.raises(PathProblem) as caught:
        with folder_lock(fd, str(path), clock):
            pass
    assert str(caught.value) == f"{path / LOCK_FILE} is held by another commit"
    assert clock.pauses[:6] == [0.002, 0.004, 0.008, 0.016, 0.032, 0.05]
    assert set(clock.pauses[6:]) == {0.05}
    assert sum(clock.pauses) == pytest.approx(LOCK_WAIT, abs=0.1)
    assert (path / LOCK_FILE).read_text() == "otherhost 123\n"  # not ours to remove
    assert owners._turns._locks == {}


def test_a_lock_file_released_by_the_other_process_is_taken(folder):
    path, fd = folder
    (path / LOCK_FILE).write_text("otherhost 123\n")
    clock = RecordingClock(fake=True)
    real_sleep = clock.sleep

    def sleep_then_release(seconds: float) -> None:
        real_sleep(seconds)
        if len(clock.pauses) == 3:
            os.unlink(path / LOCK_FILE)

    clock.sleep = sleep_then_release  # type: ignore[method-assign]
    with folder_lock(fd, str(path), clock):
        assert (path / LOCK_FILE).read_text().endswith(f" {os.getpid()}\n")
    assert clock.pauses == [0.002, 0.004, 0.008]
    assert not (path / LOCK_FILE).exists()


def test_a_stale_lock_file_is_taken_over(folder):
    path, fd = folder
    stale = path / LOCK_FILE
    stale.write_text("crashed 1\n")
    old = time.time() - LOCK_STALE - 10
    os.utime(stale, (old, old))
    clock = RecordingClock(fake=True)
    with folder_lock(fd, str(path), clock):
        assert stale.read_text().endswith(f" {os.getpid()}\n")
    assert clock.pauses == []


def test_commits_into_different_folders_do_not_wait_for_each_other(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    fds = [os.open(tmp_path / n, os.O_RDONLY | os.O_DIRECTORY) for n in ("a", "b")]
    try:
        with folder_lock(fds[0], "a"):
            done = threading.Event()

            def other() -> None:
                with folder_lock(fds[1], "b"):
                    done.set()

            t = threading.Thread(target=other)
            t.start()
            assert done.wait(10)
            t.join(10)
    finally:
        for fd in fds:
            os.close(fd)
