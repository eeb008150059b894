"""Files the admin holds back: jobs that may still run after a restart, and stuck files.

A held job released (its worker did not come back) counts as an attempt made, whether
the file's offer came before the release or only after it.  A stuck file (its source
could not even be failed) is listed with its reason until it is offered again or an
operator retries it; a source that changed is offered again with its attempts so far.
"""

from __future__ import annotations

import os

import pytest
from twisted.internet.task import Clock
from twisted.python.failure import Failure

from tests.unit.pbpairs import FakeReactor
from transcoder_admin.admin import create_admin
from transcoder_admin.context.checks import load_configuration
from transcoder_admin.intake import Intake, NotStuck, RemovalCheck, gone_paths
from transcoder_admin.monitoring import FileOffer
from transcoder_admin.proxy.cluster import HeldJob
from transcoder_admin.scheduler import QueueItem, Stuck
from transcoder_admin.transcoding.specs import JobSpecs

from .test_config import ADMIN_YAML, CUSTOMER_YAML, write

KEY = ("ACME Corp", "web", "news/clip.mov")


def admin_with_a_held_job(tmp_path):
    write(tmp_path, "admin.yaml", ADMIN_YAML + "api: {enabled: false}\n")
    write(tmp_path, "customers/acme.yaml", CUSTOMER_YAML)
    admin = create_admin(load_configuration(str(tmp_path / "admin.yaml")), Clock())
    admin._wire()
    held = HeldJob("J1", KEY, attempt=2, worker="w1", priority=10, detected_at=5.0)
    admin.cluster.held[KEY] = held
    return admin, held


def offer() -> FileOffer:
    return FileOffer(*KEY, detected_at=7.0, sig=(1, 2, 3))  # type: ignore[arg-type]


def queued_attempts(admin) -> int | None:
    item = admin.scheduler._queued.get(KEY)
    return None if item is None else item.attempts


def test_offer_while_held_waits_then_queues_with_the_attempts_made(tmp_path):
    """Offered while held: not queued; released: queued as having had 2 attempts."""
    admin, held = admin_with_a_held_job(tmp_path)
    admin.monitoring.file_added.fire(offer())
    assert queued_attempts(admin) is None
    admin.cluster._release(held, "its worker did not come back")
    assert queued_attempts(admin) == 2
    assert admin.scheduler._queued[KEY].identity == offer().identity  # for its job spec


def test_release_before_the_offer_keeps_the_attempts_for_it(tmp_path):
    """Released before monitoring saw the file: the later offer queues it with 2 attempts."""
    admin, held = admin_with_a_held_job(tmp_path)
    admin.cluster._release(held, "its worker did not come back")
    assert queued_attempts(admin) is None
    admin.monitoring.file_added.fire(offer())
    assert queued_attempts(admin) == 2
    # Only once: the same file offered again later starts from zero.
    admin.scheduler.dequeue(KEY)
    admin.monitoring.file_added.fire(offer())
    assert queued_attempts(admin) == 0


def plain_admin(tmp_path, reactor=None):
    """A wired admin (nothing started) whose monitoring records what it is told."""
    write(tmp_path, "admin.yaml", ADMIN_YAML + "api: {enabled: false}\n")
    write(tmp_path, "customers/acme.yaml", CUSTOMER_YAML)
    config = load_configuration(str(tmp_path / "admin.yaml"))
    admin = create_admin(config, reactor or Clock())
    admin._wire()
    calls = []
    admin.monitoring.release = lambda *key: calls.append(("release", key))
    admin.monitoring.forget = lambda *key: calls.append(("forget", key))
    return admin, calls


def test_the_offer_identity_goes_into_the_job_spec(tmp_path):
    """Offered with its identity: queued with it, and the job spec carries it."""
    admin, _ = plain_admin(tmp_path)
    admin.monitoring.file_added.fire(offer())
    item = admin.scheduler._queued[KEY]
    assert item.identity == offer().identity
    spec = JobSpecs(admin.store)(item, "J1", 1)
    assert spec.source_identity == {
        "dev": None,
        "ino": 1,
        "size": 2,
        "mtime_ns": 3,
        "host": None,
    }


def test_a_stuck_file_is_listed_counted_and_not_taken_until_it_changes(tmp_path):
    """Stuck: released to monitoring (taken again only once changed), listed with why."""
    admin, calls = plain_admin(tmp_path)
    admin.reactor.advance(60)
    admin.scheduler.transcoding_stuck.fire(Stuck(QueueItem(KEY, 1, 0.0), "cannot fail it"))
    assert calls == [("release", KEY)]
    [row] = admin.operations.files(state="stuck")["items"]
    assert row == {
        "customer": KEY[0],
        "profile": KEY[1],
        "relpath": KEY[2],
        "state": "stuck",
        "reason": "cannot fail it",
        "since": "1970-01-01T00:01:00+00:00",
    }
    assert admin.operations.status()["files"]["stuck"] == 1
    assert admin.operations.files()["total"] == 1
    admin.monitoring.file_added.fire(offer())  # it changed: offered anew
    assert admin.operations.files(state="stuck")["total"] == 0 and queued_attempts(admin) == 0


