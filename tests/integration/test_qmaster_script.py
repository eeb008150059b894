"""The seed's script API (QmasterBatch) and the blocking client, against the emulator.

The main test runs a plain script in a subprocess, the way people used the old module:
no reactor, no Twisted knowledge, only QmasterBatch and its exceptions.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import time

import pytest

from tests.qmaster_emulator import (
    BATCH_MONITOR_SCRIPT,
    COMPRESSOR_SCRIPT,
    Emulator,
    wait_until_gone,
    write_setting,
)
from tests.qmaster_emulator.emulator import FFMPEG_ENV, HOME_ENV
from transcoder_admin.qmaster import (
    BatchJob,
    BlockingClient,
    DestinationError,
    QmasterBatch,
    QmasterBatchTimeoutError,
    QmasterClusterNotFound,
    QmasterJobCancelled,
    QmasterJobFailed,
    QmasterStatusError,
    QmasterSubmissionTimeoutError,
    SourceFileError,
)

SCRIPT = textwrap.dedent(
    """
    import json
    import sys

    from transcoder_admin.qmaster import (
        DestinationError,
        QmasterBatch,
        QmasterClusterNotFound,
        SourceFileError,
    )

    paths = json.loads(sys.argv[1])
    QmasterBatch.compressorPath = paths["compressor"]
    QmasterBatch.batchMonitorPath = paths["batch_monitor"]
    QmasterBatch.monitorSleeptime = 0.05

    batch = QmasterBatch(
        sourceFile=paths["source"],
        destinationDirectory=paths["out"],
        cluster="FCS Cluster",
        compressorSettingFile=paths["setting"],
        batchName="evening news",
    )
    result = {"status": batch.submitBatchAndWait()}
    result.update(
        batchID=batch.batchID,
        cluster=batch.cluster,
        destination=batch.destinationPath,
        percent=batch.percentComplete,
        warnings=batch.logs("warning"),
    )

    # The seed's first example: the status of a batch known by its id.
    known = QmasterBatch(batchID=batch.batchID, cluster="This Computer")
    result["status_again"] = known.getStatus()

    missing = QmasterBatch(
        sourceFile=paths["source"] + ".missing",
        destinationFile=paths["out"] + "/x.mov",
        compressorSettingFile=paths["setting"],
    )
    try:
        missing.submitBatch()
    except SourceFileError:
        result["source_error"] = missing.lastError()

    nowhere = QmasterBatch(sourceFile=paths["source"], compressorSettingFile=paths["setting"])
    try:
        nowhere.submitBatch()
    except DestinationError:
        result["destination_error"] = nowhere.lastError()

    strict = QmasterBatch(
        sourceFile=paths["source"],
        destinationDirectory=paths["out"],
        compressorSettingFile=paths["setting"],
        cluster="FCS Cluster",
    )
    strict.localCompressorFallback = False
    try:
        strict.submitBatch()
    except QmasterClusterNotFound:
        result["cluster_error"] = strict.lastError()
        result["error_logs"] = strict.logs("error")

    result["reactor_imported"] = "twisted.internet.reactor" in sys.modules
    print(json.dumps(result))
    """
)


@pytest.fixture
def emulator(tmp_path, monkeypatch, clips):
    """An emulator whose home is in the environment (QmasterBatch uses os.environ)."""
    emu = Emulator(str(tmp_path))
    monkeypatch.setenv(HOME_ENV, emu.env[HOME_ENV])
    monkeypatch.setenv(FFMPEG_ENV, emu.env[FFMPEG_ENV])
    emu.source = str(tmp_path / "evening news.mp4")
    shutil.copy(clips["av"], emu.source)
    emu.setting = write_setting(str(tmp_path / "h264.setting"))
    emu.out = str(tmp_path / "out")
    os.makedirs(emu.out)
    yield emu
    assert wait_until_gone(emu.leftovers) == [], "processes outlived their command"


def batch_for(emu: Emulator, **changes) -> QmasterBatch:
    """A QmasterBatch of the emulator's clip, with fast settings on the instance."""
    batch = QmasterBatch(
        sourceFile=emu.source,
        destinationDirectory=emu.out,
        compressorSettingFile=emu.setting,
        **changes,
    )
    batch.compressorPath = emu.compressor
    batch.batchMonitorPath = emu.batch_monitor
    batch.monitorSleeptime = 0.05
    return batch


