"""Lean processes: what a worker and the admin load, checked by importing (never by timing).

A local worker runs ``transcoder-admin worker``: the command line, the worker's daemon and
everything a job uses.  It must not load the admin's database (SQLAlchemy, Alembic), its
configuration models (pydantic), the API, notifications or metrics, nor PyAV: ffmpeg
describes the files it probes.  The admin never loads the probe at all.
"""

from __future__ import annotations

import json
import subprocess
import sys

#: What ``transcoder-admin worker`` imports before its first job.
WORKER_MODULES = (
    "transcoder_admin.cli",
    "transcoder_admin.worker.command",
    "transcoder_admin.worker.daemon",
    "transcoder_admin.logs",
    "transcoder_admin.context.paths",
)
WORKER_FORBIDDEN = (
    "sqlalchemy",
    "alembic",
    "psycopg2",
    "pydantic",
    "treq",
    "prometheus_client",
    "standardwebhooks",
    "av",
    "transcoder_admin.api",
    "transcoder_admin.admin",
    "transcoder_admin.config.model",
    "transcoder_admin.config.loader",
    "transcoder_admin.context.customers",
    "transcoder_admin.notify",
    "transcoder_admin.reports.db",
    "transcoder_admin.scheduler",
    "transcoder_admin.metrics",
)
ADMIN_MODULES = (
    "transcoder_admin.cli",
    "transcoder_admin.admin",
    "transcoder_admin.parts",
    "transcoder_admin.api",
    "transcoder_admin.api.resources",
    "transcoder_admin.notify",
    "transcoder_admin.operations",
)


def loaded_after(modules: tuple[str, ...], first: str = "") -> set[str]:
    """Every module a fresh interpreter holds after running ``first`` (Python code) and
    importing ``modules``."""
    code = (
        "import importlib, json, sys\n"
        f"{first}\n"
        f"for name in {list(modules)!r}:\n"
        "    importlib.import_module(name)\n"
        "print(json.dumps(sorted(k for k, v in sys.modules.items() if v is not None)))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    return set(json.loads(out.stdout))


def pulled_in(loaded: set[str], forbidden: tuple[str, ...]) -> list[str]:
    """The forbidden packages (or their submodules) among ``loaded``."""
    return sorted(f for f in forbidden if any(m == f or m.startswith(f + ".") for m in loaded))


def test_a_worker_loads_nothing_of_the_admin_and_no_pyav():
    """The worker command, its daemon and its jobs' modules: none of the admin's packages."""
    loaded = loaded_after(WORKER_MODULES)
    assert "transcoder_admin.job.job" in loaded  # the check sees what a job needs
    assert pulled_in(loaded, WORKER_FORBIDDEN) == []


def test_a_worker_on_a_plain_link_loads_no_tls_library():
    """A worker whose manager endpoint is plain TCP keeps pyOpenSSL and cryptography out,
    even through Twisted's TCP transport; without that step they would be there."""
    start = (
        "from transcoder_admin.worker.command import keep_tls_out, is_plain\n"
        "assert is_plain('tcp:host=127.0.0.1:port=7632') and not is_plain('tls:h:1')\n"
        "keep_tls_out()\n"
        "import twisted.internet.tcp, twisted.internet.endpoints"
    )
    assert pulled_in(loaded_after(WORKER_MODULES, start), ("OpenSSL", "cryptography")) == []
    plain = loaded_after(("twisted.internet.tcp",))
    assert pulled_in(plain, ("OpenSSL",)) == ["OpenSSL"]  # what the step avoids


def test_a_worker_probing_media_and_not_media_loads_no_pyav(tmp_path):
    """A probe runs ffmpeg: it describes a real clip and refuses a text file, and the
    process that asked has not loaded PyAV (which would hold about 24 MiB of it)."""
    from tests.clips import make_clip

    clip = make_clip(str(tmp_path / "clip.mp4"), duration=1.0)
    text = tmp_path / "notes.txt"
    text.write_text("not a video\n" * 20)
    code = (
        "import sys\n"
        "from transcoder_admin.media.probe import NotMediaError, probe\n"
        f"info = probe({clip!r})\n"
        "try:\n"
        f"    probe({str(text)!r})\n"
        "except NotMediaError as e:\n"
        "    print(info.video.codec, info.audio.codec, 'av' in sys.modules, e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.startswith("h264 aac False not a media file"), out.stderr


def test_the_admin_never_loads_pyav():
    """The admin's service tree, API and notifications: no PyAV (workers probe)."""
    loaded = loaded_after(ADMIN_MODULES)
    assert "transcoder_admin.scheduler" in loaded
    assert pulled_in(loaded, ("av", "transcoder_admin.media.probe", "transcoder_admin.job")) == []
