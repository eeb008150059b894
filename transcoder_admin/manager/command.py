"""``transcoder-admin manager``: a standalone manager for a multi-host farm."""

from __future__ import annotations

import sys
from typing import Any

from ..config.alone import ManagerConfiguration
from ..credentials import ADMIN_USER, CredentialsError, load_credentials


def run(config: ManagerConfiguration) -> int:
    """Listen on ``manager.listen`` until SIGTERM; workers and the admin log in."""
    path = config.manager_credentials()
    if not path:
        print("transcoder-admin manager: manager.credentials is required", file=sys.stderr)
        return 1
    try:
        users = load_credentials(path)
    except CredentialsError as e:
        print(f"transcoder-admin manager: {e}", file=sys.stderr)
        return 1
    if ADMIN_USER not in users:
        print(f"transcoder-admin manager: {path} has no {ADMIN_USER}: line", file=sys.stderr)
        return 1
    from twisted.internet import reactor as _reactor

    from . import Manager, ManagerService

    reactor: Any = _reactor
    service = ManagerService(Manager(), config.manager.listen, users, reactor)
    failed: list[str] = []

    def start() -> None:
        def refused(f: Any) -> None:
            failed.append(f.getErrorMessage())
            print(f"transcoder-admin manager: cannot listen: {failed[0]}", file=sys.stderr)
            reactor.stop()

        service.start().addErrback(refused)

    reactor.callWhenRunning(start)
    reactor.addSystemEventTrigger("before", "shutdown", service.stopService)
    reactor.run()
    return 1 if failed else 0
