"""Both ends of a worker's PB link send each message at once (TCP_NODELAY).

The brokers are the real ones (the manager's guarded broker, the worker's link broker)
on Twisted's real TCP transport over a connected loopback socket pair, under TLS too.
"""

from __future__ import annotations

import socket
from typing import Any

from twisted.internet import tcp
from twisted.internet.testing import MemoryReactorClock
from twisted.protocols.tls import TLSMemoryBIOFactory
from twisted.trial.unittest import SynchronousTestCase

from transcoder_admin.manager import Manager, ManagerService
from transcoder_admin.pblink import _LinkFactory


class NoDelayTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.reactor = MemoryReactorClock()
        listener = socket.create_server(("127.0.0.1", 0))
        self.addCleanup(listener.close)
        self.client = socket.create_connection(listener.getsockname())
        self.server, _ = listener.accept()
        for s in (self.client, self.server):
            self.addCleanup(s.close)

    def connect(self, factory: Any, sock: socket.socket) -> Any:
        protocol = factory.buildProtocol(sock.getpeername())
        transport = tcp.Connection(sock, protocol, self.reactor)
        self.assertEqual(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY), 0)
        protocol.makeConnection(transport)
        return sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)

    def manager(self) -> Any:
        return ManagerService(Manager(), "tcp:0", {"w1": b"one"}, self.reactor).factory()

    def test_the_manager_sends_without_delay(self) -> None:
        self.assertTrue(self.connect(self.manager(), self.server))

    def test_the_worker_sends_without_delay(self) -> None:
        self.assertTrue(self.connect(_LinkFactory(), self.client))

    def test_under_tls_too(self) -> None:
        """The broker's transport is the TLS layer; the option goes to the socket below."""
        from twisted.internet import ssl

        options = ssl.CertificateOptions()  # no handshake happens here
        wrapped = TLSMemoryBIOFactory(options, True, _LinkFactory())
        self.assertTrue(self.connect(wrapped, self.client))
