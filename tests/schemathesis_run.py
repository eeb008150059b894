"""Schemathesis against a real admin: every operation of its OpenAPI document, fuzzed.

``python -m tests.schemathesis_run [EXTRA ST RUN OPTIONS…]`` (what ``.ci/schemathesis``
runs) starts an admin on a temporary folder the way the integration tests do, with an
admin token, a customer, files that finished done and failed and notifications that
gave up, a job running and files queued behind it; then runs ``st run`` on
``/api/v1/openapi.json`` with that token and every check, a bounded number of examples
per operation and a fixed seed.  It exits with schemathesis's status (non-zero on any
failure, or when the actions on one file never reached a real one) and stops the admin
whatever happens.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from typing import Any

from tests.clips import make_clip
from tests.farm import Farm, free_port, wait_for

#: Test cases per operation and phase at most; the whole run stays within ~2 minutes.
MAX_EXAMPLES = 1000
SEED = 20250301
#: Every check schemathesis has (none is left out): no 5xx, answers with a documented
#: status, content type, headers and schema, invalid requests refused, valid ones taken,
#: 401 without the token, 405 with Allow for other methods.
CHECKS = "all"


#: The post-process that keeps the slow profile's job running through the whole run.
HOLD = ["sleep", "900"]


def customer(dead_port: int) -> dict[str, Any]:
    """A customer whose audio profile notifies a port nobody listens on (so they fail),
    and a slow profile whose job runs until it is cancelled (or the admin stops)."""
    sound = {"type": "audio", "extension": "m4a"}
    return {
        "name": "ACME",
        "profiles": {
            "web": {
                "notify-done": [f"http://127.0.0.1:{dead_port}/done?file=%(inputRelPath)s"],
                "targets": {"sound": sound},
            },
            "slow": {"targets": {"held": {**sound, "post-process": HOLD}}},
        },
    }


def prepare(base: str) -> tuple[Farm, str]:
    """A farm folder with an admin-token API; returns the farm and the token."""
    farm = Farm(os.path.join(base, "farm"), {"acme": customer(free_port())}, max_jobs=1)
    farm.configure("notifications", retry={"attempts": 1, "first-delay": 0.1, "max-delay": 0.2})
    tokens = os.path.join(farm.base, "etc", "tokens.yaml")
    farm.configure("api", tokens_file=tokens)
    added = farm.command(
        "token", "add", "schemathesis", "--role", "admin", "--tokens-file", tokens, config=False
    )
    if added.returncode != 0:
        raise SystemExit(f"token add failed:\n{added.stderr}")
    return farm, added.stdout.strip().splitlines()[-1]


def finish_files(farm: Farm, base: str) -> None:
    """Two files transcoded, two failed, and their notifications given up."""
    clip = make_clip(os.path.join(base, "clip.m4a"), duration=1.0, video=False)
    text = os.path.join(base, "notes.txt")
    with open(text, "w") as f:
        f.write("this is not a sound\n" * 50)
    for name, source in (
        ("one.m4a", clip),
        ("two/deep.m4a", clip),
        ("notes.m4a", text),
        ("two/notes.m4a", text),
    ):
        farm.drop("acme", "web", name, source)
    wait_for(lambda: farm.finished("acme", "web") == 4, 120, "four files to end")
    wait_for(
        lambda: farm.get("/api/v1/notifications?state=failed")["total"] == 2,
        60,
        "the notifications to give up",
    )


def hold_files(farm: Farm, base: str) -> list[str]:
    """A job that runs on (the only slot) and three files queued behind it, so that
    cancelling a job and changing a queued file's priority reach real files; returns
    the files' paths."""
    clip = make_clip(os.path.join(base, "held.m4a"), duration=1.0, video=False)
    farm.drop("acme", "slow", "held.m4a", clip)
    wait_for(lambda: farm.get("/api/v1/tasks")["total"] == 1, 60, "the held job to run")
    queued = ["q1.m4a", "deep/q2.m4a", "q3.m4a"]
    for name in queued:
        farm.drop("acme", "web", name, clip)
    wait_for(lambda: farm.get("/api/v1/queue")["total"] == 3, 60, "three files queued")
    return ["held.m4a", *queued]