def test_a_plain_script_uses_the_seed_api(emulator, tmp_path):
    """A synchronous script submits, waits, queries and catches the seed's exceptions."""
    script = tmp_path / "encode.py"
    script.write_text(SCRIPT)
    paths = {
        "compressor": emulator.compressor,
        "batch_monitor": emulator.batch_monitor,
        "source": emulator.source,
        "setting": emulator.setting,
        "out": emulator.out,
    }
    done = subprocess.run(
        [sys.executable, str(script), json.dumps(paths)],
        env=emulator.env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["status"] == "Successful"
    assert result["status_again"] == "Successful"
    assert result["cluster"] == "This Computer"
    assert result["percent"] == 100.0
    assert result["destination"] == os.path.join(emulator.out, "evening news.mov")
    assert os.path.getsize(result["destination"]) > 0
    assert any("FCS Cluster" in w and "not found" in w for w in result["warnings"])
    assert "does not exist" in result["source_error"]
    assert "no destination" in result["destination_error"]
    assert "FCS Cluster" in result["cluster_error"]
    assert result["error_logs"] == [result["cluster_error"]]
    assert result["reactor_imported"] is False
    assert emulator.batch(result["batchID"])["name"] == "evening news"


def test_destination_suffix_is_configurable(emulator):
    """destinationDirectory plus destinationSuffix names the output."""
    batch = batch_for(emulator)
    batch.destinationSuffix = ".mp4"
    assert batch.submitBatchAndWait() == "Successful"
    assert os.path.isfile(os.path.join(emulator.out, "evening news.mp4"))


def test_script_submission_timeout_leaves_nothing_behind(emulator):
    """compressorSubmissionTimeout kills a hung Compressor and its child."""
    emulator.configure(submit_hang=True)
    batch = batch_for(emulator)
    batch.compressorSubmissionTimeout = 1
    started = time.monotonic()
    with pytest.raises(QmasterSubmissionTimeoutError):
        batch.submitBatch()
    assert time.monotonic() - started < 8
    assert "did not answer within 1 s" in batch.lastError()
    assert len(emulator.hung()) == 1
    assert wait_until_gone(emulator.leftovers) == []


@pytest.mark.parametrize(
    ("outcome", "error"), [("Failed", QmasterJobFailed), ("Cancelled", QmasterJobCancelled)]
)
def test_script_failed_and_cancelled(emulator, outcome, error):
    """submitBatchAndWait raises the seed's QmasterJobFailed / QmasterJobCancelled."""
    emulator.configure(outcome=outcome)
    batch = batch_for(emulator)
    with pytest.raises(error):
        batch.submitBatchAndWait()
    assert batch.status == outcome
    assert batch.batchID and outcome.lower() in batch.lastError().lower()


def test_script_batch_timeout(emulator):
    """batchTimeout bounds submitBatchAndWait; the batch is cancelled on the cluster."""
    emulator.configure(status_sequence=["Processing"] * 10000)
    batch = batch_for(emulator)
    batch.batchTimeout = 1
    with pytest.raises(QmasterBatchTimeoutError):
        batch.submitBatchAndWait()
    assert emulator.batch(batch.batchID)["state"] == "Cancelled"


def test_script_status_timeout_and_missing_batch_id(emulator):
    """getStatus: a hung Batch Monitor is killed; no batchID is a clear error."""
    batch = batch_for(emulator)
    batch.statusTimeout = 1
    batch.submitBatch()
    emulator.configure(status_hang=True)
    with pytest.raises(QmasterStatusError, match="did not answer"):
        batch.getStatus()
    with pytest.raises(QmasterStatusError, match="no batchID"):
        QmasterBatch().getStatus()


def test_script_checks_inputs_before_running_anything(emulator):
    """Source and destination problems are raised before Compressor is run."""
    with pytest.raises(SourceFileError):
        QmasterBatch(sourceFile="", destinationFile="/x.mov").submitBatch()
    batch = batch_for(emulator)
    batch.destinationDirectory = os.path.join(emulator.out, "missing folder")
    with pytest.raises(DestinationError, match="does not exist"):
        batch.submitBatch()
    assert emulator.calls() == []


def test_blocking_client_fallback_disabled(emulator):
    """With fallback off the blocking client raises QmasterClusterNotFound after one call."""
    client = BlockingClient(emulator.settings(fallback_to_local=False), env=emulator.env)
    job = BatchJob(emulator.source, emulator.setting, os.path.join(emulator.out, "o.mov"))
    with pytest.raises(QmasterClusterNotFound):
        client.submit([job], cluster="FCS Cluster")
    assert len(emulator.calls("Compressor")) == 1


def test_the_shipped_executables_run_as_they_are(emulator):
    """tests/qmaster_emulator/Compressor and 'Batch Monitor' run by their shebang."""
    if not shutil.which("python3"):
        pytest.skip("no python3 on PATH for '#!/usr/bin/env python3'")
    assert os.access(COMPRESSOR_SCRIPT, os.X_OK) and os.access(BATCH_MONITOR_SCRIPT, os.X_OK)
    client = BlockingClient(
        emulator.settings(compressor=COMPRESSOR_SCRIPT, batch_monitor=BATCH_MONITOR_SCRIPT),
        env=emulator.env,
    )
    job = BatchJob(emulator.source, emulator.setting, os.path.join(emulator.out, "o.mov"))
    submission, final = client.submit_and_wait([job], cluster="FCS Cluster")
    assert submission.fell_back and final.successful
    assert os.path.getsize(job.destination) > 0
