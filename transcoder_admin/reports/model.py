"""The reports database schema: one row per finished job, keyed by job id (DESIGN.md 7).

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

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

OUTCOMES = ("done", "failed")
FAILURE_KINDS = ("source", "system", "post-process", "cancelled", "changed")
FILE_TYPES = ("video", "audio", "unknown")

metadata = MetaData(naming_convention=NAMING_CONVENTION)

transcode_reports = Table(
    "transcode_reports",
    metadata,
    Column("job_id", String(80), primary_key=True),
    Column("customer", String(255), nullable=False),
    Column("profile", String(255), nullable=False),
    Column("relative_path", Text, nullable=False),
    Column("report_path", Text),
    Column("checksum", String(200)),
    Column("file_size", BigInteger),
    Column("file_type", String(20)),
    Column("mime_type", String(255)),
    Column("audio_codec", String(100)),
    Column("video_codec", String(100)),
    Column("creation_time", DateTime(timezone=True)),
    Column("modification_time", DateTime(timezone=True)),
    Column("detection_time", DateTime(timezone=True)),
    Column("queueing_time", DateTime(timezone=True)),
    Column("start_time", DateTime(timezone=True)),
    Column("finish_time", DateTime(timezone=True)),
    Column("cpu_time", Float),
    Column("real_time", Float),
    Column("attempt_count", Integer, nullable=False, server_default=text("1")),
    Column("machine_name", String(255)),
    Column("worker_name", String(255)),
    Column("outcome", String(20), nullable=False),
    Column("failure_kind", String(20)),
    Column("failure_reason", Text),
    Column("invalid_output", Boolean, nullable=False, server_default=false()),
    Column("comment", Text),
    Column("backend", String(50)),
    Column("source_duration", Float),
    Column("qmaster_batch_id", String(255)),
    Column("qmaster_cluster", String(255)),
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
DATETIME_COLUMNS = tuple(c.name for c in transcode_reports.columns if isinstance(c.type, DateTime))