def write_config(farm: Farm, path: str, relpaths: list[str]) -> str:
    """A ``schemathesis.toml`` that, half the time, asks for the diagnosis of the farm's
    real jobs and names its real files in actions on one file (besides the values
    schemathesis picks up from the answers it gets); returns its path."""
    job_ids = [row["job_id"] for row in farm.get("/api/v1/reports")["items"]]
    names = {"job_ids": job_ids, "customers": ["ACME"], "profiles": ["web", "slow"]}
    names["relpaths"] = relpaths
    with open(path, "w") as f:
        for name, values in names.items():
            f.write(f"[dictionaries.{name}]\nvalues = {json.dumps(values)}\n\n")
        f.write('[[operations]]\ninclude-operation-id = "getDiagnosis"\n')
        f.write('parameters = { "query.job_id" = { dictionary = "job_ids", probability = 0.5 } }\n')
        for operation in ("setPriority", "cancelTask", "retryFile"):
            bound = ", ".join(
                f'"body.{field}" = {{ dictionary = "{name}", probability = 0.5 }}'
                for field, name in (
                    ("customer", "customers"),
                    ("profile", "profiles"),
                    ("relpath", "relpaths"),
                )
            )
            f.write(f'\n[[operations]]\ninclude-operation-id = "{operation}"\n')
            f.write(f"parameters = {{ {bound} }}\n")
    return path


def schemathesis_argv(farm: Farm, token: str, config: str, extra: list[str]) -> list[str]:
    """The ``st run`` command line against the farm's API."""
    argv = [sys.executable, "-m", "schemathesis.cli", "--config-file", config, "run"]
    argv += [f"http://127.0.0.1:{farm.port}/api/v1/openapi.json"]
    argv += ["--header", f"Authorization: Bearer {token}"]
    argv += ["--checks", CHECKS]
    argv += ["--max-examples", str(MAX_EXAMPLES), "--seed", str(SEED)]
    # No example database: a run replays nothing an earlier one stored, so two runs agree.
    argv += ["--generation-database", "none", "--workers", "1", "--request-timeout", "30"]
    return [*argv, "--no-color", *extra]


@contextlib.contextmanager
def stopped_on_sigterm() -> Iterator[None]:
    """Turn SIGTERM into SystemExit, so ``finally`` blocks (stopping the admin) run."""

    def leave(signum: int, frame: Any) -> None:
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, leave)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def stop(farm: Farm) -> bool:
    """Stop the admin and wait until no process of the farm is left; whether the admin
    exited 0 and left nothing behind."""
    clean = farm.stop() == 0
    with contextlib.suppress(AssertionError):
        wait_for(lambda: not farm.processes(), 30, "the farm's processes to end")
    for pid, cmdline in farm.processes():
        print(f"killing a process the admin left: {pid} {cmdline}", file=sys.stderr)
        clean = False
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    return clean


#: What the admin logs when an action reached a real file: each must have happened.
REACHED = {
    "a queued file's priority changed": "priority of ACME/web: ",
    "the running job cancelled": "cancelled by schemathesis",
}


def reached(log: str) -> int:
    """0 when the fuzzing reached real files through each action on one file (the
    dictionaries name them), else 1 and what it missed."""
    missed = [what for what, mark in REACHED.items() if mark not in log]
    for what in missed:
        print(f"the fuzzing never reached a real file: {what}", file=sys.stderr)
    return 1 if missed else 0


_ENTRY = re.compile(r"^\d{4}-\d{2}-\d{2}T")


def errors(log: str) -> str:
    """The error and critical entries of an admin's log (failures with their traceback)."""
    kept: list[str] = []
    keeping = False
    for line in log.splitlines():
        if _ENTRY.match(line):
            keeping = "#error]" in line or "#critical]" in line
        if keeping:
            kept.append(line)
    return "\n".join(kept) or "(none)"


def main(extra: list[str]) -> int:
    """Prepare a farm, run schemathesis against it, stop it; schemathesis's exit status
    (1 if it passed but the admin did not stop cleanly)."""
    began = time.monotonic()
    with stopped_on_sigterm(), tempfile.TemporaryDirectory(prefix="schemathesis-") as base:
        farm, token = prepare(base)
        code = 1
        try:
            farm.start()
            farm.token = token
            finish_files(farm, base)
            relpaths = hold_files(farm, base)
            print(f"admin ready in {time.monotonic() - began:.0f} s", flush=True)
            config = write_config(farm, os.path.join(base, "schemathesis.toml"), relpaths)
            argv = schemathesis_argv(farm, token, config, extra)
            code = subprocess.run(argv, cwd=base).returncode
            code = code or reached(farm.log())
        finally:
            clean = stop(farm)
            if code != 0 or not clean:
                print(f"the admin's errors:\n{errors(farm.log())}", file=sys.stderr)
    if not clean:
        print("the admin did not exit 0 or left processes behind", file=sys.stderr)
        code = code or 1
    print(f"schemathesis run: exit {code} after {time.monotonic() - began:.0f} s", flush=True)
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
