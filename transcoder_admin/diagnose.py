"""``transcoder-admin diagnose REPORT``: re-run a failed job's commands, touching nothing.

The report names its diagnosis (beside it); the diagnosis gives the job's commands,
its work folder and where its source ended.  The source is copied into a scratch
folder, each command is run with the work folder replaced by the scratch folder (so
every output lands there), and what each command says is printed.  No file of the farm
is moved, written or removed; the scratch folder goes unless ``--keep``.
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
from typing import Any, TextIO

from .media.ffmpeg import command_environment
from .reports.files import read_diagnosis

#: Seconds one command may take unless told otherwise.
DEFAULT_TIMEOUT = 600.0
#: Lines of a command's error output printed.
SHOWN_LINES = 20


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``diagnose`` sub-command's arguments."""
    parser.add_argument("report", help="a failed job's report file")
    parser.add_argument(
        "--timeout", type=float, default=DEFAULT_TIMEOUT, help="seconds per command (600)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder")


def run(args: argparse.Namespace, out: TextIO = sys.stdout) -> int:
    """Re-run the job's commands; 0 when they all succeed, 1 when one fails, 2 when it
    cannot be tried (no diagnosis, no source)."""
    try:
        diagnosis = read_diagnosis(os.path.abspath(args.report))
    except (OSError, LookupError, ValueError) as e:
        print(f"transcoder-admin diagnose: {e}", file=sys.stderr)
        return 2
    source = (diagnosis.get("source") or {}).get("file")
    work = str(diagnosis.get("work") or "")
    commands = [c for c in diagnosis.get("commands") or [] if isinstance(c, dict)]
    where = f"{diagnosis.get('host')} ({diagnosis.get('worker')})"
    print(f"job {diagnosis.get('job_id')} on {where}", file=out)
    failure = diagnosis.get("failure") or {}
    print(f"failed: {failure.get('kind')}: {failure.get('reason')}", file=out)
    if not commands:
        print("no command was run (the job failed before transcoding)", file=out)
        return 1
    if not source or not os.path.isfile(source):
        print(f"transcoder-admin diagnose: the source {source} is not there", file=sys.stderr)
        return 2
    scratch = tempfile.mkdtemp(prefix="transcoder-diagnose-")
    try:
        private = os.path.join(scratch, "source", os.path.basename(source))
        os.makedirs(os.path.dirname(private))
        shutil.copyfile(source, private)
        failed = 0
        for command in commands:
            argv = [_moved(str(a), work, scratch) for a in command.get("argv") or []]
            if not argv:
                continue
            failed += not _run(argv, command.get("target"), args.timeout, scratch, out)
        print(f"{len(commands) - failed} of {len(commands)} commands succeeded", file=out)
        if args.keep:
            print(f"scratch folder kept: {scratch}", file=out)
        return 1 if failed else 0
    finally:
        if not args.keep:
            shutil.rmtree(scratch, ignore_errors=True)


def _moved(arg: str, work: str, scratch: str) -> str:
    """An argument naming the job's work folder, pointed at the scratch folder."""
    if work and (arg == work or arg.startswith(work.rstrip("/") + "/")):
        return scratch + arg[len(work.rstrip("/")) :]
    return arg


def _run(argv: list[str], target: Any, timeout: float, cwd: str, out: TextIO) -> bool:
    print(f"\n[{target}] $ {shlex.join(argv)}", file=out)
    try:
        done = subprocess.run(
            argv,
            cwd=cwd,
            capture_output=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
            env=command_environment(),  # the one the job ran in
        )
    except subprocess.TimeoutExpired:
        print(f"  timed out after {timeout:g} s", file=out)
        return False
    except OSError as e:
        print(f"  cannot run it: {e.strerror}", file=out)
        return False
    print(f"  exit status {done.returncode}", file=out)
    if done.returncode != 0:
        lines = done.stderr.decode("utf-8", "replace").splitlines()[-SHOWN_LINES:]
        for line in lines:
            print(f"  | {line}", file=out)
    return done.returncode == 0


__all__ = ["add_arguments", "run"]
