"""``transcoder-admin worker`` settings: a YAML file and flags, every problem named by key."""

from __future__ import annotations

import argparse
import os

import pytest

from transcoder_admin.worker.command import add_arguments, run, settings_from


def parse(*argv: str) -> argparse.Namespace:
    """The worker's flags as the command line gives them."""
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser.parse_args(list(argv))


@pytest.fixture
def creds(tmp_path) -> str:
    """A worker credentials file for encoder-2 (and one other worker)."""
    path = tmp_path / "worker.credentials"
    path.write_text("encoder-2:s3cret\nencoder-3:other\n", encoding="utf-8")
    return str(path)


def flags(creds: str, *extra: str) -> list[str]:
    """A complete, valid set of flags, followed by ``extra``."""
    return [
        "--manager",
        "tcp:admin.example.com:7632",
        "--name",
        "encoder-2",
        "--root",
        "default=/srv/media",
        "--root",
        "temp=/var/tmp/transcoder",
        "--credentials-file",
        creds,
        *extra,
    ]


def worker_file(tmp_path, text: str) -> str:
    """A worker YAML file."""
    path = tmp_path / "worker.yaml"
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_flags_alone_make_valid_settings(creds):
    """Everything given as flags: no problem, the password read from the file."""
    s = settings_from(parse(*flags(creds, "--max-jobs", "3", "--heartbeat-interval", "2.5")))
    assert s.problems == []
    assert (s.name, s.manager, s.password) == ("encoder-2", "tcp:admin.example.com:7632", b"s3cret")
    assert s.roots == {"default": "/srv/media", "temp": "/var/tmp/transcoder"}
    assert (s.max_jobs, s.heartbeat_interval) == (3, 2.5)


def test_missing_manager_is_named(creds):
    """No manager endpoint: the problem names the key and the flag."""
    argv = flags(creds)
    del argv[0:2]
    [problem] = settings_from(parse(*argv)).problems
    assert "manager is missing" in problem and "--manager" in problem


@pytest.mark.parametrize(
    "manager, refused",
    [
        ("ssl:admin.example.com:7632", True),
        ("ssl:host=admin.example.com:port=7632", True),
        ("ssl:admin.example.com:7632:caCertsDir=/etc/transcoder/ca", False),
        ("tls:admin.example.com:7632", False),
        ("tls:admin.example.com:7632:trustRoots=/etc/transcoder/ca", False),
    ],
)
def test_tls_to_the_manager_that_checks_no_certificate_is_refused(creds, manager, refused):
    """ssl: without caCertsDir would trust any server (and run its job specs)."""
    argv = flags(creds)
    argv[1] = manager
    problems = settings_from(parse(*argv)).problems
    if refused:
        [problem] = problems
        assert "checks no certificate" in problem and "tls:" in problem
    else:
        assert problems == []


def test_missing_default_and_temp_roots_are_named(creds):
    """Both required roots are reported, each with the flag that sets it."""
    problems = settings_from(
        parse("--manager", "tcp:h:1", "--name", "encoder-2", "--credentials-file", creds)
    ).problems
    assert problems == [
        "flags: root 'default' is missing (--root default=PATH)",
        "flags: root 'temp' is missing (--root temp=PATH)",
    ]


@pytest.mark.parametrize("value", ["nonsense", "=/srv", "default="])
def test_a_bad_root_flag_is_named(creds, value):
    """--root must be NAME=PATH; the bad value is quoted."""
    problems = settings_from(parse(*flags(creds, "--root", value))).problems
    assert problems == [f"--root {value!r}: expected NAME=PATH, e.g. default=/srv/media"]


def test_the_admin_name_is_reserved(tmp_path):
    """A worker may not log in as the admin."""
    path = tmp_path / "c"
    path.write_text("admin:x\n", encoding="utf-8")
    argv = flags(str(path))
    argv[argv.index("encoder-2")] = "admin"
    problems = settings_from(parse(*argv)).problems
    assert problems == ["flags: name 'admin' is reserved for the admin's login"]


@pytest.mark.parametrize("value", ["../up", "a/b", ".hidden", "x" * 65, "sp ace"])
def test_a_name_that_is_not_folder_safe_is_refused(creds, value):
    """The name becomes a folder (.failed/NAME): no slashes, no leading dot, bounded."""
    argv = flags(creds)
    argv[argv.index("encoder-2")] = value
    problems = settings_from(parse(*argv)).problems  # (and no password for that name)
    assert problems[0].startswith(f"flags: name {value!r} must be letters, digits"), problems


