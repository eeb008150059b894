"""``transcoder-admin qmaster submit|status|wait|cancel``: Compressor batches from a shell.

It uses the blocking client (the same steps as the admin's Twisted client). Every
failure prints one line ``transcoder-admin qmaster: <what went wrong>`` on stderr and
exits with a code that names its kind (see EXIT_CODES and docs/qmaster.md).
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from typing import Any

from .blocking import BlockingClient
from .commands import destination_for
from .errors import (
    DestinationError,
    QmasterBatchTimeoutError,
    QmasterClusterNotFound,
    QmasterCommandNotFound,
    QmasterError,
    QmasterJobCancelled,
    QmasterJobFailed,
    QmasterStatusError,
    QmasterStatusTimeoutError,
    QmasterSubmissionError,
    QmasterSubmissionTimeoutError,
    SettingFileError,
    SourceFileError,
)
from .model import BatchJob, BatchRef, BatchStatus, Submission
from .settings import QmasterSettings

PROG = "transcoder-admin qmaster"
# Most specific first: the first matching class gives the exit code.
EXIT_CODES: list[tuple[type[QmasterError], int]] = [
    (SourceFileError, 2),
    (DestinationError, 2),
    (SettingFileError, 2),
    (QmasterCommandNotFound, 2),
    (QmasterClusterNotFound, 4),
    (QmasterSubmissionTimeoutError, 5),
    (QmasterSubmissionError, 3),
    (QmasterStatusTimeoutError, 7),
    (QmasterStatusError, 6),
    (QmasterBatchTimeoutError, 10),
    (QmasterJobCancelled, 9),
    (QmasterJobFailed, 8),
]
EPILOG = """exit codes: 0 done (submit: accepted; status: answered; wait: Successful;
cancel: requested), 2 bad arguments or files, 3 submission error, 4 cluster not found,
5 submission timeout, 6 status unreadable (or cancel refused), 7 status timeout,
8 batch failed, 9 batch cancelled, 10 batch timeout, 130 interrupted"""


def exit_code(error: QmasterError) -> int:
    """The exit code of ``error``'s kind."""
    for cls, code in EXIT_CODES:
        if isinstance(error, cls):
            return code
    return 1


def _common() -> argparse.ArgumentParser:
    defaults = QmasterSettings()
    common = argparse.ArgumentParser(add_help=False)
    group = common.add_argument_group("Qmaster settings")
    group.add_argument("--compressor", default=defaults.compressor, help="Compressor's path")
    group.add_argument(
        "--batch-monitor", default=defaults.batch_monitor, help="Batch Monitor's path"
    )
    group.add_argument(
        "--command-prefix",
        default="",
        metavar="COMMAND",
        help="run the tools through this command, e.g. 'ssh mac-encoder' (split like a shell)",
    )
    group.add_argument(
        "--no-fallback",
        action="store_true",
        help='fail when the cluster is not found instead of using "This Computer"',
    )
    group.add_argument(
        "--submission-timeout", type=float, default=defaults.submission_timeout, metavar="S"
    )
    group.add_argument("--status-timeout", type=float, default=defaults.status_timeout, metavar="S")
    group.add_argument("--poll-interval", type=float, default=defaults.poll_interval, metavar="S")
    group.add_argument(
        "--status-grace",
        type=float,
        default=defaults.status_grace,
        metavar="S",
        help="how long the status may stay unreadable before the batch counts as failed",
    )
    group.add_argument(
        "--no-check-paths",
        action="store_true",
        help="do not check files on this host (they exist on the Mac only)",
    )
    common.add_argument("--json", action="store_true", help="print JSON objects")
    common.add_argument("-v", "--verbose", action="store_true", help="log to stderr")
    return common


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``qmaster`` sub-command's actions and options."""
    parser.epilog = EPILOG
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    common = _common()
    actions = parser.add_subparsers(dest="qmaster_action", required=True, metavar="ACTION")

    def action(name: str, text: str) -> argparse.ArgumentParser:
        return actions.add_parser(
            name,
            parents=[common],
            help=text,
            description=text,
            epilog=EPILOG,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )

    submit = action("submit", "submit a batch (and with --wait, wait for it)")
    submit.add_argument("--source", help="the source file")
    submit.add_argument("--setting", help="the Compressor setting file")
    submit.add_argument("--destination", default="", help="the output file")
    submit.add_argument(
        "--destination-dir", default="", help="the output folder (output: source stem + suffix)"
    )
    submit.add_argument("--suffix", default=".mov", help="suffix with --destination-dir")
    submit.add_argument(
        "--job",
        nargs=3,
        action="append",
        default=[],
        metavar=("SOURCE", "SETTING", "DESTINATION"),
        help="one more job of the batch (repeatable)",
    )
    submit.add_argument("--cluster", default="", help='cluster name (default "This Computer")')
    submit.add_argument("--priority", default="", help="batch priority (default: medium)")
    submit.add_argument("--batch-name", default="", help="batch name")
    submit.add_argument("--wait", action="store_true", help="wait until the batch ends")
    submit.add_argument("--timeout", type=float, default=None, help="bound of the whole batch (s)")
    for name, text in (
        ("status", "print a batch's status"),
        ("wait", "wait until a batch ends; exit 0 when Successful"),
        ("cancel", "ask Batch Monitor to cancel a batch"),
    ):
        p = action(name, text)
        p.add_argument("batch_id", metavar="BATCH_ID")
        p.add_argument("--cluster", default="", help='cluster name (default "This Computer")')
        if name == "wait":
            p.add_argument("--timeout", type=float, default=None, help="bound of the wait (s)")


