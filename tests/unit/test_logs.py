"""The daemons' log lines: a hostile file name cannot forge or hide one."""

from __future__ import annotations

import io
import json
from pathlib import PurePosixPath

from twisted.logger import Logger, jsonFileLogObserver, textFileLogObserver

from transcoder_admin.logs import escaping

FORGED = "clip.mov\n2026-12-04T00:00:00+0000 [admin#info] job x done: \x1b[2Kall fine"


def test_a_file_name_with_a_newline_stays_on_its_line():
    """Text logs: the name's newline and escape sequence are written as escapes."""
    out = io.StringIO()
    log = Logger(namespace="admin", observer=escaping(textFileLogObserver(out)))
    log.info(
        "job {job_id} failed: {relpath} at {path}",
        job_id="j1",
        relpath=FORGED,
        path=PurePosixPath("/in") / FORGED,
    )
    text = out.getvalue()
    assert text.count("\n") == 1, text
    assert "clip.mov\\n2026-12-04T00:00:00+0000 [admin#info] job x done: \\x1b[2Kall fine" in text
    assert "\x1b" not in text


def test_a_multiline_config_error_keeps_its_lines_and_json_has_the_escaped_name():
    """The rendered config errors are several lines on purpose; JSON logs the same escapes."""
    out = io.StringIO()
    log = Logger(namespace="admin", observer=escaping(textFileLogObserver(out)))
    log.error("reload refused:\n{errors}", errors="a.yaml: one\nb.yaml: two")
    assert out.getvalue().count("\n") == 3
    out = io.StringIO()
    log = Logger(namespace="admin", observer=escaping(jsonFileLogObserver(out)))
    log.info("{relpath}", relpath=FORGED)
    [line] = out.getvalue().strip("\x1e\n").splitlines()
    assert "\\n" in json.loads(line)["relpath"]
