"""HTTP notifications: a GET of the URL, or a POST of a JSON event, with treq.

Every request carries the notification's ``webhook-id`` (the same on every attempt, so
a receiver can drop repeats); a POST with a secret file is signed as the Standard
Webhooks specification says (``webhook-timestamp``, ``webhook-signature``), with the
time of that attempt.  Redirects are not followed.  Success is a 2xx; 408, 429, 5xx,
timeouts and connections that fail are tried again; any other answer gives up.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from standardwebhooks.webhooks import Webhook
from treq.client import HTTPClient
from twisted.internet import defer
from twisted.internet.interfaces import IReactorTime
from twisted.web.client import Agent, HTTPConnectionPool

from ..reactors import IFarmReactor
from .delivery import DeliveryFailed, http_status_retryable

#: The most of an answer's body read (and thrown away) to free the connection.
MAX_ANSWER = 64 * 1024
USER_AGENT = "transcoder-admin notifications"


class HttpSender:
    """Sends HTTP notifications through one pool of persistent connections."""

    def __init__(self, reactor: IFarmReactor, timeout: float) -> None:
        self.reactor = reactor
        self.timeout = timeout
        self._pool = HTTPConnectionPool(reactor, persistent=True)
        self._pool.maxPersistentPerHost = 2
        self._client = HTTPClient(Agent(reactor, pool=self._pool, connectTimeout=timeout))

    async def send(self, ident: str, payload: Mapping[str, Any]) -> None:
        """One attempt; DeliveryFailed says why it failed and whether to try again."""
        body = payload.get("body")
        headers = {
            "User-Agent": USER_AGENT,
            **dict(payload.get("headers") or {}),
            "webhook-id": ident,
        }
        if body is not None:
            headers["Content-Type"] = "application/json"
        secret_file = payload.get("secret_file")
        if secret_file:
            headers.update(signature(ident, body or "", read_secret(secret_file), self.reactor))
        request = self._client.request(
            payload["method"],
            payload["url"],
            headers={k: [v] for k, v in headers.items()},
            data=body.encode() if body is not None else None,
            allow_redirects=False,
        )
        request.addTimeout(self.timeout, self.reactor)
        try:
            response = await request
            code = response.code
            answer = response.content()
            answer.addTimeout(self.timeout, self.reactor)
            await answer.addErrback(lambda _f: b"")
        except defer.TimeoutError:
            raise DeliveryFailed(f"no answer within {self.timeout:g} s", True) from None
        except DeliveryFailed:
            raise
        except Exception as e:
            raise DeliveryFailed(_describe(e), True) from None
        retryable = http_status_retryable(code)
        if retryable is not None:
            raise DeliveryFailed(f"HTTP {code} {_phrase(response)}".strip(), retryable)

    async def close(self) -> None:
        """Close the idle connections."""
        await self._pool.closeCachedConnections()


def read_secret(path: str) -> bytes:
    """A signing secret: ``whsec_`` and base64 (the Standard Webhooks form), or raw text.

    Raise DeliveryFailed (not retried) when the file cannot be read or is empty.
    """
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read().strip()
    except OSError as e:
        raise DeliveryFailed(f"cannot read the secret file {path}: {e.strerror}", False) from None
    if not text:
        raise DeliveryFailed(f"the secret file {path} is empty", False)
    if text.startswith("whsec_"):
        try:
            return base64.b64decode(text[len("whsec_") :] + "==")
        except binascii.Error:
            raise DeliveryFailed(
                f"the secret in {path} is not base64 after whsec_", False
            ) from None
    return text.encode()


def signature(ident: str, body: str, secret: bytes, clock: IReactorTime) -> dict[str, str]:
    """The Standard Webhooks headers of one attempt."""
    now = datetime.fromtimestamp(int(clock.seconds()), UTC)
    return {
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": Webhook(secret).sign(ident, now, body),
    }


def _describe(e: BaseException) -> str:
    text = str(e) or type(e).__name__
    # treq wraps connection errors in a list of failures: say the first.
    reasons = getattr(e, "reasons", None)
    if reasons:
        text = reasons[0].getErrorMessage()
    return " ".join(text.split())[:300]


def _phrase(response: Any) -> str:
    phrase = getattr(response, "phrase", b"")
    return phrase.decode("latin-1", "replace") if isinstance(phrase, bytes) else str(phrase)


__all__ = ["HttpSender", "read_secret", "signature"]
