"""``transcoder-admin worker``: settings from a YAML file and/or flags, then run.

A worker file (YAML) has the keys of the flags::

    name: encoder-2
    manager: tls:admin.example.com:7632:trustRoots=/etc/transcoder/ca
    credentials-file: /etc/transcoder/worker.credentials   # "encoder-2:secret"
    max-jobs: 2
    heartbeat-interval: 5
    orphan-timeout: 0      # seconds alone (no manager, no job) before exiting; 0: never
    roots: {default: /srv/media, temp: /var/tmp/transcoder}

Flags override the file.  Every problem is reported at once, naming the key.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
from dataclasses import dataclass, field
from typing import Any

import yaml

from ..config.endpoints import is_plain, resolve_endpoint, unverified_tls
from ..credentials import ADMIN_USER, WORKER_NAME, CredentialsError, read_secret_file

KEYS = (
    "name",
    "manager",
    "credentials-file",
    "max-jobs",
    "heartbeat-interval",
    "orphan-timeout",
    "roots",
)
#: The longest orphan-timeout (a year); 0 means never.
MAX_ORPHAN_TIMEOUT = 366 * 86400.0


@dataclass
class WorkerSettings:
    """A worker's validated settings."""

    name: str
    manager: str
    password: bytes
    roots: dict[str, str]
    max_jobs: int = 1
    heartbeat_interval: float = 5.0
    orphan_timeout: float = 0.0
    problems: list[str] = field(default_factory=list)


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The worker's flags."""
    p.add_argument("--config", help="worker file (YAML) with the keys below")
    p.add_argument("--manager", help="manager endpoint, e.g. tcp:admin.example.com:7632")
    p.add_argument("--name", help="this worker's unique name (default: the host name)")
    p.add_argument(
        "--root",
        action="append",
        default=[],
        metavar="NAME=PATH",
        help="a root of this host, e.g. default=/srv/media (repeat for each root)",
    )
    p.add_argument("--max-jobs", type=int, help="jobs run at once (default 1)")
    p.add_argument("--credentials-file", help="file with this worker's name:password line")
    p.add_argument("--heartbeat-interval", type=float, help="seconds between heartbeats (5)")
    p.add_argument(
        "--orphan-timeout",
        type=float,
        metavar="SECONDS",
        help="exit (status 0) after this long alone: not logged in to the manager and no "
        "job running (default 0: keep reconnecting for ever)",
    )
    p.add_argument("--log-level", choices=["debug", "info", "warn", "error"], default="info")
    p.add_argument("--log-format", choices=["text", "json"], default="text")


def settings_from(args: argparse.Namespace) -> WorkerSettings:
    """Merge the worker file and the flags; ``problems`` lists everything wrong."""
    problems: list[str] = []
    data: dict[str, Any] = {}
    where = "flags"
    if args.config:
        where = args.config
        try:
            with open(args.config, encoding="utf-8") as f:
                loaded = yaml.safe_load(f) or {}
        except (OSError, yaml.YAMLError) as e:
            loaded = {}
            problems.append(f"{args.config}: cannot read the worker file: {e}")
        if not isinstance(loaded, dict):
            problems.append(f"{args.config}: expected a mapping of {', '.join(KEYS)}")
            loaded = {}
        unknown = sorted(set(map(str, loaded)) - set(KEYS))
        for key in unknown:
            problems.append(f"{args.config}: unknown key {key!r}; allowed: {', '.join(KEYS)}")
        data = dict(loaded)
        base = os.path.dirname(os.path.abspath(args.config))
        for key in ("credentials-file",):
            if isinstance(data.get(key), str):
                data[key] = os.path.join(base, data[key])
        if isinstance(data.get("roots"), dict):
            data["roots"] = {str(k): os.path.join(base, str(v)) for k, v in data["roots"].items()}
        if isinstance(data.get("manager"), str):  # trustRoots=ca: beside this file
            data["manager"] = resolve_endpoint(data["manager"], base)
    for key, value in (
        ("name", args.name),
        ("manager", args.manager),
        ("credentials-file", args.credentials_file),
        ("max-jobs", args.max_jobs),
        ("heartbeat-interval", args.heartbeat_interval),
        ("orphan-timeout", args.orphan_timeout),
    ):
        if value is not None:
            data[key] = value
    roots = dict(data.get("roots") or {}) if isinstance(data.get("roots"), dict) else {}
    if data.get("roots") is not None and not isinstance(data.get("roots"), dict):
        problems.append(f"{where}: roots must map root names to folders")
    for item in args.root:
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            problems.append(f"--root {item!r}: expected NAME=PATH, e.g. default=/srv/media")
            continue
        roots[name] = os.path.abspath(path)
    for required in ("default", "temp"):
        if required not in roots:
            problems.append(f"{where}: root {required!r} is missing (--root {required}=PATH)")
    name = str(data.get("name") or socket.gethostname())
    if name == ADMIN_USER:
        problems.append(f"{where}: name {name!r} is reserved for the admin's login")
    elif not WORKER_NAME.fullmatch(name):
        problems.append(
            f"{where}: name {name!r} must be letters, digits, '.', '_' or '-' (at most 64), "
            "not starting with '.' or '-': it names the worker's folders"
        )
    manager = data.get("manager")
    if not manager:
        problems.append(f"{where}: manager is missing (--manager ENDPOINT, e.g. tcp:host:7632)")
    elif unverified_tls(str(manager)):
        problems.append(f"{where}: manager {unverified_tls(str(manager))}")
    max_jobs = _number(data.get("max-jobs", 1), int, "max-jobs", 1, 64, where, problems)
    beat = _number(
        data.get("heartbeat-interval", 5.0), float, "heartbeat-interval", 0.05, 300, where, problems
    )
    orphan = _number(
        data.get("orphan-timeout", 0.0),
        float,
        "orphan-timeout",
        0,
        MAX_ORPHAN_TIMEOUT,
        where,
        problems,
    )
    password = b""
    if not data.get("credentials-file"):
        problems.append(f"{where}: credentials-file is missing (a file with {name}:PASSWORD)")
    else:
        try:
            password = read_secret_file(str(data["credentials-file"]), name)
        except CredentialsError as e:
            problems.append(str(e))
    return WorkerSettings(
        name=name,
        manager=str(manager or ""),
        password=password,
        roots=roots,
        max_jobs=int(max_jobs),
        heartbeat_interval=float(beat),
        orphan_timeout=float(orphan),
        problems=problems,
    )