@pytest.mark.parametrize("value", ["0", "65", "-1"])
def test_max_jobs_out_of_range_is_named(creds, value):
    """max-jobs between 1 and 64."""
    problems = settings_from(parse(*flags(creds, "--max-jobs", value))).problems
    assert problems == [f"flags: max-jobs must be between 1 and 64, not {int(value)!r}"]


def test_max_jobs_that_is_not_a_number_is_named(tmp_path, creds):
    """In the file, max-jobs: many is refused naming the file and key."""
    path = worker_file(tmp_path, "max-jobs: many\n")
    problems = settings_from(parse("--config", path, *flags(creds))).problems
    assert problems == [f"{path}: max-jobs must be a whole number, not 'many'"]


@pytest.mark.parametrize("value", ["2.5", "true"])
def test_max_jobs_that_is_not_a_whole_number_is_refused(tmp_path, creds, value):
    """A fractional or boolean max-jobs in the file is an error, not a silent guess."""
    path = worker_file(tmp_path, f"max-jobs: {value}\n")
    problems = settings_from(parse("--config", path, *flags(creds))).problems
    assert len(problems) == 1 and "max-jobs" in problems[0]


def test_heartbeat_interval_out_of_range_is_named(creds):
    """Heartbeats between 0.05 and 300 s."""
    problems = settings_from(parse(*flags(creds, "--heartbeat-interval", "0"))).problems
    assert problems == ["flags: heartbeat-interval must be between 0.05 and 300, not 0.0"]


def test_an_unknown_key_in_the_file_is_named_with_the_allowed_ones(tmp_path, creds):
    """A typo in the worker file names the file and key and lists the allowed keys."""
    path = worker_file(tmp_path, "max_jobs: 2\n")
    [problem] = settings_from(parse("--config", path, *flags(creds))).problems
    assert problem.startswith(f"{path}: unknown key 'max_jobs'; allowed: name, manager")
    assert "max-jobs" in problem


def test_a_file_that_is_not_a_mapping_or_not_yaml_is_named(tmp_path, creds):
    """A list, or broken YAML, is refused naming the file."""
    listed = worker_file(tmp_path, "- name\n- manager\n")
    [problem] = settings_from(parse("--config", listed, *flags(creds))).problems
    assert problem.startswith(f"{listed}: expected a mapping of name, manager")
    broken = worker_file(tmp_path, "roots: {default: [\n")
    [problem] = settings_from(parse("--config", broken, *flags(creds))).problems
    assert problem.startswith(f"{broken}: cannot read the worker file")
    missing = str(tmp_path / "absent.yaml")
    [problem] = settings_from(parse("--config", missing, *flags(creds))).problems
    assert problem.startswith(f"{missing}: cannot read the worker file")


def test_credentials_problems_are_named(tmp_path, creds):
    """No credentials file, or one without this worker's line, is named."""
    argv = flags(creds)
    del argv[-2:]
    [problem] = settings_from(parse(*argv)).problems
    assert "credentials-file is missing" in problem and "encoder-2:PASSWORD" in problem
    argv = flags(creds)
    argv[argv.index("encoder-2")] = "encoder-9"
    [problem] = settings_from(parse(*argv)).problems
    assert problem == f"{creds}: no line for 'encoder-9'"


def test_every_problem_is_reported_at_once(tmp_path, creds):
    """Unknown key, bad max-jobs, missing manager and roots: all in one go."""
    path = worker_file(tmp_path, "name: encoder-2\ncolour: blue\nmax-jobs: 0\n")
    problems = settings_from(parse("--config", path, "--credentials-file", creds)).problems
    text = "\n".join(problems)
    for key in ("'colour'", "max-jobs", "root 'default'", "root 'temp'", "manager is missing"):
        assert key in text
    assert len(problems) == 5


