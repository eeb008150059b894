"""The records that cross the seam between the admin and its workers.

A worker runs a :class:`JobSpec`; it answers with an :class:`Outcome` when a job's work
is over (nothing has moved yet) and with a :class:`Report` when the outcome is committed
or a dead job's source is failed. All are frozen; all travel as ``to_wire`` dicts and
are read back, checked field by field (:class:`BadRecord` names a bad one), by
``from_wire``, whichever way they came (in the same process or over Perspective
Broker). A report's wire form is the part of its report file the admin needs, in the
file's own shape: :meth:`Report.from_document` reads a report file and a wire value
alike, and the admin builds the database row from the record
(``reports.files.row_from_report``). A worker sends its documents' wire forms picked
straight from them (:func:`outcome_wire`, :func:`report_wire`): the admin checks them.
"""

from .documents import outcome_wire, report_wire
from .fields import BadRecord
from .outcomes import (
    OUTCOMES,
    FileFacts,
    Outcome,
    Report,
    SourceFacts,
    TargetOutcome,
    Times,
)
from .spec import JobSpec

__all__ = [
    "OUTCOMES",
    "BadRecord",
    "FileFacts",
    "JobSpec",
    "Outcome",
    "Report",
    "SourceFacts",
    "TargetOutcome",
    "Times",
    "outcome_wire",
    "report_wire",
]
