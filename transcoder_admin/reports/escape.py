r"""How text that may hold a file name is stored in the reports database.

A file name that is not UTF-8 reaches Python with its undecodable bytes as lone
surrogates (``b'caf\xe9.mp4'`` → ``'caf\udce9.mp4'``): PostgreSQL refuses such a string
and JSON cannot carry it. Every text of a row is therefore stored escaped, the way
Python writes bytes:

- an undecodable byte ``0xNN`` (surrogate ``U+DCNN``) is stored as ``\xNN``, two
  lowercase hex digits; so is NUL (``\x00``), which PostgreSQL text cannot hold;
- any other lone surrogate ``U+DNNN`` is stored as ``\uDNNN`` (lowercase hex);
- a backslash is stored as two backslashes;
- everything else is stored as it is.

The escape is unambiguous (a stored ``\`` always starts an escape) and reversible
(``unescape_text(escape_text(s)) == s``, and ``os.fsencode`` of that gives the name's
bytes back); report files keep the real name. The API shows the stored form and its
filters take that form; ``replay-reports`` stores rows through the same function.
"""

from __future__ import annotations

import re

_NEEDS_ESCAPE = re.compile("[\\\\\x00\ud800-\udfff]")
_ESCAPED = re.compile(r"\\(\\|x[0-9a-f]{2}|ud[89a-f][0-9a-f]{2})")


def _escape_one(match: re.Match[str]) -> str:
    code = ord(match.group())
    if code == 0x5C:
        return "\\\\"
    if code == 0:
        return "\\x00"
    if 0xDC80 <= code <= 0xDCFF:
        return f"\\x{code - 0xDC00:02x}"
    return f"\\u{code:04x}"


def escape_text(text: str) -> str:
    r"""The stored form of ``text``: undecodable bytes as ``\xNN``, ``\`` as ``\\``."""
    return _NEEDS_ESCAPE.sub(_escape_one, text)


def _unescape_one(match: re.Match[str]) -> str:
    code = match.group(1)
    if code == "\\":
        return "\\"
    value = int(code[1:], 16)
    if code[0] == "u" or value < 0x80:
        return chr(value)
    return chr(0xDC00 + value)


def unescape_text(stored: str) -> str:
    r"""The text that ``escape_text`` stored as ``stored``."""
    return _ESCAPED.sub(_unescape_one, stored)