def _number(
    value: Any, kind: type, key: str, low: float, high: float, where: str, problems: list[str]
) -> float:
    whole = kind is int
    if isinstance(value, bool) or (whole and isinstance(value, float)):
        problems.append(f"{where}: {key} must be a whole number, not {value!r}")
        return low
    try:
        number = kind(value)
    except (TypeError, ValueError):
        what = "a whole number" if whole else "a number"
        problems.append(f"{where}: {key} must be {what}, not {value!r}")
        return low
    if not low <= number <= high:
        problems.append(f"{where}: {key} must be between {low:g} and {high:g}, not {value!r}")
        return low
    return float(number)


def keep_tls_out() -> None:
    """Keep pyOpenSSL and cryptography out of a worker whose link is plain TCP or UNIX.

    Twisted's TCP transport imports pyOpenSSL, if it can, for ``startTLS``, which such a
    worker never calls: about 13 MiB of resident memory.  ``None`` in ``sys.modules``
    makes the import fail (Python's documented way), and Twisted goes without startTLS.
    """
    if "OpenSSL" not in sys.modules:
        sys.modules["OpenSSL"] = None  # type: ignore[assignment]


def run(args: argparse.Namespace, daemon_class: Any = None, prog: str = "") -> int:
    """Run a worker until SIGTERM/SIGINT (its jobs are cancelled, sources stay).

    ``daemon_class`` (a WorkerDaemon subclass) is for benchmarks' stand-in workers.
    """
    settings = settings_from(args)
    if settings.problems:
        print(f"{prog or 'transcoder-admin worker'}: cannot start:", file=sys.stderr)
        for problem in settings.problems:
            print(f"  - {problem}", file=sys.stderr)
        return 1
    if is_plain(settings.manager):
        keep_tls_out()
    from twisted.internet import reactor as _reactor

    from ..context.paths import Roots
    from ..logs import start_logging
    from .daemon import WorkerDaemon

    start_logging(args.log_format, args.log_level)
    reactor: Any = _reactor
    daemon = (daemon_class or WorkerDaemon)(
        settings.name,
        settings.manager,
        settings.password,
        Roots(settings.roots),
        settings.max_jobs,
        reactor,
        heartbeat_interval=settings.heartbeat_interval,
        orphan_timeout=settings.orphan_timeout,
    )
    # Alone too long: an orderly stop (its trigger below) and exit status 0.
    daemon.orphaned.addCallback(lambda _: reactor.stop())
    reactor.callWhenRunning(daemon.startService)
    reactor.addSystemEventTrigger("before", "shutdown", daemon.stopService)
    reactor.run()
    return 0


#: What ``transcoder-admin worker`` does, for its ``--help`` and the command list.
HELP = "run a worker: connect to the manager and run the admin's jobs"


def main(argv: list[str], prog: str = "transcoder-admin worker") -> int:
    """``transcoder-admin worker ARGS``: parse and run, importing nothing of the admin."""
    parser = argparse.ArgumentParser(prog=prog, description=HELP)
    add_arguments(parser)
    return run(parser.parse_args(argv), prog=prog)
