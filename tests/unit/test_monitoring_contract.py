"""One contract, two monitorings: the admin's own, and monitors on workers.

With ``monitoring.on-workers`` the admin places each customer's monitor on a worker
(``RemoteMonitoring``), which scans with its own roots and reports over PB; without
it the admin scans itself (``Monitoring``).  Either way the rest of the admin must hear
the same things: a complete file offered once with its key and identity, a file gone
before its job took it, links never offered but listed as ignored.  Real folders; the
remote side is a real ``WorkerDaemon`` over an in-memory PB transport.
"""

from __future__ import annotations

import os
from typing import Any

from twisted.trial.unittest import SynchronousTestCase

from transcoder_admin.config.model import MonitoringSection
from transcoder_admin.context.paths import Roots
from transcoder_admin.monitoring import Monitoring
from transcoder_admin.monitoring.remote import RemoteMonitoring
from transcoder_admin.proxy.components import ComponentSet

from .pbpairs import FakeReactor, scratch
from .test_pb_manager import Farm

SETTINGS = MonitoringSection(stable_for=1, mode="poll", poll_interval=1)


class Profile:
    """A profile as monitoring reads it: a name and an incoming folder."""

    def __init__(self, name: str, incoming: str) -> None:
        self.name = name
        self.incoming = incoming

    def folder(self, kind: str) -> str:
        """Its incoming folder (the only one monitoring asks for)."""
        return self.incoming


class Customer:
    """A customer as monitoring reads it."""

    def __init__(self, name: str, profiles: dict[str, str]) -> None:
        self.name = name
        self._profiles = [Profile(n, f) for n, f in profiles.items()]

    def profiles(self) -> list[Profile]:
        """Its profiles."""
        return self._profiles


class MonitoringContract:
    """What any monitoring tells the admin; a subclass builds one and runs time."""

    media: str
    monitoring: Any

    def wait(self, seconds: float) -> None:
        """Let time pass (scans, stability checks, messages)."""
        raise NotImplementedError

    def start(self) -> None:
        """Watch customer ``acme``'s profile ``web`` (incoming ``default:/acme/in``)."""
        self.added: list[Any] = []
        self.removed: list[Any] = []
        self.monitoring.file_added.subscribe(self.added.append)
        self.monitoring.file_removed.subscribe(self.removed.append)
        self.incoming = os.path.join(self.media, "acme", "in")
        os.makedirs(self.incoming)
        self.monitoring.set_customers([Customer("acme", {"web": "default:/acme/in"})])
        self.monitoring.start()
        self.wait(2)

    def test_a_complete_file_is_offered_once_with_its_key_and_identity(self) -> None:
        """A file unchanged for stable-for seconds: one offer naming it and its inode."""
        self.start()
        path = os.path.join(self.incoming, "clip one.mov")
        with open(path, "wb") as f:
            f.write(b"x" * 100)
        self.wait(5)
        [offer] = self.added
        self.assertEqual(offer.key, ("acme", "web", "clip one.mov"))
        st = os.stat(path)
        identity = offer.identity
        self.assertEqual((identity["ino"], identity["size"]), (st.st_ino, 100))
        self.assertEqual(identity["mtime_ns"], st.st_mtime_ns)
        self.wait(5)
        self.assertEqual(len(self.added), 1, "offered twice")

    def test_a_file_gone_before_its_job_took_it_is_said_removed(self) -> None:
        """Offered, then deleted by its uploader: one removal with the same key."""
        self.start()
        path = os.path.join(self.incoming, "gone.mov")
        with open(path, "wb") as f:
            f.write(b"y" * 10)
        self.wait(5)
        self.assertEqual([o.relpath for o in self.added], ["gone.mov"])
        os.unlink(path)
        self.wait(3)
        self.assertEqual([o.key for o in self.removed], [("acme", "web", "gone.mov")])

    def test_links_are_never_offered_and_are_listed_as_ignored(self) -> None:
        """A symbolic link in incoming: no offer; /files?state=ignored lists it with why."""
        self.start()
        outside = os.path.join(self.media, "secret.mov")
        with open(outside, "wb") as f:
            f.write(b"not yours")
        os.symlink(outside, os.path.join(self.incoming, "link.mov"))
        self.wait(5)
        self.assertEqual(self.added, [])
        ignored = [(r["relpath"], r["reason"]) for r in self.monitoring.ignored()]
        self.assertEqual(ignored, [("link.mov", "a symbolic link")])

    def test_a_file_still_growing_is_pending_not_offered(self) -> None:
        """Written to at every look: listed as pending, not offered."""
        self.start()
        path = os.path.join(self.incoming, "upload.mov")
        for size in range(1, 5):
            with open(path, "ab") as f:
                f.write(b"z" * size * 10)
            self.wait(0.5)
        self.assertEqual(self.added, [])
        self.assertEqual([r["relpath"] for r in self.monitoring.pending()], ["upload.mov"])


class LocalMonitoringTests(MonitoringContract, SynchronousTestCase):
    """The admin scans its incoming folders itself."""

    def setUp(self) -> None:
        base = scratch(self)
        self.media = os.path.join(base, "media")
        self.reactor = FakeReactor()
        self.reactor.advance(1_700_000_000)
        self.monitoring = Monitoring(SETTINGS, Roots({"default": self.media}), self.reactor)
        self.addCleanup(self.monitoring.stop)

    def wait(self, seconds: float) -> None:
        """Advance the clock in small steps."""
        for _ in range(round(seconds / 0.25)):
            self.reactor.advance(0.25)


class RemoteMonitoringTests(MonitoringContract, SynchronousTestCase):
    """A monitor on a worker, placed and heard through the manager over PB."""

    def setUp(self) -> None:
        self.farm = Farm(self)
        self.farm.embedded()
        self.media = self.farm.media
        self.farm.worker("w1")
        components = ComponentSet(self.farm.workers)
        self.monitoring = RemoteMonitoring(
            SETTINGS, self.farm.workers, components.monitors, self.farm.reactor
        )
        self.addCleanup(self.monitoring.stop)

    def wait(self, seconds: float) -> None:
        """Advance the clock and pump PB in small steps (heartbeats carry the pending)."""
        self.farm.net.run(seconds, step=0.25)
