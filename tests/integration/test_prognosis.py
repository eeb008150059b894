"""The prognostician on a real farm: junk uploads are told apart from farm problems in
the report file, the database row and the API."""

from __future__ import annotations

import os

from tests.farm import Farm, wait_for

CUSTOMER = {
    "name": "ACME",
    "profiles": {
        "web": {
            "allow-without-audio": True,
            "targets": {"sound": {"type": "audio", "extension": "m4a"}},
        }
    },
}


def test_junk_uploads_get_a_verdict_in_report_row_and_api(tmp_path, clips):
    """A text file and a PNG are wrong_mime_type, a 600-byte 'video' video_too_small
    (or wrong_mime_type if it is no video at all), a good clip none; the API filters."""
    farm = Farm(str(tmp_path), {"acme": CUSTOMER})
    png = tmp_path / "picture.png"
    png.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + os.urandom(200))
    farm.start()
    try:
        farm.drop("acme", "web", "notes.mov", clips["text"])
        farm.drop("acme", "web", "picture.mov", str(png))
        farm.drop("acme", "web", "good.m4a", clips["audio"])
        wait_for(lambda: farm.finished("acme", "web") == 3, 60, "three files")
        failed = {r["relpath"]: r for r in farm.reports("acme", "web", "failed")}
        assert failed["notes.mov"]["verdict"] == "wrong_mime_type"
        assert failed["notes.mov"]["file"]["mime_guess"] == "text/plain"
        assert failed["picture.mov"]["verdict"] == "wrong_mime_type"
        assert failed["picture.mov"]["file"]["mime_guess"] == "image/png"
        [done] = farm.reports("acme", "web", "done")
        assert done["verdict"] is None
        wait_for(lambda: farm.get("/api/v1/reports")["total"] == 3, 30, "three rows")
        junk = farm.get("/api/v1/reports?verdict=wrong_mime_type")
        assert sorted(r["relative_path"] for r in junk["items"]) == ["notes.mov", "picture.mov"]
        assert {r["mime_type"] for r in junk["items"]} == {"text/plain", "image/png"}
        unexpected = farm.get("/api/v1/reports?verdict=none&outcome=failed")
        assert unexpected["total"] == 0
        status, body = farm.request("GET", "/api/v1/reports?verdict=maybe")
        assert status == 400 and "verdict" in body["error"]["message"]
    finally:
        farm.stop()
