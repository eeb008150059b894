"""Files whose job may still run after an admin restart (held by the journal).

A held job released (its worker did not come back) counts as an attempt made, whether
the file's offer came before the release or only after it.
"""

from __future__ import annotations

from twisted.internet.task import Clock

from transcoder_admin.admin import create_admin
from transcoder_admin.config.loader import load_configuration
from transcoder_admin.monitoring import FileOffer
from transcoder_admin.proxy.cluster import HeldJob

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
