"""The two command runners of the Qmaster client: streams, exit codes, process groups.

Both the Twisted runner (process.py) and the blocking one (blocking.py) start each
command as the leader of a new group, kill the whole group at the timeout, and answer
even when a descendant that left the group keeps the pipes open.
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
import tempfile
import time

from twisted.internet import defer, reactor, task
from twisted.trial import unittest

from transcoder_admin.qmaster import blocking, process
from transcoder_admin.qmaster.groups import alive, group_members
from transcoder_admin.qmaster.model import CommandResult

CHATTY = "import sys; print('out'); print('err', file=sys.stderr); sys.exit(3)"
# Starts a child (same group), writes both pids, hangs.
FAMILY = (
    "import os, subprocess, sys, time\n"
    "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
    "open(sys.argv[1], 'w').write(f'{os.getpid()} {child.pid}')\n"
    "time.sleep(60)\n"
)
# Starts a descendant in a session of its own that keeps our pipes open, then hangs.
ESCAPEE = (
    "import os, subprocess, sys, time\n"
    "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'],"
    " start_new_session=True)\n"
    "open(sys.argv[1], 'w').write(str(child.pid))\n"
    "time.sleep(60)\n"
)


def python(code: str, *args: str) -> list[str]:
    """argv of a Python snippet."""
    return [sys.executable, "-c", code, *args]


def read_pids(path: str) -> list[int]:
    """The pids a snippet wrote."""
    with open(path) as f:
        return [int(p) for p in f.read().split()]


def blocking_run(argv: list[str], timeout: float) -> CommandResult:
    """The blocking runner."""
    return blocking.run_command(argv, timeout)


def test_blocking_streams_and_exit_code():
    """Both streams are kept apart and the exit code is reported."""
    result = blocking_run(python(CHATTY), 10)
    assert (result.stdout, result.stderr, result.exit_code) == ("out\n", "err\n", 3)
    assert not result.timed_out


def test_blocking_timeout_kills_the_group(tmp_path):
    """At the timeout the command and its child die; the result says timed out."""
    pids_file = str(tmp_path / "pids")
    started = time.monotonic()
    result = blocking_run(python(FAMILY, pids_file), 1.0)
    assert result.timed_out and result.how_it_ended() == "timed out"
    assert time.monotonic() - started < 8
    pids = read_pids(pids_file)
    # SIGKILL is sent before the answer; dying takes the kernel a moment (the child has
    # closed the pipes before it is a zombie), as in the Twisted runner's twin below.
    deadline = time.monotonic() + 5
    while any(alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(alive(p) for p in pids)
    assert group_members(pids[0]) == []


def test_blocking_answers_despite_an_escaped_descendant(tmp_path, monkeypatch):
    """A descendant in its own session holding the pipes cannot block the answer."""
    monkeypatch.setattr(blocking, "DRAIN_SECONDS", 0.5)
    pid_file = str(tmp_path / "pid")
    try:
        started = time.monotonic()
        result = blocking_run(python(ESCAPEE, pid_file), 1.0)
        assert result.timed_out
        assert time.monotonic() - started < 8
    finally:
        if os.path.exists(pid_file):
            os.kill(read_pids(pid_file)[0], signal.SIGKILL)


def test_blocking_missing_program():
    """A program that cannot start is exit 127 with the reason, not an exception."""
    result = blocking_run(["/no/such/program"], 5)
    assert result.exit_code == 127 and "cannot run" in result.stderr


class TwistedRunnerTests(unittest.TestCase):
    """process.run_command on the real reactor."""

    timeout = 60

    def setUp(self) -> None:
        self.folder = tempfile.mkdtemp(prefix="qmaster-process-")
        self.addCleanup(shutil.rmtree, self.folder, True)

    @defer.inlineCallbacks
    def test_streams_and_exit_code(self):
        """Both streams are kept apart and the exit code is reported."""
        result = yield process.run_command(reactor, python(CHATTY), 10)
        self.assertEqual((result.stdout, result.stderr, result.exit_code), ("out\n", "err\n", 3))
        self.assertFalse(result.timed_out)

    @defer.inlineCallbacks
    def test_timeout_kills_the_group(self):
        """At the timeout the command and its child die; the result says timed out."""
        pids_file = os.path.join(self.folder, "pids")
        result = yield process.run_command(reactor, python(FAMILY, pids_file), 1.0)
        self.assertTrue(result.timed_out)
        pids = read_pids(pids_file)
        for _ in range(100):
            if not any(alive(p) for p in pids):
                break
            yield task.deferLater(reactor, 0.05, lambda: None)
        self.assertFalse(any(alive(p) for p in pids))
        self.assertEqual(group_members(pids[0]), [])

    @defer.inlineCallbacks
    def test_answers_despite_an_escaped_descendant(self):
        """A descendant in its own session holding the pipes cannot block the answer."""
        self.patch(process, "FORCE_END_SECONDS", 0.5)
        pid_file = os.path.join(self.folder, "pid")
        started = reactor.seconds()
        try:
            result = yield process.run_command(reactor, python(ESCAPEE, pid_file), 1.0)
            self.assertTrue(result.timed_out)
            self.assertLess(reactor.seconds() - started, 8)
        finally:
            if os.path.exists(pid_file):
                os.kill(read_pids(pid_file)[0], signal.SIGKILL)

    @defer.inlineCallbacks
    def test_cancel_kills_the_group(self):
        """Cancelling the Deferred kills the command's whole group."""
        pids_file = os.path.join(self.folder, "pids")
        d = process.run_command(reactor, python(FAMILY, pids_file), 30)
        for _ in range(200):
            if os.path.exists(pids_file) and os.path.getsize(pids_file):
                break
            yield task.deferLater(reactor, 0.05, lambda: None)
        d.cancel()
        with self.assertRaises(defer.CancelledError):
            yield d
        pids = read_pids(pids_file)
        for _ in range(100):
            if not any(alive(p) for p in pids):
                break
            yield task.deferLater(reactor, 0.05, lambda: None)
        self.assertFalse(any(alive(p) for p in pids))
