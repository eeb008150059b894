"""Configuration loading and every kind of configuration error."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from transcoder_admin.config.errors import ConfigError
from transcoder_admin.context.checks import load_configuration

ADMIN_YAML = """\
admin:
  customers: customers
roots:
  default: media
  temp: tmp
reports:
  url: sqlite:///var/reports.sqlite
"""

CUSTOMER_YAML = """\
name: ACME Corp
priority: 5
profiles:
  web:
    priority: 10
    targets:
      high:
        type: audio-video
        video: {codec: h264, height: 360}
"""


def write(folder, name, text):
    """Write a file below ``folder`` and return its path."""
    path = os.path.join(folder, name)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write(textwrap.dedent(text))
    return path


@pytest.fixture
def farm(tmp_path):
    """A config folder with a valid admin file and one customer."""
    write(tmp_path, "admin.yaml", ADMIN_YAML)
    write(tmp_path, "customers/acme.yaml", CUSTOMER_YAML)
    return tmp_path


def errors_of(path):
    """The rendered problems of an invalid configuration."""
    with pytest.raises(ConfigError) as info:
        load_configuration(str(path))
    return [str(p) for p in info.value.problems]


def test_valid_yaml_loads_with_paths_relative_to_the_config_file(farm):
    """Relative roots and the SQLite path are taken from the config file's folder."""
    config = load_configuration(str(farm / "admin.yaml"))
    assert config.roots()["default"] == str(farm / "media")
    assert config.reports_url() == f"sqlite:///{farm}/var/reports.sqlite"
    assert list(config.customers) == ["ACME Corp"]
    assert config.admin.workers.max_jobs == 2


def test_ini_admin_and_customer_files_use_the_same_keys(tmp_path):
    """INI files with [section] and dotted keys load like the YAML form."""
    write(
        tmp_path,
        "admin.ini",
        """\
        [admin]
        customers = customers
        [roots]
        default = media
        temp = tmp
        [monitoring]
        stable-for = 2.5
        mode = poll
        [defaults]
        video.codec = vp9
        """,
    )
    write(
        tmp_path,
        "customers/acme.ini",
        """\
        [customer]
        name = ACME
        priority = 3
        [profile:web]
        priority = 7
        [target:web:low]
        type = audio-video
        extension = webm
        video.height = 240
        post-process = ["/bin/echo", "%(output)s"]
        """,
    )
    config = load_configuration(str(tmp_path / "admin.ini"))
    assert config.admin.monitoring.stable_for == 2.5
    assert config.admin.monitoring.mode == "poll"
    target = config.customers["ACME"].profiles["web"].targets["low"]
    assert target.video is not None and target.video.height == 240
    assert target.post_process == ["/bin/echo", "%(output)s"]
    assert config.admin.defaults.video is not None
    assert config.admin.defaults.video.codec == "vp9"


def test_every_error_is_reported_at_once_naming_file_key_value_and_allowed(farm):
    """Several mistakes in several files come back together, each precise."""
    write(
        farm,
        "customers/acme.yaml",
        """\
        name: ACME
        priority: 5000
        profiles:
          web:
            colour: blue
            targets:
              high:
                type: audio-video
                video: {codec: h265x, width: -4}
                audio: {rate: 12345}
              thumbs:
                type: thumbnails
                thumbnails: {unit: minutes}
        """,
    )
    write(farm, "customers/other.yaml", "name: Other\nprofiles: {}\nbogus: 1\n")
    problems = errors_of(farm / "admin.yaml")
    text = "\n".join(problems)
    acme = str(farm / "customers" / "acme.yaml")
    assert f"{acme}: priority: bad value 5000" in text
    assert f"{acme}: profiles.web.colour: unknown key; allowed keys:" in text
    assert "targets" in text.split("profiles.web.colour")[1].splitlines()[0]
    assert f"{acme}: profiles.web.targets.high.video.codec: bad value 'h265x'" in text
    assert "'h264'" in text and "'vp9'" in text
    assert "profiles.web.targets.high.video.width: bad value -4" in text
    assert "profiles.web.targets.high.audio.rate: bad value 12345" in text
    assert "profiles.web.targets.thumbs.thumbnails.unit: bad value 'minutes'" in text
    assert "'frames'" in text and "'percent'" in text
    assert "other.yaml: bogus: unknown key" in text
    assert len(problems) == 7


