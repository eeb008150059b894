"""job.process: real programs in their own process groups, on the real reactor."""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile

from twisted.internet import defer, reactor, task
from twisted.trial import unittest

from transcoder_admin.job.process import spawn

BURN = "import time\nend = time.process_time() + {seconds}\nwhile time.process_time() < end: pass\n"


def python(code: str, *args: str) -> list[str]:
    return [sys.executable, "-c", code, *args]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


class ProcessTests(unittest.TestCase):
    timeout = 60

    def folder(self) -> str:
        folder = tempfile.mkdtemp(prefix="process-test-")
        self.addCleanup(shutil.rmtree, folder, True)
        return folder

    @defer.inlineCallbacks
    def test_cpu_time_is_the_programs_own(self) -> defer.Deferred[None]:
        """Two programs at once: each result counts only its own CPU seconds."""
        burner = spawn(reactor, python(BURN.format(seconds=0.6)))
        sleeper = spawn(reactor, python("import time; time.sleep(1.0)"))
        burned, slept = yield defer.gatherResults([burner.result, sleeper.result])
        self.assertTrue(burned.ok and slept.ok)
        self.assertGreaterEqual(burned.cpu_time, 0.55)
        self.assertLess(burned.cpu_time, 5.0)
        # The sleeper ended after the burner: a process-wide RUSAGE_CHILDREN delta
        # would have charged it the burner's 0.6 s.
        self.assertLess(slept.cpu_time, 0.3)

    @defer.inlineCallbacks
    def test_timeout_kills_the_whole_group(self) -> defer.Deferred[None]:
        """A program that started a child of its own: the timeout kills both."""
        folder = self.folder()
        pidfile = os.path.join(folder, "child.pid")
        code = (
            "import subprocess, sys, time\n"
            "p = subprocess.Popen(['sleep', '300'])\n"
            "open(sys.argv[1], 'w').write(str(p.pid))\n"
            "time.sleep(300)\n"
        )
        running = spawn(reactor, python(code, pidfile), timeout=1.0)
        result = yield running.result
        self.assertTrue(result.timed_out)
        self.assertFalse(result.ok)
        with open(pidfile) as f:
            child = int(f.read())
        for _ in range(50):
            if not alive(child):
                break
            yield task.deferLater(reactor, 0.1, lambda: None)
        self.assertFalse(alive(child), "the program's own child outlived the timeout")

    @defer.inlineCallbacks
    def test_arguments_reach_the_program_unchanged(self) -> defer.Deferred[None]:
        """No shell: quotes, $(), ;, newlines and a leading dash are plain argv items."""
        hostile = ["-x", "a b", "it's", '"q"', "$(touch /tmp/pwned)", "a;b", "line\nbreak", "é"]
        folder = self.folder()
        out = os.path.join(folder, "argv")
        code = "import sys, json; open(sys.argv[1], 'w').write(json.dumps(sys.argv[2:]))"
        result = yield spawn(reactor, python(code, out, *hostile)).result
        self.assertTrue(result.ok, result.stderr_tail)
        with open(out) as f:
            self.assertEqual(json.load(f), hostile)

    @defer.inlineCallbacks
    def test_nice_level_and_own_session(self) -> defer.Deferred[None]:
        """The program runs at the job's nice level in a session of its own."""
        folder = self.folder()
        out = os.path.join(folder, "ids")
        code = (
            "import os, sys\n"
            "open(sys.argv[1], 'w').write(f'{os.nice(0)} {os.getsid(0)} {os.getpid()}')"
        )
        result = yield spawn(reactor, python(code, out), nice=7).result
        self.assertTrue(result.ok, result.stderr_tail)
        with open(out) as f:
            niceness, sid, pid = map(int, f.read().split())
        self.assertEqual(niceness, min(os.nice(0) + 7, 19))
        self.assertEqual(sid, pid)
        self.assertNotEqual(sid, os.getsid(0))

    @defer.inlineCallbacks
    def test_exit_code_and_stderr_tail(self) -> defer.Deferred[None]:
        """A failing program: its exit code and the end of what it wrote to stderr."""
        code = "import sys; sys.stderr.write('x' * 10000 + '\\nthe real reason\\n'); sys.exit(3)"
        result = yield spawn(reactor, python(code)).result
        self.assertFalse(result.ok)
        self.assertEqual(result.exit_code, 3)
        self.assertTrue(result.stderr_tail.endswith("the real reason"))
        self.assertLessEqual(len(result.stderr_tail), 4096)