def retried(admin, key=KEY):
    """``retry_file``'s answer, or the error it failed with (its thread runs at once)."""
    outcome = []
    admin.operations.retry_file(*key).addBoth(outcome.append)
    [value] = outcome
    if isinstance(value, Failure):
        raise value.value
    return value


def test_an_operator_retries_a_stuck_file(tmp_path):
    """retry_file: the file is offered again at the next scan; a second retry is refused
    (it is not stuck, and not in the failed folder either)."""
    admin, calls = plain_admin(tmp_path, FakeReactor())
    with pytest.raises(NotStuck):
        retried(admin)
    admin.scheduler.transcoding_stuck.fire(Stuck(QueueItem(KEY, 1, 0.0), "cannot fail it"))
    assert retried(admin)["state"] == "offered"
    assert calls[-1] == ("forget", KEY)
    assert admin.operations.status()["files"]["stuck"] == 0
    with pytest.raises(NotStuck):
        retried(admin)


def test_a_stuck_file_removed_from_incoming_is_forgotten(tmp_path):
    """A stuck file deleted by hand is no longer listed once the periodic check sees it."""
    admin, _ = plain_admin(tmp_path)
    admin.scheduler.transcoding_stuck.fire(Stuck(QueueItem(KEY, 1, 0.0), "cannot fail it"))
    paths = admin.files.removal_check.paths()
    source = paths[KEY]
    assert source.startswith(str(tmp_path / "media")) and source.endswith("/news/clip.mov")
    os.makedirs(os.path.dirname(source))
    open(source, "wb").close()
    assert gone_paths(paths) == []
    os.unlink(source)
    assert gone_paths(paths) == [KEY]
    admin.files.intake.removed(KEY)  # what the check does with that answer, on the reactor
    assert admin.operations.files(state="stuck")["total"] == 0


def test_a_changed_source_is_offered_again_with_the_attempts_made(tmp_path):
    """Abandoned after a change at attempt 2: forgotten, and its next offer goes on at 1."""
    admin, calls = plain_admin(tmp_path)
    admin.scheduler.transcoding_abandoned.fire(QueueItem(KEY, 1, 0.0, attempts=1))
    assert calls == [("forget", KEY)]
    admin.monitoring.file_added.fire(offer())
    assert queued_attempts(admin) == 1


def test_a_report_without_the_usual_fields_still_gets_its_row_saved(tmp_path):
    """Bookkeeping of a finished file never stops its database row."""
    from transcoder_admin.records import Report
    from transcoder_admin.reports.files import row_from_report
    from transcoder_admin.scheduler import Finished

    admin, _ = plain_admin(tmp_path)
    saved = []
    admin.db.save = lambda row: saved.append(row)
    report = Report(job_id="J1", attempt=1, outcome="done", customer="c", profile="p", relpath="x")
    admin.scheduler.transcoding_done.fire(Finished(QueueItem(KEY, 1, 0.0), report))
    assert saved == [row_from_report(report)] and saved[0]["job_id"] == "J1"


class SyncPool:
    """A thread pool that runs the work at once (the test needs no threads)."""

    def callInThreadWithCallback(self, on_result, f, *args, **kwargs):  # noqa: N802
        """Run ``f`` and hand over its result."""
        try:
            result = f(*args, **kwargs)
        except Exception:
            on_result(False, Failure())
        else:
            on_result(True, result)


class ThreadedClock(Clock):
    """A clock that can also "run in a thread" (synchronously)."""

    def getThreadPool(self):  # noqa: N802
        """The synchronous pool."""
        return SyncPool()

    def callFromThread(self, f, *args, **kwargs):  # noqa: N802
        """Call at once."""
        f(*args, **kwargs)


def test_the_removal_check_forgets_stuck_files_gone_at_the_next_poll(tmp_path):
    """Every poll: a stuck file deleted, or of a profile gone, leaves the list; others stay."""
    clock = ThreadedClock()
    intake = Intake(clock)
    (tmp_path / "here.mov").write_bytes(b"x")
    where = {"here.mov": str(tmp_path / "here.mov"), "deleted.mov": str(tmp_path / "deleted.mov")}
    for name in ("here.mov", "deleted.mov", "of-a-gone-profile.mov"):
        intake.hold(("c", "p", name), "cannot fail it")
    check = RemovalCheck(intake, lambda key: where.get(key[2]), clock)
    check.start(10.0)
    clock.advance(9)
    assert intake.stuck_count() == 3  # not before the poll interval
    clock.advance(1)
    assert [s.key[2] for s in intake.stuck()] == ["here.mov"]
    check.stop()
