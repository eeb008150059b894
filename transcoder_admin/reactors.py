"""The reactor the farm's parts are given, as one type mypy can check.

Parts take their reactor as a constructor argument (tests pass a clock or a memory
reactor). A part that only needs time takes an ``IReactorTime``; one that also runs
threads, processes, file descriptors, TCP or system-event triggers takes an
:class:`IFarmReactor`: the interfaces Twisted's default reactor provides that the farm
uses. It is a type for mypy (mypy-zope), never checked at run time.
"""

from __future__ import annotations

from typing import cast

from twisted.internet.interfaces import (
    IReactorCore,
    IReactorFDSet,
    IReactorProcess,
    IReactorTCP,
    IReactorThreads,
    IReactorTime,
)


class IFarmReactor(
    IReactorCore, IReactorTime, IReactorThreads, IReactorProcess, IReactorFDSet, IReactorTCP
):
    """Time, threads, processes, file descriptors, TCP and system events (the default
    reactor)."""


__all__ = ["IFarmReactor", "default_reactor"]


def default_reactor() -> IFarmReactor:
    """The global reactor (installed on first use), typed as the farm's."""
    from twisted.internet import reactor

    return cast(IFarmReactor, reactor)
