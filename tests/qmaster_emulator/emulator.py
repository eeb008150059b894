"""An emulator of Apple's Compressor and Batch Monitor command-line tools, for tests.

It honours the contract of docs/qmaster.md: ``Compressor -clustername N -batchname B
-priority P (-jobpath SRC -settingpath S -destinationpath DST)...`` prints
``<jobID … />`` lines and ``<batchID … />``; ``Batch Monitor -clustername N -batchid ID
-query 0`` prints a ``<batchStatus …>`` element, and ``… -cancel`` cancels the batch.
A batch that ends Successful has real outputs, written with ffmpeg.

State and knobs live in the folder named by ``QMASTER_EMULATOR_HOME``:
``config.json`` (the knobs, see KNOBS), ``batches/<id>.json`` (one per batch),
``calls.jsonl`` (every invocation's argv) and ``pids.jsonl`` (processes left hanging,
for the tests' "nothing left behind" checks). ffmpeg is ``QMASTER_EMULATOR_FFMPEG``,
else the imageio-ffmpeg wheel's, else ``ffmpeg`` on PATH.

Standard library only: the executables run under any Python 3.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import uuid

HOME_ENV = "QMASTER_EMULATOR_HOME"
FFMPEG_ENV = "QMASTER_EMULATOR_FFMPEG"

KNOBS = {
    # clusters the emulated Qmaster knows; others give 'Could not find cluster "N"'
    "clusters": ["This Computer"],
    "cluster_missing_exit": 1,  # exit status after 'Could not find cluster'
    # Compressor
    "submit_hang": False,  # print the job ids, then hang (with a child) forever
    "submit_delay": 0.0,  # seconds before answering
    "submit_error": None,  # text of a 'Submission Error: …' line
    "submit_exit_code": 0,  # exit status of a submission
    "submit_stderr": "",  # extra text on stderr
    "submit_silent": False,  # print nothing at all
    "ids_stream": "stderr",  # stderr | stdout | split (job ids on stdout, batch id on stderr)
    "ids_order": "job-first",  # job-first | batch-first
    "ids_spacing": "normal",  # normal | loose ('<  batchID\tX   />')
    # Batch Monitor
    "status_sequence": ["Waiting", "Processing"],  # one per query; then the outcome.
    # Entries may also be "garbage", "empty" or "hang".
    "outcome": "Successful",  # Successful | Failed | Cancelled
    "status_style": "plain",  # plain | malformed | garbage | empty
    "status_stream": "stdout",  # stdout | stderr
    "status_hang": False,  # every query hangs (with a child) forever
    "status_exit_code": 0,
    "cancel_exit_code": 0,
    "encode": True,  # write real outputs with ffmpeg when a batch succeeds
}

DEFAULT_FFMPEG_ARGS = [
    "-c:v",
    "libx264",
    "-preset",
    "ultrafast",
    "-pix_fmt",
    "yuv420p",
    "-c:a",
    "aac",
    "-b:a",
    "96k",
]


class Home:
    """The emulator's folder: knobs, batches, call and process records."""

    def __init__(self, path: str) -> None:
        self.path = path
        os.makedirs(os.path.join(path, "batches"), exist_ok=True)

    def knobs(self) -> dict:
        knobs = dict(KNOBS)
        try:
            with open(os.path.join(self.path, "config.json"), encoding="utf-8") as f:
                knobs.update(json.load(f))
        except FileNotFoundError:
            pass
        return knobs

    def append(self, name: str, record: dict) -> None:
        with open(os.path.join(self.path, name), "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")

    def batch_path(self, batch_id: str) -> str:
        return os.path.join(self.path, "batches", os.path.basename(batch_id) + ".json")

    def load(self, batch_id: str) -> dict | None:
        try:
            with open(self.batch_path(batch_id), encoding="utf-8") as f:
                return json.load(f)
        except (FileNotFoundError, ValueError):
            return None

    def save(self, batch: dict) -> None:
        path = self.batch_path(batch["batch_id"])
        with open(path + ".tmp", "w", encoding="utf-8") as f:
            json.dump(batch, f, indent=1)
        os.replace(path + ".tmp", path)


def _home() -> Home:
    path = os.environ.get(HOME_ENV)
    if not path:
        sys.stderr.write(f"emulator: set {HOME_ENV} to the emulator's folder\n")
        sys.exit(70)
    return Home(path)


def _record_call(home: Home, tool: str, argv: list[str]) -> None:
    home.append(
        "calls.jsonl",
        {
            "tool": tool,
            "argv": argv,
            "pid": os.getpid(),
            "pgid": os.getpgid(0),
            "sid": os.getsid(0),
        },
    )


def _hang(home: Home, role: str) -> None:
    """Hang forever with a child, as a stuck Compressor with its helpers would."""
    sys.stdout.flush()
    sys.stderr.flush()
    child = os.fork()
    if child == 0:
        time.sleep(3600)
        os._exit(0)
    home.append(
        "pids.jsonl", {"role": role, "pid": os.getpid(), "child": child, "pgid": os.getpgid(0)}
    )
    time.sleep(3600)
    sys.exit(0)


