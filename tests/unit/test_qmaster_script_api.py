"""The seed's script API as a contract: names, arguments, attributes, logs and errors."""

from __future__ import annotations

import inspect

import pytest

import transcoder_admin.qmaster as qmaster
from transcoder_admin.qmaster import QmasterBatch, QmasterSettings

SEED_ARGUMENTS = [
    "sourceFile",
    "destinationFile",
    "destinationDirectory",
    "cluster",
    "priority",
    "compressorSettingFile",
    "batchID",
    "batchName",
]


def test_constructor_takes_the_seed_arguments_in_order():
    """QmasterBatch(sourceFile=, …, batchName=) in the seed's order, each defaulting to ''."""
    parameters = list(inspect.signature(QmasterBatch).parameters.values())
    assert [p.name for p in parameters] == SEED_ARGUMENTS
    assert all(p.default == "" for p in parameters)
    batch = QmasterBatch("/in.mov", "/out.mov", "", "FCS", "high", "/s.setting", "ID", "b")
    assert (batch.sourceFile, batch.cluster, batch.batchID, batch.batchName) == (
        "/in.mov",
        "FCS",
        "ID",
        "b",
    )


def test_seed_methods_and_attributes_exist():
    """The seed's methods and configuration attributes are all there."""
    batch = QmasterBatch()
    for method in ("submitBatch", "getStatus", "submitBatchAndWait", "lastError", "logs", "logger"):
        assert callable(getattr(batch, method))
    for attribute in (
        "compressorPath",
        "batchMonitorPath",
        "compressorSubmissionTimeout",
        "localCompressorFallback",
        "monitorSleeptime",
        "cluster",
        "priority",
        "batchID",
        "batchName",
    ):
        assert hasattr(batch, attribute)


def test_seed_exceptions_are_importable_and_grouped():
    """Every seed exception is exported, all QmasterError, ClusterNotFound an alias."""
    names = [
        "SourceFileError",
        "DestinationError",
        "QmasterSubmissionError",
        "QmasterClusterNotFound",
        "QmasterSubmissionTimeoutError",
        "QmasterJobCancelled",
        "QmasterJobFailed",
    ]
    for name in names:
        assert issubclass(getattr(qmaster, name), qmaster.QmasterError)
    assert qmaster.ClusterNotFound is qmaster.QmasterClusterNotFound
    assert issubclass(qmaster.QmasterClusterNotFound, qmaster.QmasterSubmissionError)
    assert issubclass(qmaster.QmasterBatchTimeoutError, qmaster.QmasterJobFailed)


def test_attributes_make_the_settings():
    """Instance attributes (class defaults otherwise) become the client's settings."""
    batch = QmasterBatch()
    batch.compressorPath = "/C"
    batch.batchMonitorPath = "/BM"
    batch.compressorSubmissionTimeout = 7
    batch.localCompressorFallback = False
    batch.monitorSleeptime = 2
    batch.commandPrefix = "ssh 'mac encoder'"
    settings = batch.settings()
    assert settings == QmasterSettings(
        compressor="/C",
        batch_monitor="/BM",
        submission_timeout=7,
        fallback_to_local=False,
        poll_interval=2,
        command_prefix=("ssh", "mac encoder"),
    )
    assert QmasterBatch().settings().compressor == QmasterBatch.compressorPath


def test_logs_and_last_error():
    """logger() records by level; logs() filters; lastError() is the last error."""
    batch = QmasterBatch()
    assert batch.lastError() == "" and batch.logs() == []
    batch.logger("hello")
    batch.logger("first", "error")
    batch.logger("details", "debug")
    batch.logger("second", "error")
    assert batch.logs() == ["hello", "first", "details", "second"]
    assert batch.logs("error") == ["first", "second"]
    assert batch.logs("normal") == ["hello"]
    assert batch.lastError() == "second"


def test_errors_are_logged_before_they_are_raised():
    """A failing call leaves its error in lastError() and the error logs."""
    batch = QmasterBatch(destinationDirectory="/tmp")
    with pytest.raises(qmaster.SourceFileError):
        batch.submitBatch()
    assert "SourceFileError" in batch.lastError()
    assert batch.logs("error") == [batch.lastError()]
