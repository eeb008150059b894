"""The admin's view of the cluster: its manager and the workers logged in to it.

:class:`ManagerSet` attaches the admin to its manager (the embedded one in this process,
or a standalone one over PB) and fires ``attached``/``detached``.  :class:`WorkerSet`
keeps one :class:`WorkerProxy` per worker, an :class:`IWorkerConnection` whose calls
go through the manager, and fires ``worker-added``/``worker-removed`` (a worker is
removed when it has been silent for ``workers.lost-timeout`` seconds, not when one TCP
connection drops) and ``worker-attached``/``worker-detached`` as its link comes and
goes (events ``link_up``/``link_down``).  Liveness is measured on the injected clock.

A worker's messages are claims (:mod:`.checks`): a worker whose hello facts are wrong
is refused, a wrong heartbeat is ignored, and an outcome that is not the started job's
own becomes a system failure of that attempt.
"""

from __future__ import annotations

from ..pberrors import RemoteError
from .managers import ManagerSet
from .worker import WorkerProxy
from .workers import COMPLAIN_EVERY, WorkerSet

__all__ = ["COMPLAIN_EVERY", "ManagerSet", "RemoteError", "WorkerProxy", "WorkerSet"]