def _options(argv: list[str]) -> tuple[list[tuple[str, str]], str | None]:
    pairs = []
    i = 0
    while i < len(argv):
        flag = argv[i]
        if not flag.startswith("-"):
            return pairs, f"unexpected argument {flag!r}"
        if flag == "-cancel":
            pairs.append((flag, ""))
            i += 1
            continue
        if i + 1 >= len(argv):
            return pairs, f"{flag} needs a value"
        pairs.append((flag, argv[i + 1]))
        i += 2
    return pairs, None


def _usage(tool: str, message: str) -> int:
    sys.stderr.write(f"{tool}: {message}\n")
    return 2


def _tag(name: str, value: str, spacing: str) -> str:
    if spacing == "loose":
        return f"<  {name}\t{value}   />"
    return f"<{name} {value} />"


def compressor_main(argv: list[str]) -> int:
    """Compressor: submit one batch of jobs."""
    home = _home()
    knobs = home.knobs()
    _record_call(home, "Compressor", argv)
    pairs, problem = _options(argv)
    if problem:
        return _usage("Compressor", problem)
    values: dict[str, str] = {}
    jobs: list[dict] = []
    for flag, value in pairs:
        if flag in ("-clustername", "-batchname", "-priority"):
            values[flag] = value
        elif flag == "-jobpath":
            jobs.append({"source": value})
        elif flag in ("-settingpath", "-destinationpath"):
            if not jobs or flag[1:-4] in jobs[-1]:
                return _usage("Compressor", f"{flag} without its -jobpath")
            jobs[-1][flag[1:-4]] = value
        else:
            return _usage("Compressor", f"unknown option {flag}")
    for needed in ("-clustername", "-batchname", "-priority"):
        if needed not in values:
            return _usage("Compressor", f"missing {needed}")
    if not jobs or any(set(j) != {"source", "setting", "destination"} for j in jobs):
        return _usage("Compressor", "each job needs -jobpath, -settingpath, -destinationpath")
    time.sleep(float(knobs["submit_delay"]))
    cluster = values["-clustername"]
    if cluster not in knobs["clusters"]:
        sys.stderr.write(f'Could not find cluster "{cluster}"\n')
        return int(knobs["cluster_missing_exit"])
    if knobs["submit_silent"]:
        return int(knobs["submit_exit_code"])
    if knobs["submit_stderr"]:
        sys.stderr.write(knobs["submit_stderr"] + "\n")
    error = knobs["submit_error"]
    if error is None:
        missing = [j["source"] for j in jobs if not os.path.exists(j["source"])]
        if missing:
            error = f"source file {missing[0]} not found"
    if error is not None:
        sys.stderr.write(f"Submission Error: {error}\n")
        return int(knobs["submit_exit_code"])
    for job in jobs:
        job["job_id"] = str(uuid.uuid4()).upper()
    batch_id = str(uuid.uuid4()).upper()
    spacing = knobs["ids_spacing"]
    job_lines = [_tag("jobID", j["job_id"], spacing) for j in jobs]
    batch_line = _tag("batchID", batch_id, spacing)
    stream = knobs["ids_stream"]
    job_out = sys.stdout if stream in ("stdout", "split") else sys.stderr
    batch_out = sys.stdout if stream == "stdout" else sys.stderr
    home.save(
        {
            "batch_id": batch_id,
            "cluster": cluster,
            "name": values["-batchname"],
            "priority": values["-priority"],
            "jobs": jobs,
            "queries": 0,
            "state": "Waiting",
            "submitted": time.time(),
        }
    )
    if knobs["submit_hang"]:
        for line in job_lines:
            job_out.write(line + "\n")
        _hang(home, "Compressor")
    if knobs["ids_order"] == "batch-first":
        batch_out.write(batch_line + "\n")
        batch_out.flush()
    for line in job_lines:
        job_out.write(line + "\n")
    job_out.flush()
    if knobs["ids_order"] != "batch-first":
        batch_out.write(batch_line + "\n")
    return int(knobs["submit_exit_code"])


def _ffmpeg() -> str | None:
    configured = os.environ.get(FFMPEG_ENV)
    if configured:
        return configured
    try:
        import imageio_ffmpeg  # type: ignore[import-not-found]

        return imageio_ffmpeg.get_ffmpeg_exe()
    except Exception:
        return shutil.which("ffmpeg")


def _encode(job: dict) -> str | None:
    """Write the job's output with ffmpeg; the error text, or None when it worked."""
    ffmpeg = _ffmpeg()
    if not ffmpeg:
        return "no ffmpeg"
    args = list(DEFAULT_FFMPEG_ARGS)
    try:
        with open(job["setting"], encoding="utf-8") as f:
            setting = json.load(f)
        if isinstance(setting, dict) and isinstance(setting.get("ffmpeg"), list):
            args = [str(a) for a in setting["ffmpeg"]]
    except (OSError, ValueError):
        pass
    argv = [
        ffmpeg,
        "-hide_banner",
        "-nostdin",
        "-y",
        "-v",
        "error",
        "-i",
        "file:" + os.path.abspath(job["source"]),
        *args,
        "file:" + os.path.abspath(job["destination"]),
    ]
    env = dict(os.environ, SVT_LOG="1")
    try:
        done = subprocess.run(argv, capture_output=True, timeout=120, env=env, check=False)
    except (OSError, subprocess.TimeoutExpired) as e:
        return str(e)
    if done.returncode != 0:
        return done.stderr.decode("utf-8", "replace").strip()[-300:] or f"exit {done.returncode}"
    return None


