"""What crosses Perspective Broker between the admin and a worker: JSON text.

PB only carries basic types, and it decodes every token of a nested structure in
Python: a job's spec or outcome costs milliseconds that way. The big values (job specs,
outcomes, job lists) travel as one JSON string each, which PB passes as a single token
and the C JSON codec reads at once. File names that are not UTF-8 (surrogate escapes)
survive the round trip. Strings stay far below PB's 640 KiB item limit.
"""

from __future__ import annotations

import json
from typing import Any


def encode(value: Any) -> str:
    """JSON text of a value made of dicts, lists, strings, numbers, booleans and None."""
    return json.dumps(value, separators=(",", ":"))


def decode(value: Any) -> Any:
    """The value of JSON text; anything else (an older peer's plain value) as it is."""
    return json.loads(value) if isinstance(value, str) else value
