"""`transcoder-admin qmaster submit|status|wait|cancel` on the emulator: output, exit codes."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from tests.qmaster_emulator import Emulator, wait_until_gone, write_setting
from tests.qmaster_emulator.emulator import FFMPEG_ENV, HOME_ENV
from transcoder_admin.cli import main


@pytest.fixture
def emulator(tmp_path, monkeypatch, clips):
    """An emulator in the environment, a clip and a setting file."""
    emu = Emulator(str(tmp_path))
    monkeypatch.setenv(HOME_ENV, emu.env[HOME_ENV])
    monkeypatch.setenv(FFMPEG_ENV, emu.env[FFMPEG_ENV])
    emu.source = str(tmp_path / "a clip.mp4")
    shutil.copy(clips["av"], emu.source)
    emu.setting = write_setting(str(tmp_path / "h264.setting"))
    emu.out = str(tmp_path)
    yield emu
    assert wait_until_gone(emu.leftovers) == [], "processes outlived their command"


def qmaster(emu: Emulator, action: str, *args: str) -> list[str]:
    """The argv of ``transcoder-admin qmaster ACTION`` on the emulator, with fast timeouts."""
    return [
        "qmaster",
        action,
        "--compressor",
        emu.compressor,
        "--batch-monitor",
        emu.batch_monitor,
        "--poll-interval",
        "0.05",
        "--submission-timeout",
        "3",
        "--status-timeout",
        "5",
        "--status-grace",
        "1",
        *args,
    ]


def submit(emu: Emulator, *args: str) -> list[str]:
    """``qmaster submit`` of the emulator's clip into its folder."""
    return qmaster(
        emu, "submit", "--source", emu.source, "--setting", emu.setting,
        "--destination-dir", emu.out, *args,
    )  # fmt: skip


def test_submit_then_status_then_wait(emulator, capsys):
    """submit prints the batch, status its state and percent, wait its states; all exit 0."""
    assert main(submit(emulator, "--cluster", "FCS Cluster", "--json")) == 0
    submitted = json.loads(capsys.readouterr().out)
    assert submitted["cluster"] == "This Computer" and submitted["fell_back"]
    batch_id = submitted["batch_id"]
    assert main(qmaster(emulator, "status", batch_id)) == 0
    assert capsys.readouterr().out.strip() == "Waiting 33%"
    assert main(qmaster(emulator, "wait", batch_id)) == 0
    assert capsys.readouterr().out.split("\n")[:2] == ["Processing 67%", "Successful 100%"]
    assert os.path.getsize(os.path.join(emulator.out, "a clip.mov")) > 0


def test_submit_and_wait_with_several_jobs(emulator, capsys):
    """--job adds targets; --wait ends with Successful and exit 0."""
    extra = os.path.join(emulator.out, "second.mov")
    assert main(submit(emulator, "--job", emulator.source, emulator.setting, extra, "--wait")) == 0
    out = capsys.readouterr().out
    assert "submitted to cluster 'This Computer'" in out
    assert out.strip().endswith("Successful 100%")
    assert os.path.getsize(extra) > 0


@pytest.mark.parametrize(
    ("knobs", "args", "code", "message"),
    [
        ({}, ["--cluster", "FCS Cluster", "--no-fallback"], 4, "'FCS Cluster' not found"),
        ({"submit_error": "bad setting"}, [], 3, "Submission Error: bad setting"),
        ({"submit_hang": True}, [], 5, "did not answer within 3 s"),
        ({"outcome": "Failed"}, ["--wait"], 8, "failed"),
        ({"outcome": "Cancelled"}, ["--wait"], 9, "cancelled"),
        (
            {"status_sequence": ["Processing"] * 1000},
            ["--wait", "--timeout", "1"],
            10,
            "within 1 s",
        ),
        ({"status_style": "garbage"}, ["--wait"], 8, "no readable status"),
    ],
    ids=["cluster", "submission-error", "hang", "failed", "cancelled", "timeout", "garbage"],
)
def test_errors_have_their_exit_code(emulator, capsys, knobs, args, code, message):
    """Each kind of failure: one clear line on stderr and its own exit code."""
    emulator.configure(**knobs)
    assert main(submit(emulator, *args)) == code
    err = capsys.readouterr().err
    assert err.startswith("transcoder-admin qmaster: ")
    assert message in err
    assert "Traceback" not in err


def test_bad_inputs_exit_2_before_running_anything(emulator, capsys):
    """A missing source or setting exits 2 and never runs Compressor."""
    argv = qmaster(emulator, "submit", "--source", emulator.source + ".nope")
    assert main([*argv, "--setting", emulator.setting, "--destination-dir", emulator.out]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(qmaster(emulator, "submit", "--source", emulator.source)) == 2
    assert "--setting is required" in capsys.readouterr().err
    assert main(qmaster(emulator, "submit")) == 2
    assert emulator.calls() == []


def test_status_errors(emulator, capsys):
    """An unknown batch exits 6; a hung Batch Monitor exits 7."""
    assert main(qmaster(emulator, "status", "NO-SUCH-BATCH")) == 6
    assert "no batch NO-SUCH-BATCH" in capsys.readouterr().err
    assert main(submit(emulator, "--json")) == 0
    batch_id = json.loads(capsys.readouterr().out)["batch_id"]
    emulator.configure(status_hang=True)
    assert main(qmaster(emulator, "status", batch_id, "--status-timeout", "1")) == 7
    assert "did not answer" in capsys.readouterr().err


def test_cancel(emulator, capsys):
    """cancel asks Batch Monitor; a later wait exits 9 (cancelled)."""
    emulator.configure(status_sequence=["Processing"] * 1000)
    assert main(submit(emulator, "--json")) == 0
    batch_id = json.loads(capsys.readouterr().out)["batch_id"]
    assert main(qmaster(emulator, "cancel", batch_id)) == 0
    assert capsys.readouterr().out.strip() == "cancel requested"
    assert main(qmaster(emulator, "wait", batch_id)) == 9


def test_console_script_with_a_command_prefix(emulator, tmp_path):
    """The real command line, through an ssh-like prefix, with a hostile file name."""
    fake_ssh = tmp_path / "fake-ssh"
    fake_ssh.write_text('#!/bin/sh\nshift\nexec /bin/sh -c "$*"\n')
    fake_ssh.chmod(0o755)
    hostile = os.path.join(emulator.out, "it's $(x); a\nb.mp4")
    shutil.copy(emulator.source, hostile)
    argv = qmaster(
        emulator, "submit", "--source", hostile, "--setting", emulator.setting,
        "--destination-dir", emulator.out, "--wait",
        "--command-prefix", f"{fake_ssh} mac-encoder",
    )  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-m", "transcoder_admin", *argv],
        env=emulator.env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().endswith("Successful 100%")
    assert os.path.getsize(os.path.join(emulator.out, "it's $(x); a\nb.mov")) > 0
