"""The reports database schema: one row per finished job, keyed by job id (DESIGN.md 7).

Texts that come from names (customer, profile, paths, machines, codecs, reasons) are
TEXT: a name is never too long for its column (revision 0003). Only the job id and the
closed sets (outcome, failure kind, file type) are bounded. Every text is stored in the
escaped form of ``escape`` (a file name that is not UTF-8 keeps its row).

Alembic migrations in ``migrations/`` create exactly this schema; a test compares them.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    false,
    text,
)

from ..prognosis import KINDS
from ..records import OUTCOMES as _OUTCOMES

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

OUTCOMES = _OUTCOMES
FAILURE_KINDS = KINDS
FILE_TYPES = ("video", "audio", "unknown")

metadata = MetaData(naming_convention=NAMING_CONVENTION)

transcode_reports = Table(
    "transcode_reports",
    metadata,
    Column("job_id", String(80), primary_key=True),
    Column("customer", Text, nullable=False),
    Column("profile", Text, nullable=False),
    Column("relative_path", Text, nullable=False),
    Column("report_path", Text),
    Column("checksum", Text),
    Column("file_size", BigInteger),
    Column("file_type", String(20)),
    Column("mime_type", Text),
    Column("audio_codec", Text),
    Column("video_codec", Text),
    Column("creation_time", DateTime(timezone=True)),
    Column("modification_time", DateTime(timezone=True)),
    Column("detection_time", DateTime(timezone=True)),
    Column("queueing_time", DateTime(timezone=True)),
    Column("start_time", DateTime(timezone=True)),
    Column("finish_time", DateTime(timezone=True)),
    Column("cpu_time", Float),
    Column("real_time", Float),
    Column("attempt_count", Integer, nullable=False, server_default=text("1")),
    Column("machine_name", Text),
    Column("worker_name", Text),
    Column("outcome", String(20), nullable=False),
    Column("failure_kind", String(20)),
    Column("failure_reason", Text),
    Column("invalid_output", Boolean, nullable=False, server_default=false()),
    Column("comment", Text),
    Column("backend", Text),
    Column("source_duration", Float),
    Column("qmaster_batch_id", Text),
    Column("qmaster_cluster", Text),
    Column("verdict", String(20)),
    CheckConstraint("outcome IN ('done', 'failed')", name="outcome"),
    CheckConstraint(
        "failure_kind IS NULL OR failure_kind IN ('source', 'system', 'post-process', 'cancelled')",
        name="failure_kind",
    ),
)

Index(None, transcode_reports.c.customer, transcode_reports.c.profile)
Index(None, transcode_reports.c.outcome)
Index(None, transcode_reports.c.finish_time)

COLUMNS = tuple(transcode_reports.c.keys())
#: Columns stored escaped (``escape``): every text but the key, which the admin makes.
TEXT_COLUMNS = tuple(
    c.name for c in transcode_reports.columns if isinstance(c.type, String) and not c.primary_key
)
DATETIME_COLUMNS = tuple(c.name for c in transcode_reports.columns if isinstance(c.type, DateTime))
