"""A fake Compressor and Batch Monitor in memory, for unit tests of Qmaster users.

``FakeQmaster`` answers the argv lists of ``commands.py`` the way the real tools do
(docs/qmaster.md, "Command contract"), without processes or wall-clock time: use
``blocking_runner`` with a :class:`FakeTime` for ``BlockingClient``, or
``twisted_runner(clock)`` with a ``task.Clock`` for ``QmasterClient``. A hanging
command answers ``timed_out`` once its timeout has passed on that clock. Pair it with
``QmasterSettings(check_paths=False)``: nothing it is asked about exists on disk.
The process-level emulator used by integration tests is tests/qmaster_emulator/.
"""

from __future__ import annotations

import shlex
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from twisted.internet import defer

from .model import CommandResult
from .settings import LOCAL_CLUSTER, QmasterSettings

HANG = "hang"


@dataclass
class FakeBatch:
    """One batch the fake accepted."""

    batch_id: str
    cluster: str
    name: str
    priority: str
    jobs: list[tuple[str, str, str]]
    queries: int = 0
    state: str = "Waiting"


@dataclass
class FakeTime:
    """A clock for BlockingClient: ``now`` and ``sleep`` without waiting."""

    current: float = 0.0
    sleeps: list[float] = field(default_factory=list)

    def now(self) -> float:
        """The fake time."""
        return self.current

    def sleep(self, seconds: float) -> None:
        """Advance the fake time."""
        self.sleeps.append(seconds)
        self.current += seconds


class FakeQmaster:
    """Scripted Compressor and Batch Monitor.

    Knobs (attributes): ``clusters``; ``submit_answers``, a list consumed one per
    submission of "ok", "hang", "silent", ("error", text) or ("exit", code, stderr);
    ``statuses``, the words (or "hang", "garbage", "empty") of successive queries of
    every batch before ``outcome``; ``cancel_exit_code``.
    """

    def __init__(self, settings: QmasterSettings, clusters: Sequence[str] = (LOCAL_CLUSTER,)):
        self.settings = settings
        self.clusters = set(clusters)
        self.submit_answers: list[Any] = []
        self.statuses: list[str] = ["Waiting", "Processing"]
        self.outcome = "Successful"
        self.cancel_exit_code = 0
        self.batches: dict[str, FakeBatch] = {}
        self.calls: list[list[str]] = []

    def _argv(self, argv: Sequence[str]) -> list[str]:
        prefix = self.settings.command_prefix
        if prefix:
            return shlex.split(" ".join(argv[len(prefix) :]))
        return list(argv)

    def answer(self, argv: Sequence[str]) -> tuple[str, str, int] | None:
        """(stdout, stderr, exit code) for ``argv``, or None when the tool hangs."""
        args = self._argv(argv)
        self.calls.append(args)
        options = dict(zip(args[1::2], args[2::2], strict=False))
        cluster = options.get("-clustername", "")
        if cluster not in self.clusters:
            return "", f'Could not find cluster "{cluster}"\n', 1
        if args[0] == self.settings.compressor:
            return self._submit(args, options)
        batch = self.batches.get(options.get("-batchid", ""))
        if batch is None:
            return "", "no such batch\n", 1
        if self.settings.cancel_flag in args:
            if batch.state not in ("Successful", "Failed"):
                batch.state = "Cancelled"
            return "", "", self.cancel_exit_code
        return self._query(batch)

    def _submit(self, args: list[str], options: dict[str, str]) -> tuple[str, str, int] | None:
        answer = self.submit_answers.pop(0) if self.submit_answers else "ok"
        if answer == HANG:
            return None
        if answer == "silent":
            return "", "", 0
        if isinstance(answer, tuple) and answer[0] == "error":
            return "", f"Submission Error: {answer[1]}\n", 0
        if isinstance(answer, tuple) and answer[0] == "exit":
            return "", str(answer[2]), int(answer[1])
        triples = [tuple(args[i + 1 : i + 6 : 2]) for i, a in enumerate(args) if a == "-jobpath"]
        batch = FakeBatch(
            str(uuid.uuid4()).upper(),
            options["-clustername"],
            options["-batchname"],
            options["-priority"],
            [(t[0], t[1], t[2]) for t in triples],
        )
        self.batches[batch.batch_id] = batch
        lines = [f"<jobID {uuid.uuid4()} />" for _ in batch.jobs]
        return "", "\n".join([*lines, f"<batchID {batch.batch_id} />", ""]), 0

    def _query(self, batch: FakeBatch) -> tuple[str, str, int] | None:
        if batch.state in ("Successful", "Failed", "Cancelled"):
            word = batch.state
        elif batch.queries < len(self.statuses):
            word = self.statuses[batch.queries]
            batch.queries += 1
        else:
            word = batch.state = self.outcome
        if word == HANG:
            return None
        if word == "garbage":
            return "internal error\n", "", 0
        if word == "empty":
            return "", "", 0
        batch.state = word.strip()
        return f'<batchStatus name="{batch.name}" status="{word}">\n</batchStatus>\n', "", 0

    def blocking_runner(self, time: FakeTime) -> Any:
        """A runner for BlockingClient; a hang costs its timeout on ``time``."""

        def run(argv: Sequence[str], timeout: float) -> CommandResult:
            answer = self.answer(argv)
            if answer is None:
                time.current += timeout
                return CommandResult(tuple(argv), "", "", None, 9, True, timeout)
            stdout, stderr, code = answer
            return CommandResult(tuple(argv), stdout, stderr, code)

        return run

    def twisted_runner(self, clock: Any) -> Any:
        """A runner for QmasterClient; a hang answers timed_out after its timeout on ``clock``."""

        def run(argv: Sequence[str], timeout: float) -> defer.Deferred[CommandResult]:
            answer = self.answer(argv)
            if answer is None:
                calls: list[Any] = []
                d: defer.Deferred[CommandResult] = defer.Deferred(lambda _: calls[0].cancel())
                result = CommandResult(tuple(argv), "", "", None, 9, True, timeout)
                calls.append(clock.callLater(timeout, d.callback, result))
                return d
            stdout, stderr, code = answer
            return defer.succeed(CommandResult(tuple(argv), stdout, stderr, code))

        return run


__all__ = ["HANG", "FakeBatch", "FakeQmaster", "FakeTime"]
