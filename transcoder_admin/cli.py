"""The ``transcoder-admin`` command: run, manager, worker, check-config, upgrade-db,
replay-reports, token, status, qmaster, diagnose."""

from __future__ import annotations

import argparse
import gc
import sys
from typing import TYPE_CHECKING, Any

from . import __version__

if TYPE_CHECKING:
    from .config.loader import Configuration

DEFAULT_CONFIG = "etc/transcoder-admin.yaml"


def _load(path: str) -> Configuration | None:
    # Imported here: ``transcoder-admin worker`` (the local workers) never loads them.
    from .config.errors import ConfigError
    from .context.checks import load_configuration

    try:
        return load_configuration(path)
    except ConfigError as e:
        print(e.render(), file=sys.stderr)
        return None


def settings_problem(config: Configuration) -> str | None:
    """What is wrong with the files the settings name (the mail server's trust roots,
    the API's tokens) or with the API's listen endpoint, if anything."""
    trust_roots = config.smtp_settings().trust_roots
    if trust_roots:
        from .notify.mail import TrustRootsError, read_trust_roots

        try:
            read_trust_roots(trust_roots)
        except TrustRootsError as e:
            return f"{config.path}: notifications.smtp.trust-roots: {e}"
    if not config.admin.api.enabled:
        return None
    from .api import check_listen
    from .api.tokens import TokenFileError, read_tokens

    tokens_file = config.api_tokens_file()
    if tokens_file is not None:
        try:
            read_tokens(tokens_file)
        except TokenFileError as e:
            return f"{config.path}: api.tokens-file: {e}"
    try:
        check_listen(config.admin.api.listen, authenticated=tokens_file is not None)
    except ValueError as e:
        return f"{config.path}: api.listen: {e}"
    return None


def _load_checked(path: str) -> Configuration | None:
    """The configuration, with the files its settings name readable; None (the problem
    printed) otherwise."""
    config = _load(path)
    if config is None:
        return None
    problem = settings_problem(config)
    if problem is not None:
        print(problem, file=sys.stderr)
        return None
    return config


def cmd_check_config(args: argparse.Namespace) -> int:
    """Validate the admin config and every customer file; 0 when valid."""
    config = _load_checked(args.config)
    if config is None:
        return 1
    profiles = sum(len(c.profiles) for c in config.customers.values())
    print(f"{config.path}: OK ({len(config.customers)} customers, {profiles} profiles)")
    return 0


def cmd_upgrade_db(args: argparse.Namespace) -> int:
    """Bring the reports database schema to the current revision."""
    config = _load(args.config)
    if config is None:
        return 1
    from .reports.db import upgrade

    upgrade(config.reports_url())
    print("reports database is up to date")
    return 0


def cmd_replay_reports(args: argparse.Namespace) -> int:
    """Re-save rows from report files (after a database outage); idempotent."""
    config = _load(args.config)
    if config is None:
        return 1
    from twisted.internet import defer, task

    from .context.customers import StoreContext
    from .context.paths import Roots
    from .reports.db import ReportsDB
    from .reports.files import find_reports, replay_reports

    roots = Roots(config.roots())
    paths: list[str] = []
    for customer in StoreContext(config).customers():
        for profile in customer.profiles():
            for key in ("done-reports", "failed-reports"):
                paths.extend(find_reports(roots.local(profile.folder(key))))

    async def main(reactor: Any) -> None:
        db = ReportsDB(config.reports_url(), config.admin.reports.pool_size, reactor=reactor)
        await db.start()
        try:
            count = await replay_reports(db, paths)
            print(f"replayed {count} reports")
        finally:
            await db.stop()

    task.react(lambda reactor: defer.ensureDeferred(main(reactor)))
    return 0


#: The admin's young-generation collection threshold (CPython's default is 700).
GC_YOUNG_THRESHOLD = 50_000


def tune_garbage_collection() -> None:
    """Collect the young generation every 50,000 allocations instead of 700.

    The admin keeps a large, long-lived heap (the queue, the configuration, every
    worker's job records) and allocates a few small records per job: with the default
    it spends a measurable part of each job in collections (BENCHMARKS.md, B6).  A
    young generation of 50,000 objects is a few MiB at most.
    """
    _gen0, gen1, gen2 = gc.get_threshold()
    gc.set_threshold(GC_YOUNG_THRESHOLD, gen1, gen2)


def cmd_run(args: argparse.Namespace) -> int:
    """Run the admin until SIGTERM/SIGINT; SIGHUP reloads the customers."""
    config = _load_checked(args.config)
    if config is None:
        return 1
    from .logs import start_logging

    start_logging(args.log_format or config.admin.admin.log_format, args.log_level)
    tune_garbage_collection()
    from twisted.internet import reactor as _reactor

    from .admin import create_admin

    reactor: Any = _reactor
    admin = create_admin(config, reactor)
    reactor.callWhenRunning(admin.startService)
    reactor.addSystemEventTrigger("before", "shutdown", admin.stopService)
    admin.install_sighup()
    reactor.run()
    return 1 if admin.boot_error else 0


def cmd_manager(args: argparse.Namespace) -> int:
    """Run a standalone manager on ``manager.listen`` with ``manager.credentials``."""
    from .config.alone import load_manager_configuration
    from .config.errors import ConfigError
    from .logs import start_logging

    try:
        config = load_manager_configuration(args.config)
    except ConfigError as e:
        print(e.render(), file=sys.stderr)
        return 1
    from .manager.command import run

    start_logging(args.log_format or config.admin.log_format, args.log_level)
    return run(config)