def test_missing_required_keys_are_named(farm):
    """A customer without a name and a target without a type say so."""
    write(farm, "customers/acme.yaml", "profiles:\n  web:\n    targets:\n      t: {}\n")
    text = "\n".join(errors_of(farm / "admin.yaml"))
    assert "acme.yaml: name: required key is missing" in text
    assert "acme.yaml: profiles.web.targets.t.type: required key is missing" in text


def test_admin_file_errors_name_the_key(farm):
    """Unknown sections, bad modes and missing roots in the admin file are reported."""
    write(
        farm,
        "admin.yaml",
        """\
        roots: {default: media}
        monitoring: {mode: fanotify, stable-for: -1}
        workers: {max-jobs: 0}
        colour: red
        """,
    )
    text = "\n".join(errors_of(farm / "admin.yaml"))
    assert "roots: bad value" in text and "temp" in text
    assert "monitoring.mode: bad value 'fanotify'" in text and "'poll'" in text
    assert "monitoring.stable-for: bad value -1" in text
    assert "workers.max-jobs: bad value 0" in text
    assert "colour: unknown key; allowed keys:" in text


def test_syntax_errors_name_the_file(farm):
    """Broken YAML and INI are reported with the file name."""
    write(farm, "customers/acme.yaml", "name: [unclosed\n")
    write(farm, "customers/b.ini", "[customer\nname = B\n")
    text = "\n".join(errors_of(farm / "admin.yaml"))
    assert "acme.yaml: not valid YAML" in text
    assert "b.ini: not valid INI" in text


def test_unknown_ini_section_is_refused(farm):
    """An INI customer file with a section we do not know is an error."""
    write(farm, "customers/c.ini", "[customer]\nname = C\n[profil:web]\npriority = 1\n")
    text = "\n".join(errors_of(farm / "admin.yaml"))
    assert "c.ini: [profil:web]: unknown section" in text


def test_folder_template_that_leaves_its_root_is_an_error(farm):
    """A profile folder climbing out of its root with .. is refused."""
    write(
        farm,
        "customers/acme.yaml",
        CUSTOMER_YAML + "    outgoing: 'default:/../../etc/%(profile)s'\n",
    )
    text = "\n".join(errors_of(farm / "admin.yaml"))
    assert "profiles.web.outgoing" in text and "leaves its root" in text


def test_template_with_unknown_variable_or_root_is_an_error(farm):
    """Unknown template variables and unknown roots are named."""
    write(
        farm,
        "customers/acme.yaml",
        CUSTOMER_YAML
        + "    done: 'default:/%(client)s/done'\n"
        + "    failed: 'archive:/%(customer)s/failed'\n",
    )
    text = "\n".join(errors_of(farm / "admin.yaml"))
    assert "profiles.web.done: unknown template variable 'client'" in text
    assert "profiles.web.failed: bad value 'archive:/acme-corp/failed': unknown root" in text


def test_duplicate_customer_names_and_shared_incoming_folders(farm):
    """Two files for one customer, or two profiles on one folder, are refused."""
    write(farm, "customers/acme2.yaml", CUSTOMER_YAML)
    write(
        farm,
        "customers/b.yaml",
        """\
        name: B
        profiles:
          one: {subdir: same, targets: {t: {type: identity}}}
          two: {subdir: same, targets: {t: {type: identity}}}
        """,
    )
    text = "\n".join(errors_of(farm / "admin.yaml"))
    assert "acme2.yaml: name: bad value 'ACME Corp': customer name already used" in text
    assert "b.yaml: profiles.two: bad value" in text and "same incoming folder" in text


