"""File paths inside Twisted endpoint strings, taken from the config file's folder.

``ssl:7632:privateKey=manager.key:certKey=manager.crt`` names files; Twisted opens them
relative to the process's working directory, which under systemd is ``/``.  Like every
other relative path in a config file, they are made absolute against the file's folder
when the configuration is loaded.
"""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import quote

if TYPE_CHECKING:
    from twisted.python.failure import Failure

#: Arguments of Twisted's ssl, tls and unix endpoints that name files or folders.
FILE_ARGUMENTS = frozenset(
    {
        "privateKey",
        "certKey",
        "extraCertChain",
        "dhParameters",
        "caCertsDir",
        "trustRoots",
        "clientCertificate",
        "path",
        "address",
    }
)
#: Endpoint types whose first positional argument is a file (a Unix socket).
_POSITIONAL_FILE = frozenset({"unix"})


def _split(description: str) -> list[str]:
    """Split on the colons that are not escaped with a backslash (escapes kept)."""
    parts, current, escaped = [], [], False
    for char in description:
        if escaped:
            current.append(char)
            escaped = False
        elif char == "\\":
            current.append(char)
            escaped = True
        elif char == ":":
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return parts


def _unescape(value: str) -> str:
    out, escaped = [], False
    for char in value:
        if escaped or char != "\\":
            out.append(char)
            escaped = False
        else:
            escaped = True
    return "".join(out)


def _absolute(value: str, base_dir: str, positional: bool = False) -> str:
    raw = _unescape(value)
    if not raw or raw.startswith("\0"):
        return value  # empty, or a Unix socket in the abstract namespace
    path = os.path.expanduser(raw)
    if path == raw and os.path.isabs(path):
        return value
    # Imported here, as Twisted's endpoints below: importing them loads its TCP transport,
    # and a worker decides first whether that may load pyOpenSSL (worker.command).
    from twisted.internet.endpoints import quoteStringArgument

    quoted = quoteStringArgument(os.path.normpath(os.path.join(base_dir, path)))
    # A positional argument with "=" would read as key=value.
    return quoted.replace("=", "\\=") if positional else quoted


def resolve_endpoint(description: str, base_dir: str) -> str:
    """``description`` with its relative file arguments made absolute against ``base_dir``."""
    parts = _split(description)
    kind = parts[0].strip().lower()
    out = [parts[0]]
    for index, part in enumerate(parts[1:], 1):
        key, sep, value = part.partition("=")
        if sep and key in FILE_ARGUMENTS:
            part = f"{key}={_absolute(value, base_dir)}"
        elif not sep and index == 1 and kind in _POSITIONAL_FILE:
            part = _absolute(part, base_dir, positional=True)
        out.append(part)
    return ":".join(out)


def is_loopback(interface: str) -> bool:
    """Whether a listening interface reaches this host only."""
    if interface.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(interface).is_loopback
    except ValueError:
        return False


def bound_interfaces(endpoint: str) -> list[str] | None:
    """The interfaces a server endpoint string binds (``""``: every one), ``None`` for a
    UNIX socket; ValueError if Twisted cannot listen on it.

    The string is parsed by Twisted itself, against a memory reactor (nothing listens),
    so this is the interface Twisted would really bind.  Parsing an ``ssl:`` endpoint
    reads its key and certificate files.
    """
    from twisted.internet.endpoints import serverFromString
    from twisted.internet.protocol import Factory
    from twisted.internet.testing import MemoryReactor  # the checks' only, not the workers'

    reactor = MemoryReactor()
    failures: list[Failure] = []
    try:
        listening = serverFromString(reactor, endpoint).listen(Factory())
    except Exception as error:
        raise ValueError(f"{endpoint!r} is not a valid endpoint: {error}") from error
    listening.addErrback(failures.append)
    if failures:
        raise ValueError(f"{endpoint!r} cannot listen: {failures[0].value}")
    if reactor.unixServers:
        return None
    interfaces = [server[3] for server in reactor.tcpServers]
    return interfaces + [server[4] for server in reactor.sslServers]


@dataclass(frozen=True)
class Reach:
    """How a client on this host reaches a server endpoint: a URL's scheme, host and
    port, or a UNIX socket's path."""

    scheme: str
    host: str = ""
    port: int = 0
    unix: str | None = None

    @property
    def url(self) -> str:
        """Its root URL (for a UNIX socket: ``http+unix://`` and the quoted path)."""
        if self.unix is not None:
            return f"http+unix://{quote(self.unix, safe='')}/"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}/"


def reach(endpoint: str) -> Reach:
    """How to reach a ``tcp:``, ``tcp6:``, ``ssl:`` or ``unix:`` server endpoint from this
    host (every interface: through loopback); ValueError for any other kind."""
    kind, *parts = _split(endpoint)
    kind = kind.strip().lower()
    positional = [_unescape(p) for p in parts if "=" not in p.replace("\\=", "")]
    named = dict(
        (key, _unescape(value))
        for key, _, value in (p.partition("=") for p in parts if p not in positional)
    )
    if kind == "unix":
        path = named.get("address") or (positional[0] if positional else "")
        if not path:
            raise ValueError(f"{endpoint!r} names no socket")
        return Reach("http", unix=path)
    if kind not in ("tcp", "tcp6", "ssl"):
        raise ValueError(f"{endpoint!r}: only tcp:, tcp6:, ssl: and unix: can be reached")
    try:
        port = int(named.get("port") or positional[0])
    except (IndexError, ValueError):
        raise ValueError(f"{endpoint!r} names no port") from None
    interface = named.get("interface", "")
    if interface in ("", "0.0.0.0", "::"):
        interface = "::1" if kind == "tcp6" or interface == "::" else "127.0.0.1"
    return Reach("https" if kind == "ssl" else "http", interface, port)


#: Client endpoint kinds that never speak TLS.
PLAIN_KINDS = ("tcp", "tcp6", "unix")


def is_plain(endpoint: str) -> bool:
    """Whether a client endpoint string is plain TCP or a UNIX socket (no TLS, ever)."""
    return _split(endpoint)[0].strip().lower() in PLAIN_KINDS


def unverified_tls(endpoint: str) -> str | None:
    """Why a client endpoint string would speak TLS without checking the server, or None.

    Twisted's ``ssl:`` client endpoint verifies nothing unless it is given
    ``caCertsDir``; its ``tls:`` endpoint always verifies (the system's roots, or
    ``trustRoots``).  A worker that trusted any server would run the job specs, commands
    included, of whoever answered.
    """
    parts = _split(endpoint)
    if parts[0].strip().lower() != "ssl":
        return None
    if any(part.partition("=")[0] == "caCertsDir" for part in parts[1:]):
        return None
    return (
        f"{endpoint!r} checks no certificate: use tls:HOST:PORT:trustRoots=CA_FOLDER "
        "(or add caCertsDir=CA_FOLDER to the ssl: endpoint)"
    )


__all__ = [
    "FILE_ARGUMENTS",
    "bound_interfaces",
    "is_loopback",
    "resolve_endpoint",
    "unverified_tls",
]
