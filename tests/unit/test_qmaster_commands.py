"""Command lines (argv lists, remote quoting), destinations, input checks and settings."""

from __future__ import annotations

import os
import shlex

import pytest

from transcoder_admin.qmaster import (
    BatchJob,
    DestinationError,
    QmasterSettings,
    SettingFileError,
    SourceFileError,
)
from transcoder_admin.qmaster.commands import (
    cancel_argv,
    check_job,
    destination_for,
    status_argv,
    submit_argv,
)

HOSTILE = [
    "a b.mov",
    "it's.mov",
    '"quoted".mov',
    "$(touch pwned).mov",
    "a;rm -rf x.mov",
    "line\nbreak.mov",
    "-dash.mov",
    "é ü.mov",
    "`tick`.mov",
    "*.mov",
]


def test_submission_repeats_the_job_triple_and_always_gives_priority():
    """Cluster, batch name and priority once, then -jobpath/-settingpath/-destinationpath."""
    settings = QmasterSettings(compressor="/opt/Compressor")
    jobs = [BatchJob("/in/a.mov", "/s/hd.setting", "/out/a.mov")]
    jobs.append(BatchJob("/in/a.mov", "/s/sd.setting", "/out/a-sd.mov"))
    argv = submit_argv(settings, "FCS Cluster", "news", "high", jobs)
    assert argv == [
        "/opt/Compressor",
        "-clustername",
        "FCS Cluster",
        "-batchname",
        "news",
        "-priority",
        "high",
        "-jobpath",
        "/in/a.mov",
        "-settingpath",
        "/s/hd.setting",
        "-destinationpath",
        "/out/a.mov",
        "-jobpath",
        "/in/a.mov",
        "-settingpath",
        "/s/sd.setting",
        "-destinationpath",
        "/out/a-sd.mov",
    ]


def test_status_and_cancel_commands():
    """Batch Monitor is asked with -clustername, -batchid and -query 0 (or the cancel flag)."""
    settings = QmasterSettings(batch_monitor="/BM")
    assert status_argv(settings, "This Computer", "ID") == [
        "/BM",
        "-clustername",
        "This Computer",
        "-batchid",
        "ID",
        "-query",
        "0",
    ]
    assert cancel_argv(settings, "C", "ID")[-1] == "-cancel"


@pytest.mark.parametrize("name", HOSTILE)
def test_plain_argv_keeps_hostile_names_whole(name):
    """Without a prefix every name is one argv item, unchanged."""
    argv = submit_argv(QmasterSettings(), "C", name, "1", [BatchJob(name, name, name)])
    assert argv.count(name) == 4


def test_command_prefix_quotes_every_argument_for_the_remote_shell():
    """With ['ssh', 'mac'] the remote shell splits the words back into the same argv."""
    settings = QmasterSettings(
        compressor="/Applications/Compressor.app/Contents/MacOS/Compressor",
        command_prefix=("ssh", "mac-encoder"),
    )
    jobs = [BatchJob(n, n, n) for n in HOSTILE]
    argv = submit_argv(settings, "FCS Cluster", "batch $(x)", "medium", jobs)
    assert argv[:2] == ["ssh", "mac-encoder"]
    remote_line = " ".join(argv[2:])  # what ssh hands to the remote shell
    assert shlex.split(remote_line) == submit_argv(
        settings.replace(command_prefix=()), "FCS Cluster", "batch $(x)", "medium", jobs
    )


def test_destination_from_a_directory_takes_the_source_stem_and_suffix():
    """A destination directory gives <stem>.mov (or the configured suffix)."""
    assert destination_for("/in/My Clip.mxf", destination_directory="/out") == "/out/My Clip.mov"
    assert destination_for("/in/a.b.mxf", "", "/out", ".mp4") == "/out/a.b.mp4"
    assert destination_for("/in/a.mxf", "/x/y.mov", "/out") == "/x/y.mov"
    with pytest.raises(DestinationError):
        destination_for("/in/a.mxf")


def test_job_checks_name_what_is_wrong(tmp_path):
    """Missing source, setting or destination folder raise the seed's exceptions."""
    source = tmp_path / "in.mov"
    source.write_bytes(b"x")
    setting = tmp_path / "s.setting"
    setting.write_text("{}")
    settings = QmasterSettings()
    ok = check_job(settings, BatchJob(str(source), str(setting), str(tmp_path / "o.mov")))
    assert os.path.isabs(ok.source)
    with pytest.raises(SourceFileError, match="does not exist"):
        check_job(settings, BatchJob(str(tmp_path / "no.mov"), str(setting), "/tmp/o.mov"))
    with pytest.raises(SourceFileError):
        check_job(settings, BatchJob("", str(setting), "/tmp/o.mov"))
    with pytest.raises(SettingFileError):
        check_job(settings, BatchJob(str(source), str(tmp_path / "no.setting"), "/tmp/o.mov"))
    with pytest.raises(DestinationError, match="folder"):
        check_job(settings, BatchJob(str(source), str(setting), str(tmp_path / "no" / "o.mov")))
    with pytest.raises(DestinationError, match="is a folder"):
        check_job(settings, BatchJob(str(source), str(setting), str(tmp_path)))


def test_remote_paths_are_not_checked_when_told():
    """check_paths off: paths that exist only on the Mac pass untouched."""
    job = BatchJob("/Volumes/x/in.mov", "/Users/e/s.setting", "/Volumes/x/out.mov")
    assert check_job(QmasterSettings(check_paths=False), job) == job


def test_settings_from_config_keys():
    """The admin config's qmaster keys map onto the settings; unknown keys are refused."""
    settings = QmasterSettings.from_mapping(
        {
            "compressor": "/c",
            "batch-monitor": "/b",
            "cluster": "FCS",
            "fallback-to-local": False,
            "submission-timeout": 5,
            "poll-interval": 2,
            "command-prefix": ["ssh", "mac"],
        }
    )
    assert settings.command_prefix == ("ssh", "mac")
    assert (settings.cluster, settings.fallback_to_local, settings.submission_timeout) == (
        "FCS",
        False,
        5,
    )
    with pytest.raises(ValueError, match="unknown qmaster settings: bogus"):
        QmasterSettings.from_mapping({"bogus": 1})
    with pytest.raises(ValueError, match="list"):
        QmasterSettings.from_mapping({"command-prefix": "ssh mac"})


def test_settings_refuse_impossible_timeouts():
    """Zero or negative timeouts are refused with the field's name."""
    with pytest.raises(ValueError, match="submission_timeout"):
        QmasterSettings(submission_timeout=0)
    with pytest.raises(ValueError, match="batch_timeout"):
        QmasterSettings(batch_timeout=-1)
