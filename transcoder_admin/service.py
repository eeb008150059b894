"""The admin's service tree: parts started one after the other, stopped in reverse.

Each :class:`Part` is a child service of the admin with an asynchronous start and stop
(CONVENTIONS.md 1-2).  Its name is what the start-up log says (``start-up: open the
reports database``).  The root starts its parts in the order they were added, each
with a timeout, and stops those that began starting in the reverse order.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import Any

from twisted.application.service import MultiService, Service
from twisted.internet import defer
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger

Step = Callable[[], Awaitable[Any] | defer.Deferred[Any] | None]


async def _run(step: Step | None) -> None:
    if step is None:
        return
    result = step()
    if isinstance(result, defer.Deferred) or inspect.isawaitable(result):
        await result


class Part(Service):
    """One part of the admin: what starts it and what stops it."""

    def __init__(self, name: str, start: Step, stop: Step | None = None) -> None:
        self.setName(name)
        self._start, self._stop = start, stop

    async def begin(self) -> None:
        """Start the part (it counts as running from the first moment: a stop stops it)."""
        Service.startService(self)
        await _run(self._start)

    async def end(self) -> None:
        """Stop the part, if it began."""
        if self.running:
            Service.stopService(self)
            await _run(self._stop)


class PartsService(MultiService):
    """A root whose children are :class:`Part`\\ s, started in order and stopped in reverse."""

    log = Logger()

    def parts(self) -> list[Part]:
        """The parts in start order."""
        return [child for child in self if isinstance(child, Part)]

    async def start_parts(self, timeout: float, clock: IReactorTime) -> None:
        """Start each part in turn; one that takes longer than ``timeout`` fails the start."""
        for part in self.parts():
            self.log.info("start-up: {what}", what=part.name)
            d: defer.Deferred[None] = defer.ensureDeferred(part.begin())
            d.addTimeout(timeout, clock)
            try:
                await d
            except defer.TimeoutError:
                raise RuntimeError(
                    f"start-up step {part.name!r} took longer than {timeout:g} s"
                ) from None

    async def stop_parts(self) -> None:
        """Stop the parts that began, last started first; one failing does not stop the rest."""
        for part in reversed(self.parts()):
            try:
                await part.end()
            except Exception:
                self.log.failure("stopping {what} failed", what=part.name)