def test_incoming_folders_that_overlap_across_the_farm_are_refused(farm):
    """Two customers whose names make one subdir; a done folder inside an incoming one."""
    write(farm, "customers/acme-lower.yaml", CUSTOMER_YAML.replace("ACME Corp", "acme corp"))
    text = "\n".join(errors_of(farm / "admin.yaml"))
    assert "profiles.web.incoming" in text
    assert "overlaps the incoming folder default:/acme-corp/files/incoming/web/" in text
    os.unlink(farm / "customers" / "acme-lower.yaml")
    write(
        farm,
        "customers/acme.yaml",
        CUSTOMER_YAML + "    done: 'default:/%(customer)s/files/incoming/%(profile)s/done'\n",
    )
    [problem] = [e for e in errors_of(farm / "admin.yaml") if "overlaps" in e]
    assert "acme.yaml: profiles.web.incoming" in problem
    assert "the done folder default:/acme-corp/files/incoming/web/done/ of ACME Corp/web" in problem


def test_qmaster_profile_needs_qmaster_targets(farm):
    """Backend and target types must agree, and qmaster targets need setting/extension."""
    write(
        farm,
        "customers/q.yaml",
        """\
        name: Q
        profiles:
          mac:
            backend: qmaster
            targets:
              a: {type: audio-video}
              b: {type: qmaster}
        """,
    )
    text = "\n".join(errors_of(farm / "admin.yaml"))
    assert "profiles.mac.targets.b" in text and "needs 'setting'" in text


def test_qmaster_profile_needs_the_qmaster_section(farm):
    """A profile with backend qmaster without a qmaster section in the admin config."""
    write(
        farm,
        "customers/q.yaml",
        """\
        name: Q
        profiles:
          mac:
            backend: qmaster
            targets: {a: {type: qmaster, setting: x.setting, extension: mov}}
        """,
    )
    text = "\n".join(errors_of(farm / "admin.yaml"))
    assert "profiles.mac.backend: bad value 'qmaster'" in text and "qmaster section" in text


def test_distributed_settings_are_checked(farm):
    """Heartbeats too slow for lost-timeout; local workers with a standalone manager."""
    admin = (farm / "admin.yaml").read_text()
    write(
        farm,
        "admin.yaml",
        admin
        + "manager: {connect: 'tcp:manager:7632'}\n"
        + "workers: {local: 2, lost-timeout: 6, heartbeat-interval: 4}\n",
    )
    text = "\n".join(errors_of(farm / "admin.yaml"))
    assert "heartbeat-interval (4 s) must be at most half of lost-timeout (6 s)" in text
    write(
        farm,
        "admin.yaml",
        admin + "manager: {connect: 'tcp:manager:7632'}\nworkers: {local: 2}\n",
    )
    text = "\n".join(errors_of(farm / "admin.yaml"))
    assert "workers.local: bad value 2: local workers need the embedded manager" in text


def test_admin_name_must_be_folder_safe_and_keep_failed_bounded(farm):
    """admin.name prefixes local workers' names (folders); keep-failed is 0…100."""
    admin = (farm / "admin.yaml").read_text()
    write(farm, "admin.yaml", admin + "workers: {keep-failed: -1}\n")
    assert any("workers.keep-failed" in e for e in errors_of(farm / "admin.yaml"))
    text = admin.replace("admin:\n", "admin:\n  name: ../up\n", 1)
    assert text != admin
    write(farm, "admin.yaml", text)
    assert any("admin.name" in e and "../up" in e for e in errors_of(farm / "admin.yaml"))


def test_files_in_endpoints_are_taken_from_the_config_file_s_folder(farm):
    """privateKey=manager.key is beside the config file, wherever the admin is started."""
    admin = (farm / "admin.yaml").read_text()
    write(
        farm,
        "admin.yaml",
        admin
        + "manager: {listen: 'ssl:7632:privateKey=tls/manager.key:certKey=/abs/m.crt', "
        + "connect: 'tls:h:7632:trustRoots=ca'}\n"
        + "workers: {local: 0}\n",
    )
    config = load_configuration(str(farm / "admin.yaml"))
    assert config.admin.manager.listen == (
        f"ssl:7632:privateKey={farm}/tls/manager.key:certKey=/abs/m.crt"
    )
    assert config.admin.manager.connect == f"tls:h:7632:trustRoots={farm}/ca"
    assert config.admin.api.listen == "tcp:7667:interface=127.0.0.1"


