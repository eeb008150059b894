"""The admin's Qmaster backend end to end: a real admin process, the Compressor emulator."""

from __future__ import annotations

import os

import pytest
import yaml

from tests.farm import Farm, wait_for
from tests.integration.test_farm import probe_streams
from tests.qmaster_emulator import Emulator, wait_until_gone, write_setting
from tests.qmaster_emulator.emulator import FFMPEG_ENV, HOME_ENV


def qmaster_farm(tmp_path, monkeypatch, timeout: float = 60, **knobs) -> tuple[Farm, Emulator]:
    """A farm whose profile ``q`` sends files to the emulated cluster "Farm"."""
    emulator = Emulator(str(tmp_path / "qm"), **knobs)
    monkeypatch.setenv(HOME_ENV, emulator.env[HOME_ENV])
    monkeypatch.setenv(FFMPEG_ENV, emulator.env[FFMPEG_ENV])
    setting = write_setting(str(tmp_path / "small.setting"))
    customer = {
        "name": "ACME",
        "profiles": {
            "q": {
                "backend": "qmaster",
                "transcoding-timeout": timeout,
                "max-attempts": 1,
                "targets": {"mov": {"type": "qmaster", "setting": setting, "extension": "mov"}},
            }
        },
    }
    farm = Farm(str(tmp_path / "farm"), {"acme": customer})
    farm.admin_config["qmaster"] = {
        "compressor": emulator.compressor,
        "batch-monitor": emulator.batch_monitor,
        "cluster": "Farm",
        "submission-timeout": 10,
        "status-timeout": 10,
        "poll-interval": 0.1,
        "max-batches": 1,
    }
    with open(farm.config_path, "w") as f:
        yaml.safe_dump(farm.admin_config, f)
    return farm, emulator


def test_a_file_goes_through_a_compressor_batch(tmp_path, monkeypatch, clips):
    """Dropped → batch on the cluster → output in outgoing, source in done, batch named."""
    farm, emulator = qmaster_farm(tmp_path, monkeypatch, clusters=["Farm", "This Computer"])
    farm.start()
    try:
        farm.drop("acme", "q", "news/clip.mp4", clips["av"])
        wait_for(lambda: farm.finished("acme", "q") == 1, 120, "the batch to end")
        [report] = farm.reports("acme", "q", "done")
        out = os.path.join(farm.folder("acme", "outgoing", "q"), "news", "mov", "clip.mov")
        assert probe_streams(out)[0] is not None  # a real video made by the "cluster"
        assert os.listdir(os.path.join(farm.folder("acme", "done", "q"), "news")) == ["clip.mp4"]
        [batch] = emulator.batches()
        assert report["qmaster"]["batch_id"] == batch
        assert report["qmaster"]["cluster"] == "Farm"
        row = wait_for(lambda: farm.get("/api/v1/reports?customer=ACME")["items"], 20, "the row")
        assert (row[0]["backend"], row[0]["qmaster_batch_id"]) == ("qmaster", batch)
        workers = {w["name"]: w for w in farm.get("/api/v1/workers")["items"]}
        assert workers["qmaster"]["max_jobs"] == 1
    finally:
        farm.stop()


def test_cluster_gone_falls_back_to_this_computer(tmp_path, monkeypatch, clips):
    """The configured cluster is unknown: the batch runs on "This Computer", and says so."""
    farm, emulator = qmaster_farm(tmp_path, monkeypatch, clusters=["This Computer"])
    farm.start()
    try:
        farm.drop("acme", "q", "clip.mp4", clips["av"])
        wait_for(lambda: farm.finished("acme", "q") == 1, 120, "the batch to end")
        [report] = farm.reports("acme", "q", "done")
        assert report["qmaster"]["cluster"] == "This Computer"
        assert report["qmaster"]["requested_cluster"] == "Farm"
        row = wait_for(lambda: farm.get("/api/v1/reports?customer=ACME")["items"], 20, "the row")
        assert row[0]["qmaster_cluster"] == "This Computer"
        assert "not found" in farm.log()
    finally:
        farm.stop()


@pytest.mark.parametrize(
    "knobs, reason",
    [
        ({"status_hang": True}, "timed out after 3 s"),
        ({"outcome": "Failed"}, "the Compressor batch failed"),
    ],
)
def test_a_batch_that_hangs_or_fails_puts_the_source_in_failed(
    tmp_path, monkeypatch, clips, knobs, reason
):
    """A hung cluster hits the profile's timeout; a Failed batch says so; nothing is left."""
    farm, emulator = qmaster_farm(tmp_path, monkeypatch, timeout=3, clusters=["Farm"], **knobs)
    farm.start()
    try:
        farm.drop("acme", "q", "clip.mp4", clips["av"])
        wait_for(lambda: farm.finished("acme", "q") == 1, 120, "the batch to end")
        [report] = farm.reports("acme", "q", "failed")
        assert reason in report["failure"]["reason"], report["failure"]
        assert os.listdir(farm.folder("acme", "failed", "q")) == ["clip.mp4"]
        outgoing = farm.folder("acme", "outgoing", "q")
        assert not os.path.exists(outgoing) or not any(f for _, _, f in os.walk(outgoing))
        assert wait_until_gone(emulator.leftovers) == []
    finally:
        farm.stop()