def test_flags_override_the_file(tmp_path, creds):
    """A flag beats the file's value; file roots not named by a flag stay."""
    path = worker_file(
        tmp_path,
        "name: encoder-3\n"
        "manager: tcp:old:1\n"
        "max-jobs: 1\n"
        "heartbeat-interval: 5\n"
        "roots: {default: /srv/old, temp: /var/tmp/old, archive: /srv/archive}\n",
    )
    s = settings_from(
        parse(
            "--config",
            path,
            "--name",
            "encoder-2",
            "--manager",
            "tcp:new:2",
            "--max-jobs",
            "4",
            "--heartbeat-interval",
            "1",
            "--root",
            "default=/srv/new",
            "--credentials-file",
            creds,
        )
    )
    assert s.problems == []
    assert (s.name, s.manager, s.max_jobs, s.heartbeat_interval) == (
        "encoder-2",
        "tcp:new:2",
        4,
        1.0,
    )
    assert s.roots == {"default": "/srv/new", "temp": "/var/tmp/old", "archive": "/srv/archive"}
    assert s.password == b"s3cret"


def test_relative_paths_in_the_file_are_relative_to_the_file(tmp_path):
    """Roots and the credentials file of a worker file are found beside it."""
    conf = tmp_path / "etc"
    conf.mkdir()
    (conf / "me.credentials").write_text("encoder-2:s3cret\n", encoding="utf-8")
    path = conf / "worker.yaml"
    path.write_text(
        "name: encoder-2\nmanager: tcp:h:1\ncredentials-file: me.credentials\n"
        "roots: {default: media, temp: ../tmp}\n",
        encoding="utf-8",
    )
    s = settings_from(parse("--config", str(path)))
    assert s.problems == []
    assert s.password == b"s3cret"
    roots = {name: os.path.normpath(path) for name, path in s.roots.items()}
    assert roots == {"default": str(conf / "media"), "temp": str(tmp_path / "tmp")}


def test_run_refuses_to_start_and_lists_every_problem(capsys, creds):
    """The command exits 1 before starting anything and prints each problem."""
    argv = flags(creds, "--max-jobs", "0")
    del argv[0:2]
    assert run(parse(*argv)) == 1
    err = capsys.readouterr().err
    assert err.startswith("transcoder-admin worker: cannot start:")
    assert "  - flags: manager is missing" in err
    assert "  - flags: max-jobs must be between 1 and 64" in err
    assert "s3cret" not in err


def test_trust_roots_in_the_worker_file_are_beside_it(tmp_path, creds):
    """trustRoots=ca in worker.yaml is the ca folder next to the file, not in the cwd."""
    path = worker_file(tmp_path, "manager: 'tls:admin.example.com:7632:trustRoots=ca'\n")
    argv = flags(creds)
    del argv[0:2]  # no --manager flag: the file's
    s = settings_from(parse("--config", path, *argv))
    assert s.problems == []
    assert s.manager == f"tls:admin.example.com:7632:trustRoots={tmp_path}/ca"


def test_orphan_timeout_defaults_to_never_and_comes_from_file_or_flag(tmp_path, creds):
    """0 (never) unless set; the flag overrides the file's `orphan-timeout`."""
    assert settings_from(parse(*flags(creds))).orphan_timeout == 0.0
    path = worker_file(tmp_path, "orphan-timeout: 600\n")
    assert settings_from(parse("--config", path, *flags(creds))).orphan_timeout == 600.0
    argv = parse("--config", path, *flags(creds, "--orphan-timeout", "30"))
    assert settings_from(argv).orphan_timeout == 30.0


@pytest.mark.parametrize("value", ["-1", "nan", "inf"])
def test_orphan_timeout_out_of_range_is_named(creds, value):
    """A negative or endless orphan-timeout is refused, naming the key."""
    problems = settings_from(parse(*flags(creds, "--orphan-timeout", value))).problems
    assert len(problems) == 1 and problems[0].startswith("flags: orphan-timeout must be between 0")


def test_local_workers_get_ten_lost_timeouts_as_orphan_timeout():
    """The spawner's command line: 10 × lost-timeout; none without a lost-timeout."""
    from transcoder_admin.worker.spawner import worker_argv

    argv = worker_argv("tcp:127.0.0.1:7632", {"default": "/m", "temp": "/t"}, 2, "/c", 5.0)
    assert "--orphan-timeout" not in argv
    argv = worker_argv(
        "tcp:127.0.0.1:7632", {"default": "/m", "temp": "/t"}, 2, "/c", 5.0, lost_timeout=60
    )
    assert argv[argv.index("--orphan-timeout") + 1] == "600.0"
    assert argv[3] == "worker"  # what the worker makes of it:
    assert settings_from(parse(*argv[4:], "--name", "w")).orphan_timeout == 600.0
