"""``transcoder-admin status``: the farm at a glance, on a terminal, from the admin's API.

A client of the JSON API, as the dashboard is: health, state and counts, the workers and
their slots, the running jobs with progress and ETA, the head of the queue, the latest
failed files with their reasons and the notifications that gave up.  The API's address
comes from ``api.listen`` of ``--config`` (an admin listening on every interface is
asked through loopback), or from ``--url``; the token from ``--token-file`` or the
environment variable ``TRANSCODER_ADMIN_TOKEN`` (never printed).

Exit status: 0 when the admin says it is healthy, 1 when it is degraded (a check failed,
or a file is stuck), 2 when it cannot be asked (not running, refused, a bad answer):
fit for a monitoring check as well as for an operator woken at night.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import ssl
import sys
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from .config.endpoints import Reach, reach
from .logs import printable

HEALTHY, DEGRADED, UNREACHABLE = 0, 1, 2
TOKEN_VARIABLE = "TRANSCODER_ADMIN_TOKEN"
#: How many queued, failed and failing entries are listed.
SHOWN = 5
#: An answer larger than this is not the API's.
MAX_ANSWER_BYTES = 8 * 1024 * 1024


class Unanswered(Exception):
    """The API could not be asked, or refused; ``str(e)`` says why and what to do."""


class _UnixConnection(http.client.HTTPConnection):
    """HTTP over a UNIX socket (``api.listen: unix:PATH``)."""

    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self.path = path

    def connect(self) -> None:  # noqa: D102
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self.path)
        except OSError:
            sock.close()
            raise
        self.sock = sock


class APIClient:
    """Asks one admin's API, one GET at a time (blocking: a command, not the reactor)."""

    def __init__(
        self,
        where: Reach,
        token: str | None = None,
        ca_file: str | None = None,
        timeout: float = 10.0,
    ) -> None:
        self.where, self.token, self.timeout = where, token, timeout
        self.ca_file = ca_file

    def _connection(self) -> http.client.HTTPConnection:
        where = self.where
        if where.unix is not None:
            return _UnixConnection(where.unix, self.timeout)
        if where.scheme == "https":
            context = ssl.create_default_context(cafile=self.ca_file)
            return http.client.HTTPSConnection(
                where.host, where.port, timeout=self.timeout, context=context
            )
        return http.client.HTTPConnection(where.host, where.port, timeout=self.timeout)

    def get(self, path: str) -> Any:
        """The JSON answer of ``GET /api/v1/<path>``; Unanswered says why there is none."""
        headers = {"Accept": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        connection = self._connection()
        url = self.where.url
        try:
            connection.request("GET", f"/api/v1/{path}", headers=headers)
            response = connection.getresponse()
            body = response.read(MAX_ANSWER_BYTES + 1)
        except ssl.SSLError as e:
            raise Unanswered(
                f"{url}: TLS: {e.reason or e} (give the API's CA with --ca-file, "
                "or the name its certificate carries with --url)"
            ) from None
        except (OSError, http.client.HTTPException) as e:
            why = (
                e.strerror if isinstance(e, OSError) and e.strerror else str(e) or type(e).__name__
            )
            raise Unanswered(f"{url}: cannot ask the admin: {why} (is it running?)") from None
        finally:
            connection.close()
        try:
            answer = json.loads(body) if len(body) <= MAX_ANSWER_BYTES else None
        except ValueError:
            answer = None
        if response.status == 401 and self.token:
            message = _error_message(answer) or "the token was refused"
            raise Unanswered(f"{url}: {printable(message)} (token add, or token list on the admin)")
        if response.status == 401:
            raise Unanswered(
                f"{url}: this API needs a token: give --token-file PATH or set "
                f"{TOKEN_VARIABLE} (transcoder-admin token add NAME --role read)"
            )
        if response.status != 200 or not isinstance(answer, dict):
            message = _error_message(answer) or f"HTTP {response.status} {response.reason}"
            raise Unanswered(f"{url}api/v1/{path}: {printable(message)}")
        return answer


def _error_message(answer: Any) -> str | None:
    error = answer.get("error") if isinstance(answer, dict) else None
    return str(error.get("message")) if isinstance(error, dict) else None


#: What ``status`` asks, by name in its JSON output.
QUESTIONS = {
    "status": "status",
    "workers": "workers",
    "tasks": "tasks",
    "queue": f"queue?limit={SHOWN}",
    "failed": f"reports?outcome=failed&limit={SHOWN}",
    "notifications": f"notifications?state=failed&limit={SHOWN}",
}


def snapshot(client: APIClient) -> dict[str, Any]:
    """Everything ``status`` shows, as the API answered it."""
    found = {"health": client.get("health")}
    for name, path in QUESTIONS.items():
        found[name] = client.get(path)
    return found


def verdict(found: Mapping[str, Any]) -> int:
    """HEALTHY, or DEGRADED when a health check failed or a file is stuck."""
    if found["health"].get("status") != "ok":
        return DEGRADED
    files = found["status"].get("files") or {}
    return DEGRADED if files.get("stuck") else HEALTHY


def render(found: Mapping[str, Any], url: str) -> str:
    """The snapshot as text for a terminal (every value from the farm made printable:
    a file name cannot move the cursor or colour the screen)."""
    lines: list[str] = []
    out = lines.append
    health, status = found["health"], found["status"]
    checks = ", ".join(f"{k} {v}" for k, v in sorted((health.get("checks") or {}).items()))
    out(
        f"admin at {url}: {status.get('state')}, {health.get('status')}"
        + (f" ({checks})" if checks else "")
        + f", up {_duration(status.get('uptime'))}, version {status.get('version', '?')}"
    )
    files = status.get("files") or {}
    counts = " · ".join(
        f"{files.get(k, 0)} {k}"
        for k in ("pending", "queued", "transcoding", "done", "failed", "stuck")
    )
    out(f"files: {counts}")
    out(
        f"slots: {status.get('free_slots', 0)} of {status.get('capacity', 0)} free; "
        f"report rows waiting: {status.get('reports_pending', 0)}"
    )
    _section(lines, "workers", found["workers"], _worker, "no worker")
    _section(lines, "running", found["tasks"], _task, "nothing is transcoding")
    _section(lines, "queued", found["queue"], _queued, "the queue is empty")
    _section(lines, "latest failed", found["failed"], _failed, "no file failed")
    _section(lines, "notifications that gave up", found["notifications"], _notification, "none")
    return "\n".join(printable(line) for line in lines) + "\n"


def _section(
    lines: list[str],
    title: str,
    page: Mapping[str, Any],
    line: Callable[[Mapping[str, Any]], str],
    empty: str,
) -> None:
    items = page.get("items") or []
    total = page.get("total", len(items))
    more = f", {total - len(items)} more" if total > len(items) else ""
    lines.append(f"{title} ({total}{more}):" if items else f"{title}: {empty}")
    lines.extend(f"  {line(item)}" for item in items)


def _file(item: Mapping[str, Any]) -> str:
    relpath = item.get("relpath", item.get("relative_path"))
    return f"{item.get('customer')} / {item.get('profile')} / {relpath}"


def _worker(item: Mapping[str, Any]) -> str:
    return (
        f"{item.get('name')}  {item.get('state')}  {item.get('load', 0)}/"
        f"{item.get('max_jobs', 0)} slots  {item.get('host') or ''}".rstrip()
    )


def _task(item: Mapping[str, Any]) -> str:
    progress = item.get("progress") or {}
    facts = [_file(item)]
    if progress.get("percent") is not None:
        facts.append(f"{progress['percent']:.0f} %")
    if progress.get("speed") is not None:
        facts.append(f"{progress['speed']:.1f}×")
    if progress.get("eta") is not None:
        facts.append(f"ETA {_duration(progress['eta'])}")
    facts.append(f"on {item.get('worker') or '(waiting for a worker)'}")
    facts.append(f"attempt {item.get('attempt')}")
    if item.get("cancelled_by"):
        facts.append(f"cancelled by {item['cancelled_by']}")
    return "  ".join(facts)


def _queued(item: Mapping[str, Any]) -> str:
    return f"{_file(item)}  priority {item.get('priority')}"


def _failed(item: Mapping[str, Any]) -> str:
    kind = " · ".join(str(k) for k in (item.get("failure_kind"), item.get("verdict")) if k)
    return (
        f"{_clock(item.get('finish_time'))}  {_file(item)}: {item.get('failure_reason') or '?'}"
        + (f" ({kind})" if kind else "")
        + f"  job {item.get('job_id')}"
    )


def _notification(item: Mapping[str, Any]) -> str:
    file = _file(item) if item.get("relpath") else item.get("trigger")
    return f"{item.get('kind')} to {item.get('destination')} for {file}: {item.get('last_error')}"


def _duration(seconds: Any) -> str:
    if not isinstance(seconds, int | float):
        return "?"
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"


def _clock(value: Any) -> str:
    try:
        return datetime.fromisoformat(str(value)).astimezone().strftime("%Y-%m-%d %H:%M:%S")
    except ValueError:
        return str(value)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``status``'s options (``--config`` is the common one)."""
    parser.add_argument("--url", help="the API's root URL (default: from api.listen of --config)")
    parser.add_argument(
        "--token-file", help=f"a file holding an API token (default: ${TOKEN_VARIABLE})"
    )
    parser.add_argument(
        "--ca-file", help="PEM file of the CA that signed an https API's certificate"
    )
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds per request")
    parser.add_argument(
        "--json", action="store_true", help="print the answers as one JSON document"
    )


def _where(args: argparse.Namespace, listen: Callable[[], str | None]) -> Reach:
    if args.url:
        parts = urlsplit(args.url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise Unanswered(f"--url {args.url!r}: give http://HOST:PORT/ or https://HOST:PORT/")
        try:
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError:
            raise Unanswered(f"--url {args.url!r}: the port is not a number in 1-65535") from None
        return Reach(parts.scheme, parts.hostname, port)
    endpoint = listen()
    if endpoint is None:
        raise Unanswered("the admin's API is disabled (api.enabled: false)")
    try:
        return reach(endpoint)
    except ValueError as e:
        raise Unanswered(f"api.listen: {e}; give --url") from None


def _token(args: argparse.Namespace) -> str | None:
    if not args.token_file:
        where, token = TOKEN_VARIABLE, (os.environ.get(TOKEN_VARIABLE) or "").strip()
        if not token:
            return None
    else:
        where = f"--token-file {args.token_file}"
        try:
            with open(args.token_file, encoding="utf-8", errors="replace") as f:
                token = f.read(4096).strip()
        except OSError as e:
            raise Unanswered(f"{where}: {e.strerror}") from None
        if not token:
            raise Unanswered(f"{where} is empty")
    if not all(" " < c < "\x7f" for c in token):
        raise Unanswered(f"{where} holds something that is not a token (one line, no spaces)")
    return token


def run(args: argparse.Namespace, listen: Callable[[], str | None]) -> int:
    """``transcoder-admin status``: print the snapshot; HEALTHY, DEGRADED or UNREACHABLE."""
    try:
        where = _where(args, listen)
        client = APIClient(where, _token(args), args.ca_file, args.timeout)
        found = snapshot(client)
    except Unanswered as e:
        print(f"status: {e}", file=sys.stderr)
        return UNREACHABLE
    text = (
        json.dumps(found, indent=2, ensure_ascii=True) + "\n"
        if args.json
        else render(found, where.url)
    )
    try:
        sys.stdout.write(text)
        sys.stdout.flush()
    except BrokenPipeError:  # `status | head`: the reader has what it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return verdict(found)


__all__ = ["APIClient", "Unanswered", "add_arguments", "render", "run", "snapshot", "verdict"]
