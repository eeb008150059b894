"""The manager's door: a connection must log in within the time limit, only so many may
wait at once, and a connection that logged in is not timed out.  Brokers are built by the
real factory on a clock; a login goes through the real portal over a PB pair."""

from __future__ import annotations

from typing import Any

from twisted.internet.address import IPv4Address
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.logger import capturedLogs, formatEvent
from twisted.spread import pb
from twisted.trial.unittest import SynchronousTestCase

from transcoder_admin.manager import Manager, ManagerService
from transcoder_admin.manager.guard import LOGIN_TIMEOUT, GuardedBroker, note_login

PEER = IPv4Address("TCP", "192.0.2.7", 40000)


class Creds:
    """What the portal is handed by PB: a challenger that knows its broker."""

    def __init__(self, broker: Any) -> None:
        self.broker = broker


class GuardTests(SynchronousTestCase):
    """The factory the manager listens with, on a clock."""

    def setUp(self) -> None:
        self.clock = MemoryReactorClock()
        self.service = ManagerService(Manager(), "tcp:0", {"w1": b"one"}, self.clock)
        self.factory: Any = self.service.factory()

    def connect(self) -> tuple[GuardedBroker, StringTransport]:
        """A new connection from PEER."""
        broker = self.factory.buildProtocol(PEER)
        transport = StringTransport(peerAddress=PEER)
        broker.makeConnection(transport)
        return broker, transport

    def test_a_connection_that_does_not_log_in_is_closed(self) -> None:
        """Closed at the limit, not before, with a line naming the peer."""
        with capturedLogs() as events:
            _broker, transport = self.connect()
            self.clock.advance(LOGIN_TIMEOUT - 0.1)
            self.assertFalse(transport.disconnecting)
            self.clock.advance(0.2)
        self.assertTrue(transport.disconnecting)
        text = "\n".join(formatEvent(e) for e in events)
        self.assertIn(f"no login within {LOGIN_TIMEOUT:g} s", text)
        self.assertIn("192.0.2.7", text)

    def test_connections_beyond_the_cap_are_closed_at_once(self) -> None:
        """With the cap reached, the next connection is dropped; a freed place is reused."""
        self.factory.max_waiting = 2
        first, first_transport = self.connect()
        self.connect()
        with capturedLogs() as events:
            _third, third_transport = self.connect()
        self.assertTrue(third_transport.disconnecting)
        self.assertIn("2 connections have not logged in yet", formatEvent(events[-1]))
        first.connectionLost(pb.failure.Failure(ConnectionError("gone")))
        _fourth, fourth_transport = self.connect()
        self.assertFalse(fourth_transport.disconnecting)
        self.assertEqual(len(self.factory.waiting), 2)

    def test_a_connection_that_logged_in_has_no_clock(self) -> None:
        """After the portal's login, the limit no longer applies and the place is freed."""
        broker, transport = self.connect()
        note_login(Creds(broker))
        self.clock.advance(LOGIN_TIMEOUT * 3)
        self.assertFalse(transport.disconnecting)
        self.assertEqual(self.factory.waiting, set())
        self.assertEqual(self.clock.getDelayedCalls(), [])
