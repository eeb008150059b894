"""Apple Qmaster/Compressor batches: a Twisted client, a blocking one, and the seed's API.

- :class:`QmasterClient` (``client.py``): Deferred-returning ``submit``, ``status``,
  ``wait``, ``cancel`` for the admin.
- :class:`BlockingClient` (``blocking.py``) and :class:`QmasterBatch` (``script.py``):
  the same operations for plain scripts, with the seed's camelCase API.
- :class:`QmasterSettings`: every knob (tool paths, timeouts, poll interval,
  fallback, command prefix) in one value.

Both clients run the steps of ``core.py``, which hold every rule once; ``commands.py``
builds the argv lists and ``parser.py`` reads what the tools print. See docs/qmaster.md.
"""

from .blocking import BlockingClient
from .client import QmasterClient
from .errors import (
    ClusterNotFound,
    DestinationError,
    QmasterBatchTimeoutError,
    QmasterClusterNotFound,
    QmasterCommandNotFound,
    QmasterError,
    QmasterJobCancelled,
    QmasterJobError,
    QmasterJobFailed,
    QmasterNoOutputError,
    QmasterStatusError,
    QmasterStatusTimeoutError,
    QmasterSubmissionError,
    QmasterSubmissionTimeoutError,
    SettingFileError,
    SourceFileError,
)
from .model import BatchJob, BatchRef, BatchStatus, CommandResult, JobStatus, Submission
from .parser import parse_status, parse_submission
from .script import QmasterBatch
from .settings import LOCAL_CLUSTER, QmasterSettings

__all__ = [
    "LOCAL_CLUSTER",
    "BatchJob",
    "BatchRef",
    "BatchStatus",
    "BlockingClient",
    "ClusterNotFound",
    "CommandResult",
    "DestinationError",
    "JobStatus",
    "QmasterBatch",
    "QmasterBatchTimeoutError",
    "QmasterClient",
    "QmasterClusterNotFound",
    "QmasterCommandNotFound",
    "QmasterError",
    "QmasterJobCancelled",
    "QmasterJobError",
    "QmasterJobFailed",
    "QmasterNoOutputError",
    "QmasterSettings",
    "QmasterStatusError",
    "QmasterStatusTimeoutError",
    "QmasterSubmissionError",
    "QmasterSubmissionTimeoutError",
    "SettingFileError",
    "SourceFileError",
    "Submission",
    "parse_status",
    "parse_submission",
]
