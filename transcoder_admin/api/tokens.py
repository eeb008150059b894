"""API tokens: a file of names, roles and SHA-256 hashes; the tokens themselves are never kept.

``transcoder-admin token add`` makes a token of 256 random bits, prints it once and
stores only its hash, so a copy of the file (or of a backup) lets no one in.  A hash
of a random token of that length needs no salt nor a slow hash: no guess comes near
it.  The file is YAML, written whole to a temporary file beside it and renamed, mode
0600, and looks like::

    # API tokens of transcoder-admin (managed with `transcoder-admin token`)
    tokens:
    - name: ops
      role: admin
      sha256: 3f0c…
      created: '2026-12-03T20:15:00+00:00'
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
import tempfile
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import yaml

Role = Literal["read", "admin"]
ROLES: tuple[Role, ...] = ("read", "admin")
#: What starts every token, so that a leaked one is easy to recognise in a scan.
PREFIX = "ta_"
_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._@-]{0,63}$")
_DIGEST = re.compile(r"^[0-9a-f]{64}$")
_HEADER = "# API tokens of transcoder-admin (managed with `transcoder-admin token`)\n"


class TokenFileError(Exception):
    """The tokens file cannot be read, or a change to it is refused; the message says why."""


@dataclass(frozen=True)
class Token:
    """One token's entry: who holds it, what it may do, the hash of the secret."""

    name: str
    role: Role
    sha256: str
    created: str


def digest(secret: str) -> str:
    """The hex SHA-256 of a presented token."""
    return hashlib.sha256(secret.encode("utf-8", "surrogateescape")).hexdigest()


class Tokens:
    """The tokens of one file, looked up by the hash of what a client presents."""

    def __init__(self, entries: list[Token]) -> None:
        self.entries = list(entries)
        self._by_digest = {entry.sha256: entry for entry in entries}

    def __len__(self) -> int:
        return len(self.entries)

    def holder(self, secret: str) -> Token | None:
        """The entry of this token, or ``None`` for a token the file does not hold."""
        wanted = digest(secret)
        entry = self._by_digest.get(wanted)
        if entry is None or not hmac.compare_digest(entry.sha256, wanted):
            return None
        return entry


def _entry(path: str, index: int, raw: Any) -> Token:
    """One entry of the file, checked."""
    where = f"{path}: tokens[{index}]"
    if not isinstance(raw, dict):
        raise TokenFileError(f"{where}: expected a mapping with name, role and sha256")
    name, role, sha = raw.get("name"), raw.get("role"), raw.get("sha256")
    if not isinstance(name, str) or not _NAME.match(name):
        raise TokenFileError(f"{where}: name {name!r} is not a token name")
    if role not in ROLES:
        raise TokenFileError(f"{where} ({name}): role {role!r} is not one of read, admin")
    if not isinstance(sha, str) or not _DIGEST.match(sha):
        raise TokenFileError(f"{where} ({name}): sha256 is not 64 hex digits")
    return Token(name, role, sha, str(raw.get("created") or ""))


def read_tokens(path: str, *, missing_ok: bool = False) -> Tokens:
    """The tokens in ``path``; TokenFileError names the file and the problem."""
    try:
        with open(path, encoding="utf-8") as f:
            data = yaml.safe_load(f)
    except FileNotFoundError:
        if missing_ok:
            return Tokens([])
        raise TokenFileError(
            f"{path}: no such tokens file (create one with `transcoder-admin token add`)"
        ) from None
    except OSError as error:
        raise TokenFileError(f"{path}: cannot read: {error.strerror or error}") from None
    except (yaml.YAMLError, UnicodeDecodeError) as error:
        raise TokenFileError(f"{path}: not a tokens file: {error}") from None
    if data is None:
        return Tokens([])
    if not isinstance(data, dict) or not isinstance(data.get("tokens", []), list):
        raise TokenFileError(f"{path}: expected a mapping with a list 'tokens'")
    entries = [_entry(path, i, raw) for i, raw in enumerate(data.get("tokens") or [])]
    names = [entry.name for entry in entries]
    doubled = sorted({name for name in names if names.count(name) > 1})
    if doubled:
        raise TokenFileError(f"{path}: token names used twice: {', '.join(doubled)}")
    return Tokens(entries)


def _write(path: str, tokens: Tokens) -> None:
    """Replace the file with these entries, atomically, readable by its owner only."""
    folder = os.path.dirname(os.path.abspath(path))
    text = _HEADER + yaml.safe_dump(
        {"tokens": [asdict(entry) for entry in tokens.entries]}, sort_keys=False
    )
    fd, temporary = tempfile.mkstemp(prefix=".tokens-", dir=folder)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(temporary, 0o600)
        os.replace(temporary, path)
    except BaseException:
        if os.path.lexists(temporary):
            os.unlink(temporary)
        raise


def add_token(path: str, name: str, role: str) -> str:
    """Make a token for ``name`` with ``role``, store its hash in ``path``; return the token."""
    if not _NAME.match(name):
        raise TokenFileError(
            f"token name {name!r}: use 1 to 64 letters, digits and . _ @ - (not first)"
        )
    if role not in ROLES:
        raise TokenFileError(f"role {role!r} is not one of read, admin")
    tokens = read_tokens(path, missing_ok=True)
    if any(entry.name == name for entry in tokens.entries):
        raise TokenFileError(f"{path}: a token named {name!r} exists; revoke it first")
    secret = PREFIX + secrets.token_urlsafe(32)
    created = datetime.now(UTC).replace(microsecond=0).isoformat()
    entry = Token(name, role, digest(secret), created)  # type: ignore[arg-type]
    _write(path, Tokens([*tokens.entries, entry]))
    return secret


def revoke_token(path: str, name: str) -> None:
    """Remove the token named ``name`` from ``path``."""
    tokens = read_tokens(path)
    kept = [entry for entry in tokens.entries if entry.name != name]
    if len(kept) == len(tokens.entries):
        raise TokenFileError(f"{path}: no token named {name!r}")
    _write(path, Tokens(kept))
