"""What an attempt to deliver a notification can end with, and when to try again."""

from __future__ import annotations

import random


class DeliveryFailed(Exception):
    """An attempt failed; ``retryable`` says whether another one may succeed."""

    def __init__(self, reason: str, retryable: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retryable = retryable


def retry_delay(attempts: int, first: float, most: float, jitter: float | None = None) -> float:
    """The wait after the ``attempts``-th failed attempt: doubling from ``first`` up to
    ``most``, then jittered down by up to half (so a farm's many notifications to one
    dead endpoint do not all come back at once)."""
    delay = min(most, first * 2 ** max(0, attempts - 1))
    return delay * (jitter if jitter is not None else random.uniform(0.5, 1.0))


def http_status_retryable(code: int) -> bool | None:
    """None for success (2xx); whether a failed status is worth another attempt.

    Request timeout (408), too many requests (429) and server errors (5xx) may pass;
    any other answer (a 3xx, a 4xx) will not change by itself.
    """
    if 200 <= code < 300:
        return None
    return code in (408, 429) or code >= 500


__all__ = ["DeliveryFailed", "http_status_retryable", "retry_delay"]