def _tokens_file(args: argparse.Namespace) -> str | None:
    """``--tokens-file``, or else the ``api.tokens-file`` of ``--config``."""
    if args.tokens_file:
        return str(args.tokens_file)
    config = _load(args.config)
    if config is None:
        return None
    path = config.api_tokens_file()
    if path is None:
        print(
            f"{config.path}: api.tokens-file is not set; give --tokens-file PATH",
            file=sys.stderr,
        )
    return path


def cmd_token(args: argparse.Namespace) -> int:
    """Add, list or revoke API tokens; ``add`` prints the new token on stdout's last line."""
    from .api.tokens import TokenFileError, add_token, read_tokens, revoke_token

    path = _tokens_file(args)
    if path is None:
        return 1
    try:
        if args.action == "add":
            secret = add_token(path, args.name, args.role)
            print(f"token {args.name!r} ({args.role}) added to {path}; it is shown only once:")
            print(secret)
        elif args.action == "revoke":
            revoke_token(path, args.name)
            print(f"token {args.name!r} revoked in {path} (send SIGHUP to the admin)")
        else:
            for entry in read_tokens(path, missing_ok=True).entries:
                print(f"{entry.name}\t{entry.role}\t{entry.created}")
    except TokenFileError as e:
        print(f"token {args.action}: {e}", file=sys.stderr)
        return 1
    except OSError as e:
        print(f"token {args.action}: {path}: {e.strerror or e}", file=sys.stderr)
        return 1
    return 0


def cmd_qmaster(args: argparse.Namespace) -> int:
    """Submit, query, wait for or cancel a Compressor batch (see docs/qmaster.md)."""
    from .qmaster.shell import run

    return run(args)


def cmd_diagnose(args: argparse.Namespace) -> int:
    """Re-run a failed job's commands, touching nothing of the farm."""
    from .diagnose import run

    return run(args)


def cmd_status(args: argparse.Namespace) -> int:
    """The farm at a glance, from the running admin's API; 0 healthy, 1 degraded, 2 not
    asked."""
    from .config.alone import load_api_settings
    from .config.errors import ConfigError
    from .status import Unanswered, run

    def listen() -> str | None:
        try:
            api = load_api_settings(args.config)
        except ConfigError as e:
            raise Unanswered(f"{e.render()}\n(or give --url)") from None
        return api.listen if api.enabled else None

    return run(args, listen)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every sub-command."""
    parser = argparse.ArgumentParser(prog="transcoder-admin", description=__doc__)
    parser.add_argument("--version", action="version", version=__version__)
    sub = parser.add_subparsers(dest="command", required=True)

    def add(name: str, func: Any, help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.add_argument("--config", default=DEFAULT_CONFIG, help="admin config file (YAML or INI)")
        p.set_defaults(func=func)
        return p

    run = add("run", cmd_run, "run the admin (and its local workers)")
    run.add_argument("--log-format", choices=["text", "json"], default=None)
    run.add_argument("--log-level", choices=["debug", "info", "warn", "error"], default="info")
    manager = add("manager", cmd_manager, "run a standalone manager (PB broker)")
    manager.add_argument("--log-format", choices=["text", "json"], default=None)
    manager.add_argument("--log-level", choices=["debug", "info", "warn", "error"], default="info")
    from .worker.command import HELP as WORKER_HELP

    # Listed for --help only: main() hands "worker" to the worker's own parser.
    sub.add_parser("worker", help=WORKER_HELP, add_help=False)
    add("check-config", cmd_check_config, "validate the configuration and exit 0 or 1")
    add("upgrade-db", cmd_upgrade_db, "upgrade the reports database schema")
    add("replay-reports", cmd_replay_reports, "re-save database rows from report files")
    token = add("token", cmd_token, "add, list or revoke the API's tokens")
    token_actions = token.add_subparsers(dest="action", required=True)
    token_add = token_actions.add_parser("add", help="create a token, print it once")
    token_add.add_argument("name", help="who holds it (letters, digits, . _ @ -)")
    token_add.add_argument("--role", choices=["read", "admin"], required=True)
    token_revoke = token_actions.add_parser("revoke", help="remove a token")
    token_revoke.add_argument("name")
    token_list = token_actions.add_parser("list", help="names, roles and creation times")
    token.add_argument(
        "--tokens-file", help="the tokens file (default: api.tokens-file of --config)"
    )
    for p in (token_add, token_revoke, token_list):
        # also after the action; SUPPRESS: a sub-parser's default would hide the other's value
        p.add_argument("--tokens-file", default=argparse.SUPPRESS, help="as before the action")
        p.add_argument("--config", default=argparse.SUPPRESS, help="as before the action")
    from .status import add_arguments as add_status_arguments

    add_status_arguments(
        add(
            "status",
            cmd_status,
            "the running farm at a glance, from its API (exit 0 healthy, 1 degraded, "
            "2 not answered)",
        )
    )
    from .qmaster.shell import add_arguments as add_qmaster_arguments

    qmaster_help = "submit, query or wait for Compressor batches (Qmaster) from the shell"
    qmaster = sub.add_parser("qmaster", help=qmaster_help, description=qmaster_help)
    add_qmaster_arguments(qmaster)
    qmaster.set_defaults(func=cmd_qmaster)
    from .diagnose import add_arguments as add_diagnose_arguments

    diagnose_help = "re-run a failed job's commands in a scratch folder (moves no file)"
    diagnose = sub.add_parser("diagnose", help=diagnose_help, description=diagnose_help)
    add_diagnose_arguments(diagnose)
    diagnose.set_defaults(func=cmd_diagnose)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script."""
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["worker"]:
        # The worker builds its own parser: the others' commands are never imported.
        from .worker.command import main as worker_main

        return worker_main(argv[1:], prog="transcoder-admin worker")
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
