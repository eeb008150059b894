"""The small environment every command of a job runs in (ffmpeg, post-process, diagnose)."""

from __future__ import annotations

import os
from collections.abc import Mapping

#: What ffmpeg and post-process commands get of the daemon's environment (nothing else:
#: no credentials, proxies or library paths the daemon was started with).
COMMAND_ENVIRONMENT_KEYS = ("PATH", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR", "HOME")
#: Always set: SVT-AV1 otherwise logs banners to stderr.
COMMAND_ENVIRONMENT_DEFAULTS = {"PATH": "/usr/local/bin:/usr/bin:/bin", "SVT_LOG": "1"}


def command_environment(base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The small environment commands run in: ``COMMAND_ENVIRONMENT_KEYS`` taken from
    ``base`` (the daemon's own by default), ``COMMAND_ENVIRONMENT_DEFAULTS`` otherwise."""
    source = os.environ if base is None else base
    env = {key: source[key] for key in COMMAND_ENVIRONMENT_KEYS if key in source}
    for key, value in COMMAND_ENVIRONMENT_DEFAULTS.items():
        env.setdefault(key, value)
    return env