def _advance(batch: dict, knobs: dict) -> str:
    """The batch's answer to one more query: a status word, garbage, empty or hang."""
    if batch["state"] in ("Successful", "Failed", "Cancelled"):
        return batch["state"]
    sequence = knobs["status_sequence"]
    index = batch["queries"]
    batch["queries"] = index + 1
    if index < len(sequence):
        word = sequence[index]
        if word not in ("garbage", "empty", "hang"):
            batch["state"] = word.strip()
        return word
    outcome = knobs["outcome"]
    if outcome == "Successful" and knobs["encode"]:
        for job in batch["jobs"]:
            error = _encode(job)
            if error:
                batch["error"] = error
                outcome = "Failed"
                break
    batch["state"] = outcome
    batch["finished"] = time.time()
    return outcome


def _attr(value: str) -> str:
    return value.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;")


def _status_text(batch: dict, word: str, style: str, knobs: dict) -> str:
    sequence_length = len(knobs["status_sequence"]) + 1
    if word in ("Successful", "Failed", "Cancelled"):
        percent = 100.0 if word == "Successful" else 0.0
    else:
        percent = round(100.0 * min(batch["queries"], sequence_length - 1) / sequence_length, 1)
    value = word + " " if style == "malformed" else word
    extra = ' frobnicate="yes" queue = "2"' if style == "malformed" else ""
    lines = [
        f'<batchStatus name="{_attr(batch["name"])}" submissionTime="'
        f'{time.strftime("%m/%d/%Y %H:%M:%S", time.localtime(batch["submitted"]))}" '
        f'sentBy="emulator" status="{value}" percentComplete="{percent}"{extra}>'
    ]
    for job in batch["jobs"]:
        name = os.path.basename(job["source"])
        lines.append(
            f'  <jobStatus name="{_attr(name)}" status="{value}" '
            f'percentComplete="{percent}"{extra} />'
        )
    if batch.get("error"):
        lines.append(f'  <error text="{_attr(batch["error"])}" />')
    lines.append("/batchStatus>" if style == "malformed" else "</batchStatus>")
    return "\n".join(lines) + "\n"


def batch_monitor_main(argv: list[str]) -> int:
    """Batch Monitor: query (``-query 0``) or cancel (``-cancel``) one batch."""
    home = _home()
    knobs = home.knobs()
    _record_call(home, "Batch Monitor", argv)
    pairs, problem = _options(argv)
    if problem:
        return _usage("Batch Monitor", problem)
    values = dict(pairs)
    unknown = set(values) - {"-clustername", "-batchid", "-query", "-cancel"}
    if unknown or "-clustername" not in values or "-batchid" not in values:
        return _usage("Batch Monitor", "usage: -clustername N -batchid ID (-query 0 | -cancel)")
    if ("-query" in values) == ("-cancel" in values):
        return _usage("Batch Monitor", "give one of -query 0 or -cancel")
    cluster = values["-clustername"]
    if cluster not in knobs["clusters"]:
        sys.stderr.write(f'Could not find cluster "{cluster}"\n')
        return int(knobs["cluster_missing_exit"])
    batch = home.load(values["-batchid"])
    if batch is None or batch["cluster"] != cluster:
        sys.stderr.write(f"Batch Monitor: no batch {values['-batchid']} on {cluster}\n")
        return 1
    if "-cancel" in values:
        if batch["state"] not in ("Successful", "Failed"):
            batch["state"] = "Cancelled"
            home.save(batch)
        return int(knobs["cancel_exit_code"])
    if knobs["status_hang"]:
        _hang(home, "Batch Monitor")
    word = _advance(batch, knobs)
    home.save(batch)
    if word == "hang":
        _hang(home, "Batch Monitor")
    style = knobs["status_style"]
    if word in ("garbage", "empty"):
        style = word
    out = sys.stderr if knobs["status_stream"] == "stderr" else sys.stdout
    if style == "garbage":
        out.write("Batch Monitor: internal error 0x2a while talking to qmasterd\n")
    elif style != "empty":
        out.write(_status_text(batch, word, style, knobs))
    return int(knobs["status_exit_code"])


def main(argv: list[str]) -> int:
    """``emulator.py compressor|batch-monitor ARGS…``: what the two executables run."""
    if not argv or argv[0] not in ("compressor", "batch-monitor"):
        sys.stderr.write("usage: emulator.py compressor|batch-monitor ARGS...\n")
        return 2
    if argv[0] == "compressor":
        return compressor_main(argv[1:])
    return batch_monitor_main(argv[1:])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
