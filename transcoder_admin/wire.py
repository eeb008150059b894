"""What crosses Perspective Broker between the admin and a worker: JSON text.

PB only carries basic types, and it decodes every token of a nested structure in
Python: a job's spec or outcome costs milliseconds that way. The big values (job specs,
outcomes, job lists) travel as one JSON string each, which PB passes as a single token
and the C JSON codec reads at once. File names that are not UTF-8 (surrogate escapes)
survive the round trip. A value over 512 KiB of text is refused with a clear error
instead of PB's (the limit of one item is 640 KiB); reports and logs stay in files.
"""

from __future__ import annotations

import json
from typing import Any

#: PB refuses a string over 640 KiB; stay well below it.
MAX_TEXT = 512 * 1024


class TooBig(ValueError):
    """A value too big to send in one piece (names its size)."""


def encode(value: Any) -> str:
    """JSON text of a value made of dicts, lists, strings, numbers, booleans and None."""
    text = json.dumps(value, separators=(",", ":"))
    if len(text) > MAX_TEXT:
        raise TooBig(f"{len(text)} characters to send, more than the {MAX_TEXT} allowed")
    return text


def decode(value: Any) -> Any:
    """The value of JSON text; anything else (an older peer's plain value) as it is."""
    return json.loads(value) if isinstance(value, str) else value
