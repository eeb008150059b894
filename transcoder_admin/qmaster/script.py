"""``QmasterBatch``: the seed's script API, for plain synchronous scripts.

Every method blocks until it is done and needs no reactor (it runs the same steps as
the Twisted client through the blocking driver). Defaults for every new batch are the
class attributes; a site changes them once (``QmasterBatch.compressorPath = …``) or
per batch on the instance::

    from transcoder_admin.qmaster import QmasterBatch, QmasterJobFailed

    batch = QmasterBatch(
        sourceFile="/Volumes/media/in/clip.mov",
        destinationDirectory="/Volumes/media/out",
        compressorSettingFile="/Users/encoder/Settings/H.264 720p.setting",
        cluster="FCS Cluster",
    )
    batch.compressorSubmissionTimeout = 30
    try:
        batch.submitBatchAndWait()        # 'Successful'
    except QmasterJobFailed:
        print(batch.lastError())
"""

from __future__ import annotations

import shlex
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from .blocking import BlockingClient
from .commands import destination_for
from .errors import QmasterError, QmasterStatusError
from .model import BatchJob, BatchRef, BatchStatus, Submission
from .settings import (
    DEFAULT_BATCH_MONITOR,
    DEFAULT_COMPRESSOR,
    LOCAL_CLUSTER,
    QmasterSettings,
)

_DEFAULTS = QmasterSettings()