def test_customer_errors_are_reported_with_the_admin_file_s(farm):
    """An invalid admin file does not hide the customer files' errors."""
    admin = (farm / "admin.yaml").read_text()
    write(farm, "admin.yaml", admin + "workers: {max-jobs: 0}\n")
    write(farm, "customers/acme.yaml", CUSTOMER_YAML.replace("priority: 5", "priority: 5000"))
    text = "\n".join(errors_of(farm / "admin.yaml"))
    assert "workers.max-jobs" in text and "acme.yaml: priority" in text


def test_check_config_command_exits_0_or_1(farm):
    """`transcoder-admin check-config` prints OK and exits 0, or lists errors and exits 1."""
    cmd = [sys.executable, "-m", "transcoder_admin", "check-config", "--config"]
    ok = subprocess.run([*cmd, str(farm / "admin.yaml")], capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    assert "OK (1 customers, 1 profiles)" in ok.stdout
    write(farm, "customers/acme.yaml", "name: ACME\nprofiles: {web: {targets: {}}}\n")
    bad = subprocess.run([*cmd, str(farm / "admin.yaml")], capture_output=True, text=True)
    assert bad.returncode == 1
    assert "acme.yaml: profiles.web.targets" in bad.stderr
    assert "at least one target" in bad.stderr


def test_check_config_refuses_a_public_api_without_authentication(farm):
    """The API may only listen on loopback while there is no authentication."""
    with open(farm / "admin.yaml", "a") as f:
        f.write("api: {listen: 'tcp:7667:interface=0.0.0.0'}\n")
    cmd = [sys.executable, "-m", "transcoder_admin", "check-config", "--config"]
    bad = subprocess.run([*cmd, str(farm / "admin.yaml")], capture_output=True, text=True)
    assert bad.returncode == 1
    assert "api.listen" in bad.stderr


def test_check_config_reads_the_smtp_trust_roots(farm):
    """notifications.smtp.trust-roots is taken from the config's folder; check-config
    names a file that is missing, holds no certificate or a broken one, and accepts a
    bundle of several authorities or a folder of them."""
    from tests.pki import make_ca

    first, second = make_ca(str(farm / "pki1")), make_ca(str(farm / "pki2"))
    bundle = ""
    for paths in (first, second):
        with open(paths["ca"]) as f:
            bundle += f.read()
    admin = (farm / "admin.yaml").read_text()
    write(farm, "admin.yaml", admin + "notifications: {smtp: {trust-roots: mail-cas.pem}}\n")
    cmd = [sys.executable, "-m", "transcoder_admin", "check-config", "--config"]
    broken = bundle.replace(bundle.splitlines()[3], "A" * len(bundle.splitlines()[3]), 1)
    for text, says in (
        (None, "cannot read"),
        ("not a certificate\n", "holds no PEM certificate"),
        (broken, "certificate 1 cannot be read"),
        (bundle, None),
    ):
        if text is not None:
            write(farm, "mail-cas.pem", text)
        done = subprocess.run([*cmd, str(farm / "admin.yaml")], capture_output=True, text=True)
        if says is None:
            assert done.returncode == 0, done.stderr
            continue
        assert done.returncode == 1
        assert "notifications.smtp.trust-roots" in done.stderr and says in done.stderr
        assert str(farm / "mail-cas.pem") in done.stderr, "the relative path resolved"
    config = load_configuration(str(farm / "admin.yaml"))
    assert config.smtp_settings().trust_roots == str(farm / "mail-cas.pem")
    # A folder of *.pem files, as the PB endpoints' trustRoots= takes.
    write(farm, "admin.yaml", admin + "notifications: {smtp: {trust-roots: pki1/ca}}\n")
    done = subprocess.run([*cmd, str(farm / "admin.yaml")], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    write(farm, "admin.yaml", admin + "notifications: {smtp: {trust-roots: customers}}\n")
    done = subprocess.run([*cmd, str(farm / "admin.yaml")], capture_output=True, text=True)
    assert done.returncode == 1 and "holds no *.pem file" in done.stderr


@pytest.mark.parametrize(
    "listen",
    ["tcp:7632", "tcp:7632:interface=0.0.0.0", "tcp:7632:interface=10.0.0.5", "tcp6:7632"],
)
def test_a_plaintext_manager_other_hosts_reach_is_refused_unless_insecure(farm, listen):
    """Job specs carry commands: plain TCP beyond loopback needs manager.insecure."""
    admin = (farm / "admin.yaml").read_text()
    write(farm, "admin.yaml", admin + f"manager: {{listen: '{listen}'}}\n")
    [problem] = errors_of(farm / "admin.yaml")
    assert "manager" in problem and "plain TCP" in problem and "manager.insecure" in problem
    write(farm, "admin.yaml", admin + f"manager: {{listen: '{listen}', insecure: true}}\n")
    assert load_configuration(str(farm / "admin.yaml")).admin.manager.insecure


def test_an_admin_connecting_to_a_manager_over_unchecked_tls_is_refused(farm):
    """manager.connect on ssl: without caCertsDir: refused, the fix named."""
    admin = (farm / "admin.yaml").read_text()
    write(
        farm, "admin.yaml", admin + "manager: {connect: 'ssl:manager:7632'}\nworkers: {local: 0}\n"
    )
    [problem] = errors_of(farm / "admin.yaml")
    assert "connect" in problem and "checks no certificate" in problem
    write(
        farm, "admin.yaml", admin + "manager: {connect: 'tls:manager:7632'}\nworkers: {local: 0}\n"
    )
    assert load_configuration(str(farm / "admin.yaml")).admin.manager.connect


def test_a_loopback_tls_or_unix_manager_needs_no_insecure(farm):
    """Loopback, UNIX sockets and TLS are accepted as they are."""
    admin = (farm / "admin.yaml").read_text()
    for listen in (
        "tcp:7632:interface=127.0.0.1",
        "tcp6:7632:interface=\\:\\:1",
        "unix:/run/manager.sock",
        "ssl:7632:privateKey=m.key:certKey=m.crt",
    ):
        write(farm, "admin.yaml", admin + f"manager: {{listen: '{listen}'}}\n")
        assert load_configuration(str(farm / "admin.yaml")).admin.manager.listen


def test_shipped_configuration_is_valid():
    """The config in etc/ passes validation."""
    here = os.path.dirname(__file__)
    config = load_configuration(os.path.join(here, "..", "..", "etc", "transcoder-admin.yaml"))
    assert "Example" in config.customers


def test_a_standalone_manager_reads_only_its_sections(tmp_path):
    """manager.yaml needs no roots or customers; the admin's own file works as well."""
    from transcoder_admin.config.alone import load_manager_configuration

    path = write(
        tmp_path,
        "etc/manager.yaml",
        "manager:\n  listen: 'ssl:7632:privateKey=m.key:certKey=m.crt'\n"
        "  credentials: manager.credentials\n",
    )
    config = load_manager_configuration(path)
    etc = tmp_path / "etc"
    assert config.manager.listen == f"ssl:7632:privateKey={etc}/m.key:certKey={etc}/m.crt"
    assert config.manager_credentials() == f"{etc}/manager.credentials"
    write(tmp_path, "admin.yaml", ADMIN_YAML)  # roots, reports: not the manager's
    assert load_manager_configuration(str(tmp_path / "admin.yaml")).manager.credentials is None
    write(tmp_path, "bad.yaml", "manager: {listen: 7}\n")
    with pytest.raises(ConfigError) as info:
        load_manager_configuration(str(tmp_path / "bad.yaml"))
    assert "manager.listen" in info.value.render()


def test_every_client_setting_but_batch_timeout_is_an_admin_config_key(farm):
    """qmaster.{status-grace, local-cluster, check-paths, …} reach the client's settings."""
    from transcoder_admin.qmaster.settings import QmasterSettings

    admin = (farm / "admin.yaml").read_text()
    write(
        farm,
        "admin.yaml",
        admin
        + "qmaster: {status-grace: 30, local-cluster: Mac Pro, check-paths: false, "
        + "cancel-on-timeout: false, destination-suffix: .mp4, cancel-flag: -kill}\n",
    )
    section = load_configuration(str(farm / "admin.yaml")).admin.qmaster
    assert section is not None
    settings = QmasterSettings.from_mapping(section.client_settings())
    assert (settings.status_grace, settings.local_cluster, settings.check_paths) == (
        30,
        "Mac Pro",
        False,
    )
    assert (settings.cancel_on_timeout, settings.destination_suffix, settings.cancel_flag) == (
        False,
        ".mp4",
        "-kill",
    )
    write(farm, "admin.yaml", admin + "qmaster: {batch-timeout: 60}\n")
    assert any("qmaster.batch-timeout" in e for e in errors_of(farm / "admin.yaml"))


def test_endpoint_resolution_leaves_what_is_not_a_relative_file_alone():
    """Abstract Unix sockets, IPv6 interfaces, escapes; '=' in a folder name is escaped."""
    from transcoder_admin.config.endpoints import resolve_endpoint

    assert resolve_endpoint("unix:\x00name:mode=600", "/etc/ta") == "unix:\x00name:mode=600"
    assert resolve_endpoint("tcp6:7632:interface=\\:\\:1", "/e") == "tcp6:7632:interface=\\:\\:1"
    assert resolve_endpoint("unix:sock", "/srv/a=b") == "unix:/srv/a\\=b/sock"
    assert resolve_endpoint("ssl:1:privateKey=~/k.key", "/e") == (
        f"ssl:1:privateKey={os.path.expanduser('~')}/k.key"
    )
    assert resolve_endpoint("systemd:domain=INET:index=0", "/e") == "systemd:domain=INET:index=0"


def test_bitrates_accept_ffmpeg_forms_and_bare_kbits(farm):
    """`2.5M`, `2500k` and `96k` load as kbit/s beside bare numbers (kbit/s as before)."""
    write(
        farm,
        "customers/acme.yaml",
        """\
        name: ACME
        video: {bitrate: 2500k}
        profiles:
          web:
            audio: {bitrate: 128}
            targets:
              high: {type: audio-video, video: {bitrate: 2.5M}, audio: {bitrate: 96k}}
              low: {type: audio-video}
              odd: {type: audio, audio: {bitrate: 64.5k}}
        """,
    )
    from transcoder_admin.context.customers import StoreContext

    profile = StoreContext(load_configuration(str(farm / "admin.yaml"))).customer("ACME")
    targets = {t.name: t.media_spec() for t in profile.profile("web").targets()}
    assert targets["high"]["video"]["bitrate"] == 2500
    assert targets["high"]["audio"]["bitrate"] == 96
    assert targets["low"]["video"]["bitrate"] == 2500  # inherited from the customer
    assert targets["low"]["audio"]["bitrate"] == 128
    assert targets["odd"]["audio"]["bitrate"] == 64.5


def test_ini_bitrates_take_the_same_forms(tmp_path):
    """INI values are text: `2.5M`, `96k` and `128` (kbit/s) load as in YAML."""
    write(tmp_path, "admin.ini", "[roots]\ndefault = media\ntemp = tmp\n")
    write(
        tmp_path,
        "customers/acme.ini",
        """\
        [customer]
        name = ACME
        audio.bitrate = 128
        [profile:web]
        [target:web:high]
        type = audio-video
        video.bitrate = 2.5M
        [target:web:voice]
        type = audio
        audio.bitrate = 96k
        """,
    )
    config = load_configuration(str(tmp_path / "admin.ini"))
    customer = config.customers["ACME"]
    targets = customer.profiles["web"].targets
    assert customer.audio is not None and customer.audio.bitrate == 128
    assert targets["high"].video is not None and targets["high"].video.bitrate == 2500
    assert targets["voice"].audio is not None and targets["voice"].audio.bitrate == 96


def test_bad_bitrates_are_errors_naming_key_value_and_allowed_forms(farm):
    """Unparsable, fractional bare and implausible bitrates are named with the forms."""
    write(
        farm,
        "customers/acme.yaml",
        """\
        name: ACME
        profiles:
          web:
            targets:
              a: {type: audio-video, video: {bitrate: fast}, audio: {bitrate: 128000}}
              b: {type: audio-video, video: {bitrate: 2.5}, audio: {bitrate: 2m}}
              c: {type: video, video: {bitrate: 0k}}
        """,
    )
    problems = errors_of(farm / "admin.yaml")
    acme = str(farm / "customers" / "acme.yaml")
    forms = "(96k, 2500k, 2.5M)"
    expected = {
        "profiles.web.targets.a.video.bitrate: bad value 'fast'": "expected kbit/s",
        "profiles.web.targets.a.audio.bitrate: bad value 128000": "between 1 and 4000 kbit/s",
        "profiles.web.targets.b.video.bitrate: bad value 2.5": "a bare number is whole kbit/s",
        "profiles.web.targets.b.audio.bitrate: bad value '2m'": "expected kbit/s",
        "profiles.web.targets.c.video.bitrate: bad value '0k'": "between 1 and 1000000",
    }
    assert len(problems) == len(expected), problems
    for where, why in expected.items():
        [line] = [p for p in problems if p.startswith(f"{acme}: {where}")]
        assert why in line and forms in line, line


def test_explicit_subdirs_are_used_as_written(farm):
    """A safe explicit subdir names the folder itself; names without one are made safe."""
    write(
        farm,
        "customers/acme.yaml",
        """\
        name: ACME Corp
        subdir: acme_2
        profiles:
          Web HD:
            targets:
              high: {type: audio-video, subdir: v1.hd}
              Low Res: {type: audio-video}
        """,
    )
    from transcoder_admin.context.customers import StoreContext

    profile = StoreContext(load_configuration(str(farm / "admin.yaml"))).customer("ACME Corp")
    web = profile.profile("Web HD")
    assert web.folder("incoming") == "default:/acme_2/files/incoming/web-hd"
    assert [t.subdir for t in web.targets()] == ["v1.hd", "low-res"]


UNSAFE_SUBDIRS = ["../../etc", "a/b", "", ".", "..", "a\x00b", ".hidden", "Web", "x" * 256]


@pytest.mark.parametrize("subdir", UNSAFE_SUBDIRS)
def test_unsafe_subdir_is_an_error_at_every_level(farm, subdir):
    """A subdir that is not one safe folder name is refused for customer, profile, target."""
    import yaml

    customer = {
        "name": "ACME",
        "subdir": subdir,
        "profiles": {
            "web": {"subdir": subdir, "targets": {"high": {"type": "video", "subdir": subdir}}}
        },
    }
    write(farm, "customers/acme.yaml", yaml.safe_dump(customer))
    problems = errors_of(farm / "admin.yaml")
    acme = str(farm / "customers" / "acme.yaml")
    keys = ["subdir", "profiles.web.subdir", "profiles.web.targets.high.subdir"]
    assert len(problems) == 3, problems
    for key, problem in zip(keys, problems, strict=True):
        assert problem.startswith(f"{acme}: {key}: bad value {subdir!r}"), problem
        assert "one folder name: lowercase letters, digits" in problem


def test_unsafe_ini_subdirs_are_errors_in_check_config(tmp_path):
    """INI subdirs are checked alike; check-config lists them with the other errors."""
    write(tmp_path, "admin.ini", "[roots]\ndefault = media\ntemp = tmp\n")
    write(
        tmp_path,
        "customers/acme.ini",
        """\
        [customer]
        name = ACME
        subdir = ../../etc
        priority = 5000
        [profile:web]
        subdir =
        [target:web:high]
        type = video
        subdir = a/b
        """,
    )
    cmd = [sys.executable, "-m", "transcoder_admin", "check-config", "--config"]
    bad = subprocess.run([*cmd, str(tmp_path / "admin.ini")], capture_output=True, text=True)
    assert bad.returncode == 1
    acme = str(tmp_path / "customers" / "acme.ini")
    assert f"{acme}: subdir: bad value '../../etc'" in bad.stderr
    assert f"{acme}: profiles.web.subdir: bad value ''" in bad.stderr
    assert f"{acme}: profiles.web.targets.high.subdir: bad value 'a/b'" in bad.stderr
    assert f"{acme}: priority: bad value '5000'" in bad.stderr
    assert "4 configuration errors" in bad.stderr
