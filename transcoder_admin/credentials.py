"""Credentials files: one ``name:password`` per line, ``#`` comments, blank lines.

The manager reads every worker's line (and ``admin``'s, for a remote admin); a worker
reads its own.  PB logs in by challenge and response, so the secret never crosses the
wire, but the file holds it in the clear: keep it mode 0600.  Secrets are never logged.
"""

from __future__ import annotations

import os
import re
import secrets
import stat

#: The user name a remote admin logs in to a standalone manager with.
ADMIN_USER = "admin"
#: A worker's name: its login, and a folder name (failed jobs kept under .failed/NAME).
WORKER_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,63}")


class CredentialsError(Exception):
    """A credentials file is missing, unreadable or malformed (names file and line)."""


def load_credentials(path: str) -> dict[str, bytes]:
    """Every ``name:password`` of a credentials file."""
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except OSError as e:
        raise CredentialsError(f"{path}: cannot read the credentials file: {e.strerror}") from e
    except UnicodeDecodeError as e:
        raise CredentialsError(f"{path}: not UTF-8 text") from e
    users: dict[str, bytes] = {}
    for number, line in enumerate(lines, 1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        name, sep, password = text.partition(":")
        name = name.strip()
        if not sep or not name or not password:
            raise CredentialsError(f"{path}, line {number}: expected name:password")
        if name in users:
            raise CredentialsError(f"{path}, line {number}: {name!r} is listed twice")
        users[name] = password.encode()
    if not users:
        raise CredentialsError(f"{path}: no name:password line")
    return users


def read_secret_file(path: str, name: str) -> bytes:
    """The password of ``name`` in a credentials file (a worker's own file)."""
    users = load_credentials(path)
    if name not in users:
        if len(users) == 1:
            return next(iter(users.values()))
        raise CredentialsError(f"{path}: no line for {name!r}")
    return users[name]


def group_or_world_readable(path: str) -> bool:
    """Whether others than the owner may read the file (worth a warning)."""
    try:
        return bool(os.stat(path).st_mode & (stat.S_IRWXG | stat.S_IRWXO))
    except OSError:
        return False


def local_secret(folder: str) -> bytes:
    """The secret the admin and its local workers share, kept in ``folder`` (0600).

    Made once, so workers that outlive an admin crash log in again after its restart.
    """
    os.makedirs(folder, mode=0o700, exist_ok=True)
    path = os.path.join(folder, "secret")
    try:
        with open(path, "rb") as f:
            value = f.read().strip()
        if value:
            return value
    except FileNotFoundError:
        pass
    value = secrets.token_hex(24).encode()
    fd = os.open(path + ".tmp", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(value)
    os.replace(path + ".tmp", path)
    return value
