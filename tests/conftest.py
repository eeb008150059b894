"""Shared fixtures: generated media clips (never binary media in git), farms, PostgreSQL."""

from __future__ import annotations

import contextlib
import os

import pytest

from tests.clips import corrupt_clip, make_clip
from tests.farm import Farm, wait_for


@pytest.fixture(scope="session")
def clips(tmp_path_factory):
    """A few small clips generated with ffmpeg's lavfi sources, once per session."""
    folder = tmp_path_factory.mktemp("clips")
    paths = {
        "av": make_clip(str(folder / "av.mp4"), duration=2.0, width=320, height=240),
        "audio": make_clip(str(folder / "audio.m4a"), duration=2.0, video=False),
        "silent": make_clip(str(folder / "silent.mp4"), duration=2.0, audio=False),
        "long": make_clip(str(folder / "long.ts"), duration=6.0, width=320, height=240),
    }
    paths["corrupt"] = corrupt_clip(paths["long"], str(folder / "corrupt.ts"))
    text = folder / "notes.txt"
    text.write_text("this is not a video\n" * 50)
    paths["text"] = str(text)
    for path in paths.values():
        assert os.path.getsize(path) > 0
    empty = folder / "empty.mp4"
    empty.write_bytes(b"")
    paths["empty"] = str(empty)
    return paths


@pytest.fixture
def postgres_url():
    """A PostgreSQL URL whose search_path is a fresh schema, dropped afterwards.

    Skipped when TRANSCODER_TEST_POSTGRES_URL is unset, unless
    TRANSCODER_TEST_REQUIRE_POSTGRES=1 (CI), which turns the skip into a failure.
    """
    import uuid

    import sqlalchemy as sa

    base = os.environ.get("TRANSCODER_TEST_POSTGRES_URL")
    if not base:
        if os.environ.get("TRANSCODER_TEST_REQUIRE_POSTGRES") == "1":
            pytest.fail("TRANSCODER_TEST_POSTGRES_URL is not set but PostgreSQL is required")
        pytest.skip("TRANSCODER_TEST_POSTGRES_URL is not set")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    engine = sa.create_engine(base)
    with engine.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in base else "?"
    try:
        yield f"{base}{sep}options=-csearch_path%3D{schema}"
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        engine.dispose()


@pytest.fixture
def farms():
    """Farms made by the test; each is stopped afterwards and must leave no process."""
    made: list[Farm] = []
    yield made
    for farm in made:
        farm.stop()
    for farm in made:
        with contextlib.suppress(AssertionError):
            wait_for(lambda f=farm: not f.processes(), 30, "the farm's processes to end")
        assert farm.processes() == []
