"""A real farm for integration tests: the admin as its own process, on a tmp folder.

The admin runs ``python -m transcoder_admin run`` on a generated config; tests drop
files into incoming folders, wait for what a user would see (outputs, sources moved,
reports, API answers) and send real signals.
"""

from __future__ import annotations

import glob
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import textwrap
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

import yaml

from tests.openapi_check import check_answer

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def free_port() -> int:
    """A TCP port free on loopback right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(predicate: Callable[[], Any], timeout: float = 60.0, what: str = "") -> Any:
    """Poll ``predicate`` until it returns something truthy; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what or predicate}")
        time.sleep(0.1)


def processes_with(mark: str) -> list[str]:
    """Pids of the processes whose command line holds ``mark`` (a test's marker)."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if mark.encode() in f.read():
                    found.append(pid)
        except OSError:
            pass
    return found


def read_log(path: str) -> str:
    """A process's log file so far ("" before it exists)."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read()
    except FileNotFoundError:
        return ""


class Farm:
    """A configured farm folder and, once started, its admin process."""

    def __init__(
        self,
        base: str,
        customers: dict[str, dict[str, Any]],
        *,
        stable_for: float = 0.3,
        max_jobs: int = 2,
        local: int = 1,
        mode: str = "auto",
        poll_interval: float = 1.0,
        reports_url: str | None = None,
        defaults: dict[str, Any] | None = None,
    ) -> None:
        self.base = base
        self.port = free_port()
        self.manager_port = free_port()
        self.media = os.path.join(base, "media")
        self.temp = os.path.join(base, "tmp")
        self.config_path = os.path.join(base, "etc", "admin.yaml")
        self.log_path = os.path.join(base, "admin.log")
        self.process: subprocess.Popen[bytes] | None = None
        #: Other processes of this farm (external workers, a standalone manager), by name.
        self.daemons: dict[str, Daemon] = {}
        self.admin_config = {
            "admin": {"customers": "customers", "name": "test"},
            "roots": {"default": self.media, "temp": self.temp},
            "reports": {"url": reports_url or f"sqlite:///{base}/reports.sqlite"},
            "api": {"listen": f"tcp:{self.port}:interface=127.0.0.1"},
            "manager": {"listen": f"tcp:{self.manager_port}:interface=127.0.0.1"},
            "workers": {"local": local, "max-jobs": max_jobs},
            "monitoring": {"stable-for": stable_for, "mode": mode, "poll-interval": poll_interval},
            "defaults": defaults or {"max-attempts": 1},
        }
        os.makedirs(os.path.join(base, "etc", "customers"), exist_ok=True)
        self.write_config()
        for name, customer in customers.items():
            self.write_customer(name, customer)

    def write_config(self) -> None:
        """Write ``admin_config`` to the admin's config file (after changing it)."""
        with open(self.config_path, "w") as f:
            yaml.safe_dump(self.admin_config, f)

    def configure(self, section: str, **values: Any) -> None:
        """Set keys of one section of the admin config (``max_jobs`` → ``max-jobs``)."""
        self.admin_config.setdefault(section, {}).update(
            {key.replace("_", "-"): value for key, value in values.items()}
        )
        self.write_config()

    def write_customer(self, filename: str, customer: dict[str, Any]) -> None:
        """Write (or replace) one customer file."""
        path = os.path.join(self.base, "etc", "customers", f"{filename}.yaml")
        with open(path, "w") as f:
            yaml.safe_dump(customer, f, allow_unicode=True)

    def remove_customer(self, filename: str) -> None:
        """Delete one customer file."""
        os.unlink(os.path.join(self.base, "etc", "customers", f"{filename}.yaml"))

    # -- process -------------------------------------------------------------------

    #: ``--log-level`` of the admin process (the benchmarks use a production level).
    log_level = "debug"
    #: How long ``start`` waits for the API to answer.
    start_timeout = 60.0

    def start(self, wait: bool = True) -> None:
        """Start the admin process; wait until its API answers."""
        log = open(self.log_path, "ab")
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        argv = [sys.executable, "-m", "transcoder_admin", "run", "--config", self.config_path]
        self.process = subprocess.Popen(
            [*argv, "--log-level", self.log_level],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
            env=env,
        )
        log.close()
        if wait:
            wait_for(self._started, self.start_timeout, "the admin to start")

    def _started(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(f"admin exited {self.process.returncode}:\n{self.log()}")
        try:
            return self.get("/api/v1/health")["state"] in ("started", "paused")
        except (OSError, urllib.error.URLError):
            return False

    def command(self, *argv: str, config: bool = True) -> subprocess.CompletedProcess[str]:
        """``transcoder-admin ARGV… [--config THIS FARM'S]``, run to its end."""
        extra = ["--config", self.config_path] if config else []
        return subprocess.run(
            [sys.executable, "-m", "transcoder_admin", *argv, *extra],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=ROOT,
        )

    def signal(self, signum: int) -> None:
        """Send a signal to the admin."""
        assert self.process is not None
        self.process.send_signal(signum)

    def stop(self, timeout: float = 60) -> int:
        """SIGTERM and wait (then the farm's other processes); returns the admin's exit code."""
        try:
            return self._stop_admin(timeout)
        finally:
            self.stop_daemons()

    def _stop_admin(self, timeout: float) -> int:
        if self.process is None or self.process.poll() is not None:
            return self.process.returncode if self.process else 0
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            raise AssertionError(f"admin did not stop on SIGTERM:\n{self.log()[-3000:]}") from None

    # -- other processes: external workers, a standalone manager ------------------------

    def write_credentials(self, filename: str, users: dict[str, str]) -> str:
        """A ``name:password`` credentials file (mode 0600) under etc/; returns its path."""
        path = os.path.join(self.base, "etc", filename)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.writelines(f"{name}:{password}\n" for name, password in users.items())
        return path

    def start_worker(
        self,
        name: str,
        credentials: str,
        *,
        manager: str | None = None,
        roots: dict[str, str] | None = None,
        max_jobs: int = 1,
        heartbeat_interval: float = 0.5,
    ) -> Daemon:
        """Start a ``transcoder-admin worker`` process (default: on the farm's roots and
        embedded manager); it logs to ``workers/<name>.log``."""
        argv = [sys.executable, "-m", "transcoder_admin", "worker", "--name", name]
        argv += ["--manager", manager or f"tcp:127.0.0.1:{self.manager_port}"]
        for root, path in (roots or {"default": self.media, "temp": self.temp}).items():
            argv += ["--root", f"{root}={path}"]
        argv += ["--max-jobs", str(max_jobs), "--credentials-file", credentials]
        argv += ["--heartbeat-interval", f"{heartbeat_interval:g}", "--log-level", "debug"]
        return self.start_daemon(name, argv)

    def start_manager(self, config_path: str, name: str = "manager") -> Daemon:
        """Start a standalone ``transcoder-admin manager --config PATH`` process."""
        argv = [sys.executable, "-m", "transcoder_admin", "manager", "--config", config_path]
        return self.start_daemon(name, [*argv, "--log-level", "debug"])

    def start_daemon(self, name: str, argv: list[str]) -> Daemon:
        """Start (or start again) a named process of the farm."""
        old = self.daemons.get(name)
        if old is not None and old.running():
            raise AssertionError(f"{name} runs already")
        daemon = Daemon(name, argv, os.path.join(self.base, "logs", f"{name}.log"))
        daemon.start()
        self.daemons[name] = daemon
        return daemon

    def stop_daemons(self) -> None:
        """SIGTERM every other process of the farm (SIGCONT first: it may be stopped)."""
        for daemon in self.daemons.values():
            daemon.stop()

    def processes(self) -> list[tuple[int, str]]:
        """(pid, command line) of every live process whose command line names this farm's
        folder: the admin, workers, managers, ffmpeg and post-processes on its files."""
        found = []
        marker = self.base.encode()
        for entry in os.listdir("/proc"):
            if not entry.isdigit() or int(entry) == os.getpid():
                continue
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    cmdline = f.read()
                with open(f"/proc/{entry}/stat", "rb") as f:
                    zombie = f.read().rsplit(b")", 1)[-1].split()[0] == b"Z"
            except OSError:
                continue
            if marker in cmdline and not zombie:
                found.append((int(entry), cmdline.replace(b"\0", b" ").decode(errors="replace")))
        return found

    def log(self) -> str:
        """Everything the admin logged."""
        return read_log(self.log_path)

    # -- API -----------------------------------------------------------------------

    #: Sent as ``Authorization: Bearer`` with every request when set (an API with tokens).
    token: str | None = None
    #: With a CA file, the API is asked over HTTPS, trusting that CA only.
    api_ca: str | None = None

    def request(
        self, method: str, path: str, headers: dict[str, str] | None = None, body: Any = None
    ) -> tuple[int, Any]:
        """An HTTP request to the API (``body`` sent as JSON); returns (status, decoded JSON)."""
        sent = dict(headers or {})
        data = None if body is None else json.dumps(body).encode()
        if self.token is not None:
            sent.setdefault("Authorization", f"Bearer {self.token}")
        scheme = "https" if self.api_ca else "http"
        req = urllib.request.Request(
            f"{scheme}://127.0.0.1:{self.port}{path}", data=data, method=method, headers=sent
        )
        context = ssl.create_default_context(cafile=self.api_ca) if self.api_ca else None
        try:
            with urllib.request.urlopen(req, timeout=10, context=context) as resp:
                status, answer = resp.status, json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as e:
            status, answer = e.code, json.loads(e.read() or b"null")
        if status != 404:  # every answer as the OpenAPI document promises it
            check_answer(method, path, status, answer)
        return status, answer

    def get(self, path: str) -> Any:
        """GET a path and return its JSON (status must be 200)."""
        status, body = self.request("GET", path)
        assert status == 200, (status, body)
        return body

    # -- files -----------------------------------------------------------------------

    def folder(self, customer: str, kind: str, profile: str) -> str:
        """A local folder of the default layout (kind: incoming, outgoing, done, …)."""
        if kind == "work":
            return os.path.join(self.temp, customer, "work", profile)
        if kind in ("reports-done", "reports-failed"):
            return os.path.join(self.media, customer, "reports", kind.split("-")[1], profile)
        return os.path.join(self.media, customer, "files", kind, profile)

    def drop(self, customer: str, profile: str, relpath: str, source: str) -> str:
        """Copy a file into incoming the way an upload does: write aside, then rename."""
        dest = os.path.join(self.folder(customer, "incoming", profile), relpath)
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        partial = os.path.join(os.path.dirname(dest), ".upload.part")
        with open(source, "rb") as src, open(partial, "wb") as out:
            out.write(src.read())
        os.replace(partial, dest)
        return dest

    def reports(self, customer: str, profile: str, outcome: str) -> list[dict[str, Any]]:
        """Every report file of a profile with that outcome, parsed."""
        folder = self.folder(customer, f"reports-{outcome}", profile)
        found = []
        for path in sorted(
            glob.glob(os.path.join(glob.escape(folder), "**", "*.yaml"), recursive=True)
        ):
            if path.endswith(".diagnosis.yaml"):
                continue  # a failed job's diagnosis beside its report
            with open(path) as f:
                found.append(yaml.safe_load(f))
        return found

    def finished(self, customer: str, profile: str) -> int:
        """How many files of a profile ended (done or failed), by their reports."""
        return len(self.reports(customer, profile, "done")) + len(
            self.reports(customer, profile, "failed")
        )

    def recorded(self) -> int:
        """How many ended files the admin has recorded (done or failed), by its API.

        The worker writes the report file before the admin hears the outcome, so
        this can lag :meth:`finished` for a moment.
        """
        files = self.get("/api/v1/status")["files"]
        return int(files["done"]) + int(files["failed"])


class Daemon:
    """A process of the farm other than the admin, with its own log file."""

    def __init__(self, name: str, argv: list[str], log_path: str) -> None:
        self.name = name
        self.argv = argv
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        """The process id."""
        assert self.process is not None
        return self.process.pid

    def start(self) -> None:
        """Start the process, appending to its log."""
        os.makedirs(os.path.dirname(self.log_path), exist_ok=True)
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                self.argv,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=ROOT,
                env=dict(os.environ, PYTHONUNBUFFERED="1"),
            )

    def running(self) -> bool:
        """Whether the process has not ended."""
        return self.process is not None and self.process.poll() is None

    def signal(self, signum: int) -> None:
        """Send a signal to the process."""
        assert self.process is not None
        self.process.send_signal(signum)

    def kill(self) -> None:
        """SIGKILL and reap."""
        if self.running():
            assert self.process is not None
            self.process.kill()
            self.process.wait(30)

    def stop(self, timeout: float = 30) -> int | None:
        """SIGCONT then SIGTERM, SIGKILL after ``timeout``; the exit code."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(30)
        return self.process.returncode

    def log(self) -> str:
        """Everything the process logged."""
        return read_log(self.log_path)


def dedent(text: str) -> str:
    """textwrap.dedent, re-exported for tests that write config by hand."""
    return textwrap.dedent(text)
