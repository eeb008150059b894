"""The exceptions of the Qmaster client, with the seed's names.

Every one derives from :class:`QmasterError`. The submission errors share
:class:`QmasterSubmissionError` and the outcome errors :class:`QmasterJobError`, so a
caller may catch a whole family; scripts written for the old module keep catching the
names they know (``ClusterNotFound`` is kept as an alias).
"""

from __future__ import annotations


class QmasterError(Exception):
    """Anything that went wrong talking to Compressor or Batch Monitor."""


class SourceFileError(QmasterError):
    """The source file is missing, is not a file, or cannot be read."""


class DestinationError(QmasterError):
    """No destination was given, or its folder does not exist or cannot be written."""


class QmasterSubmissionError(QmasterError):
    """Compressor refused the batch or answered something that is not a batch id.

    ``text`` is what Compressor said (its ``Submission Error:`` line, or the tail of its
    output), ``exit_code`` its exit status when it had one, ``batch_id`` the batch id it
    printed anyway (so a caller may cancel a batch that was half accepted).
    """

    def __init__(
        self,
        message: str,
        *,
        text: str = "",
        exit_code: int | None = None,
        batch_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.text = text
        self.exit_code = exit_code
        self.batch_id = batch_id


class SettingFileError(QmasterSubmissionError):
    """No Compressor setting file was given, or it does not exist."""


class QmasterNoOutputError(QmasterSubmissionError):
    """Compressor exited without printing anything at all."""


class QmasterCommandNotFound(QmasterSubmissionError):
    """The configured Compressor (or Batch Monitor) is not an executable file."""


class QmasterClusterNotFound(QmasterSubmissionError):
    """Compressor does not know the cluster (and falling back was off or failed too)."""

    def __init__(self, cluster: str, text: str = "", exit_code: int | None = None) -> None:
        message = f"cluster {cluster!r} not found"
        super().__init__(f"{message}: {text}" if text else message, text=text, exit_code=exit_code)
        self.cluster = cluster


ClusterNotFound = QmasterClusterNotFound


class QmasterSubmissionTimeoutError(QmasterSubmissionError):
    """Compressor did not answer within the submission timeout; its process group was killed."""


class QmasterStatusError(QmasterError):
    """Batch Monitor failed, said nothing, or said something that is not a batch status.

    ``text`` is what it said (possibly empty).
    """

    def __init__(self, message: str, *, text: str = "", exit_code: int | None = None) -> None:
        super().__init__(message)
        self.text = text
        self.exit_code = exit_code


class QmasterStatusTimeoutError(QmasterStatusError):
    """Batch Monitor did not answer within the status timeout; its process group was killed."""


class QmasterJobError(QmasterError):
    """The batch ended without success; ``status`` is the last status text read."""

    def __init__(self, message: str, *, status: str = "", batch_id: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.batch_id = batch_id


class QmasterJobCancelled(QmasterJobError):
    """Batch Monitor reported the batch Cancelled."""


class QmasterJobFailed(QmasterJobError):
    """Batch Monitor reported the batch Failed, or its status stayed unreadable too long."""


class QmasterBatchTimeoutError(QmasterJobFailed):
    """The batch did not end within the overall batch timeout (the transcoding timeout)."""


__all__ = [
    "ClusterNotFound",
    "DestinationError",
    "QmasterBatchTimeoutError",
    "QmasterClusterNotFound",
    "QmasterCommandNotFound",
    "QmasterError",
    "QmasterJobCancelled",
    "QmasterJobError",
    "QmasterJobFailed",
    "QmasterNoOutputError",
    "QmasterStatusError",
    "QmasterStatusTimeoutError",
    "QmasterSubmissionError",
    "QmasterSubmissionTimeoutError",
    "SettingFileError",
    "SourceFileError",
]