class QmasterBatch:
    """One Compressor batch, submitted and monitored with blocking calls.

    Constructor arguments are the seed's; ``cluster`` '' means "This Computer" and
    ``priority`` '' the default priority. After a submission ``batchID``, ``jobIDs``,
    ``cluster`` (the cluster that took the batch, after any fallback) and
    ``destinationPath`` are set; after a status query ``status`` and
    ``percentComplete``.
    """

    compressorPath: str = DEFAULT_COMPRESSOR
    batchMonitorPath: str = DEFAULT_BATCH_MONITOR
    compressorSubmissionTimeout: float = _DEFAULTS.submission_timeout
    localCompressorFallback: bool = _DEFAULTS.fallback_to_local
    monitorSleeptime: float = _DEFAULTS.poll_interval
    statusTimeout: float = _DEFAULTS.status_timeout
    statusGrace: float = _DEFAULTS.status_grace
    batchTimeout: float | None = None
    commandPrefix: tuple[str, ...] = ()
    destinationSuffix: str = _DEFAULTS.destination_suffix
    defaultPriority: str = _DEFAULTS.priority
    localCluster: str = LOCAL_CLUSTER
    checkPaths: bool = True

    def __init__(
        self,
        sourceFile: str = "",  # noqa: N803 (the seed's names)
        destinationFile: str = "",  # noqa: N803
        destinationDirectory: str = "",  # noqa: N803
        cluster: str = "",
        priority: str | int = "",
        compressorSettingFile: str = "",  # noqa: N803
        batchID: str = "",  # noqa: N803
        batchName: str = "",  # noqa: N803
    ) -> None:
        self.sourceFile = sourceFile
        self.destinationFile = destinationFile
        self.destinationDirectory = destinationDirectory
        self.cluster = cluster
        self.priority = priority
        self.compressorSettingFile = compressorSettingFile
        self.batchID = batchID
        self.batchName = batchName
        self.requestedCluster = cluster
        self.jobIDs: list[str] = []
        self.destinationPath = ""
        self.status = ""
        self.percentComplete: float | None = None
        self.submission: Submission | None = None
        self._entries: list[tuple[float, str, str]] = []
        self._last_error = ""

    def __repr__(self) -> str:
        return (
            f"QmasterBatch(sourceFile={self.sourceFile!r}, cluster={self.cluster!r}, "
            f"batchID={self.batchID!r}, status={self.status!r})"
        )

    def settings(self) -> QmasterSettings:
        """The client settings these attributes stand for."""
        return QmasterSettings(
            compressor=self.compressorPath,
            batch_monitor=self.batchMonitorPath,
            local_cluster=self.localCluster,
            cluster=self.localCluster,
            fallback_to_local=bool(self.localCompressorFallback),
            submission_timeout=float(self.compressorSubmissionTimeout),
            status_timeout=float(self.statusTimeout),
            poll_interval=float(self.monitorSleeptime),
            status_grace=float(self.statusGrace),
            batch_timeout=None if self.batchTimeout is None else float(self.batchTimeout),
            command_prefix=_argv(self.commandPrefix),
            priority=self.defaultPriority,
            destination_suffix=self.destinationSuffix,
            check_paths=bool(self.checkPaths),
        )

    def _client(self) -> BlockingClient:
        return BlockingClient(self.settings(), log=self._log_from_client)

    def _log_from_client(self, level: str, message: str) -> None:
        self.logger(message, level)

    @contextmanager
    def _reporting(self) -> Iterator[None]:
        try:
            yield
        except QmasterError as e:
            self.logger(f"{type(e).__name__}: {e}", "error")
            raise

    def _job(self) -> BatchJob:
        destination = destination_for(
            self.sourceFile, self.destinationFile, self.destinationDirectory, self.destinationSuffix
        )
        return BatchJob(self.sourceFile, self.compressorSettingFile, destination)

    def _submitted(self, submission: Submission) -> None:
        self.submission = submission
        self.batchID = submission.batch_id
        self.jobIDs = list(submission.job_ids)
        self.requestedCluster = submission.requested_cluster
        self.cluster = submission.cluster
        self.batchName = submission.batch_name
        self.destinationPath = submission.jobs[0].destination

    def _progress(self, status: BatchStatus) -> None:
        self.status = status.state or status.text
        self.percentComplete = status.percent

    def _ref(self) -> BatchRef:
        if not self.batchID:
            raise QmasterStatusError("no batchID: submit the batch first or give its batchID")
        return BatchRef(self.cluster or self.localCluster, self.batchID)

    def submitBatch(self) -> str:  # noqa: N802 (the seed's names)
        """Submit the batch; its batch id.

        Raises SourceFileError, DestinationError, QmasterSubmissionError,
        QmasterClusterNotFound or QmasterSubmissionTimeoutError.
        """
        with self._reporting():
            submission = self._client().submit(
                [self._job()],
                batch_name=self.batchName,
                cluster=self.cluster or None,
                priority=self.priority,
            )
            self._submitted(submission)
            return submission.batch_id

    def getStatus(self) -> str:  # noqa: N802
        """The batch's status now: Processing, Waiting, PostProcessing, Hold, Cancelled,
        Successful or Failed (or the word Batch Monitor printed, when it is none of those).

        Raises QmasterStatusError when Batch Monitor cannot tell.
        """
        with self._reporting():
            status = self._client().status(self._ref())
            self._progress(status)
            return self.status

    def submitBatchAndWait(self) -> str:  # noqa: N802
        """Submit the batch and block until it ends; 'Successful'.

        ``batchTimeout`` (seconds, None for none) bounds the whole. Raises what
        submitBatch raises, and QmasterJobCancelled, QmasterJobFailed or
        QmasterBatchTimeoutError (a QmasterJobFailed).
        """
        with self._reporting():
            _, final = self._client().submit_and_wait(
                [self._job()],
                batch_name=self.batchName,
                cluster=self.cluster or None,
                priority=self.priority,
                on_submitted=self._submitted,
                on_progress=self._progress,
            )
            self._progress(final)
            return self.status

    def waitForBatch(self, timeout: float | None = None) -> str:  # noqa: N802
        """Block until the batch ``batchID`` ends; 'Successful' (raises like submitBatchAndWait)."""
        with self._reporting():
            final = self._client().wait(self._ref(), timeout=timeout, on_progress=self._progress)
            self._progress(final)
            return self.status

    def cancelBatch(self) -> bool:  # noqa: N802
        """Ask Batch Monitor to cancel the batch; True when it did not complain."""
        with self._reporting():
            return self._client().cancel(self._ref())

    def lastError(self) -> str:  # noqa: N802
        """The last error logged ('' when none)."""
        return self._last_error

    def logger(self, logMSG: Any, logLevel: str = "normal") -> None:  # noqa: N803
        """Record a log line (levels: debug, normal, warning, error)."""
        message = str(logMSG)
        self._entries.append((time.time(), logLevel, message))
        if logLevel == "error":
            self._last_error = message

    def logs(self, logLevel: str = "") -> list[str]:  # noqa: N803
        """The log lines of ``logLevel`` ('' for all), oldest first."""
        return [m for _, level, m in self._entries if not logLevel or level == logLevel]


def _argv(value: Any) -> tuple[str, ...]:
    """A command prefix given as a list, or as one string split like a shell would."""
    if isinstance(value, str):
        return tuple(shlex.split(value))
    return tuple(str(v) for v in value or ())


__all__ = ["QmasterBatch"]
