"""What crosses PB between the admin and a worker: JSON text, bounded."""

from __future__ import annotations

import pytest

from transcoder_admin.wire import TooBig, decode, encode


def test_names_that_are_not_utf8_survive_the_round_trip():
    """Surrogate escapes of undecodable file names come back as they went."""
    assert decode(encode({"relpath": "ü\udcff $(x);\n"})) == {"relpath": "ü\udcff $(x);\n"}


def test_plain_values_from_an_older_peer_pass_through():
    """A dict that was not sent as text is taken as it is."""
    assert decode({"a": 1}) == {"a": 1}


def test_values_too_big_for_one_pb_item_are_refused_clearly():
    """JSON text over 512 KiB is refused naming its size (PB would drop the link)."""
    with pytest.raises(TooBig, match="more than the 524288 allowed"):
        encode({"x": "a" * 600_000})