def _settings(args: argparse.Namespace) -> QmasterSettings:
    return QmasterSettings(
        compressor=args.compressor,
        batch_monitor=args.batch_monitor,
        command_prefix=tuple(shlex.split(args.command_prefix)),
        fallback_to_local=not args.no_fallback,
        submission_timeout=args.submission_timeout,
        status_timeout=args.status_timeout,
        poll_interval=args.poll_interval,
        status_grace=args.status_grace,
        check_paths=not args.no_check_paths,
        destination_suffix=getattr(args, "suffix", ".mov"),
    )


def _print(args: argparse.Namespace, text: str, data: dict[str, Any]) -> None:
    print(json.dumps(data) if args.json else text, flush=True)


def _status_data(status: BatchStatus) -> dict[str, Any]:
    return {"status": status.state or status.text, "percent": status.percent}


def _status_text(status: BatchStatus) -> str:
    word = status.state or status.text
    return word if status.percent is None else f"{word} {status.percent:.0f}%"


def _submission_data(submission: Submission) -> dict[str, Any]:
    return {
        "batch_id": submission.batch_id,
        "cluster": submission.cluster,
        "requested_cluster": submission.requested_cluster,
        "fell_back": submission.fell_back,
        "job_ids": list(submission.job_ids),
        "batch_name": submission.batch_name,
    }


def _jobs(args: argparse.Namespace) -> list[BatchJob]:
    jobs = []
    if args.source or args.setting or args.destination or args.destination_dir:
        if not args.source:
            raise SourceFileError("--source is required")
        if not args.setting:
            raise SettingFileError("--setting is required")
        destination = destination_for(
            args.source, args.destination, args.destination_dir, args.suffix
        )
        jobs.append(BatchJob(args.source, args.setting, destination))
    jobs += [BatchJob(*job) for job in args.job]
    if not jobs:
        raise SourceFileError("nothing to submit: give --source, --setting and a destination")
    return jobs


def run(args: argparse.Namespace) -> int:
    """Carry out the parsed ``qmaster`` action; the process exit code."""

    def log(level: str, message: str) -> None:
        if args.verbose or level in ("warning", "error"):
            print(f"{PROG}: {level}: {message}", file=sys.stderr, flush=True)

    try:
        client = BlockingClient(_settings(args), log=log)
        return _act(args, client)
    except QmasterError as e:
        print(f"{PROG}: {e}", file=sys.stderr, flush=True)
        return exit_code(e)
    except ValueError as e:
        print(f"{PROG}: {e}", file=sys.stderr, flush=True)
        return 2
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr, flush=True)
        return 130


def _act(args: argparse.Namespace, client: BlockingClient) -> int:
    action = args.qmaster_action
    last: list[str] = []

    def progress(status: BatchStatus) -> None:
        text = _status_text(status)
        if not last or last[-1] != text:
            last.append(text)
            if not args.json:
                print(text, flush=True)

    if action == "submit":
        jobs = _jobs(args)
        options = {"batch_name": args.batch_name, "cluster": args.cluster or None}
        if not args.wait:
            submission = client.submit(jobs, priority=args.priority, **options)
            _print(args, _describe(submission), _submission_data(submission))
            return 0

        def submitted(submission: Submission) -> None:
            _print(args, _describe(submission), _submission_data(submission))

        _, final = client.submit_and_wait(
            jobs,
            priority=args.priority,
            timeout=args.timeout,
            on_submitted=submitted,
            on_progress=progress,
            **options,
        )
        if args.json:
            _print(args, "", _status_data(final))
        return 0
    ref = BatchRef(args.cluster or client.settings.local_cluster, args.batch_id)
    if action == "status":
        status = client.status(ref)
        _print(args, _status_text(status), _status_data(status))
        return 0
    if action == "wait":
        final = client.wait(ref, timeout=args.timeout, on_progress=progress)
        if args.json:
            _print(args, "", _status_data(final))
        return 0
    cancelled = client.cancel(ref)
    _print(args, "cancel requested" if cancelled else "cancel failed", {"cancelled": cancelled})
    return 0 if cancelled else 6


def _describe(submission: Submission) -> str:
    text = f"batch {submission.batch_id} submitted to cluster {submission.cluster!r}"
    if submission.fell_back:
        text += f" (cluster {submission.requested_cluster!r} was not found)"
    return text


__all__ = ["EXIT_CODES", "add_arguments", "exit_code", "run"]
