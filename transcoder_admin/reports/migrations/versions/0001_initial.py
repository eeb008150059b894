"""Create the transcode_reports table.

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    """Create the reports table and its indexes."""
    op.create_table(
        "transcode_reports",
        sa.Column("job_id", sa.String(80), nullable=False),
        sa.Column("customer", sa.String(255), nullable=False),
        sa.Column("profile", sa.String(255), nullable=False),
        sa.Column("relative_path", sa.Text(), nullable=False),
        sa.Column("report_path", sa.Text(), nullable=True),
        sa.Column("checksum", sa.String(200), nullable=True),
        sa.Column("file_size", sa.BigInteger(), nullable=True),
        sa.Column("file_type", sa.String(20), nullable=True),
        sa.Column("mime_type", sa.String(255), nullable=True),
        sa.Column("audio_codec", sa.String(100), nullable=True),
        sa.Column("video_codec", sa.String(100), nullable=True),
        sa.Column("creation_time", _TIME, nullable=True),
        sa.Column("modification_time", _TIME, nullable=True),
        sa.Column("detection_time", _TIME, nullable=True),
        sa.Column("queueing_time", _TIME, nullable=True),
        sa.Column("start_time", _TIME, nullable=True),
        sa.Column("finish_time", _TIME, nullable=True),
        sa.Column("cpu_time", sa.Float(), nullable=True),
        sa.Column("real_time", sa.Float(), nullable=True),
        sa.Column("attempt_count", sa.Integer(), server_default=sa.text("1"), nullable=False),
        sa.Column("machine_name", sa.String(255), nullable=True),
        sa.Column("worker_name", sa.String(255), nullable=True),
        sa.Column("outcome", sa.String(20), nullable=False),
        sa.Column("failure_kind", sa.String(20), nullable=True),
        sa.Column("failure_reason", sa.Text(), nullable=True),
        sa.Column("invalid_output", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("backend", sa.String(50), nullable=True),
        sa.Column("source_duration", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("job_id", name=op.f("pk_transcode_reports")),
        sa.CheckConstraint(
            "outcome IN ('done', 'failed')", name=op.f("ck_transcode_reports_outcome")
        ),
        sa.CheckConstraint(
            "failure_kind IS NULL OR failure_kind IN "
            "('source', 'system', 'post-process', 'cancelled')",
            name=op.f("ck_transcode_reports_failure_kind"),
        ),
    )
    op.create_index(
        op.f("ix_transcode_reports_customer_profile"),
        "transcode_reports",
        ["customer", "profile"],
    )
    op.create_index(op.f("ix_transcode_reports_outcome"), "transcode_reports", ["outcome"])
    op.create_index(op.f("ix_transcode_reports_finish_time"), "transcode_reports", ["finish_time"])


def downgrade() -> None:
    """Drop the reports table and its indexes."""
    op.drop_index(op.f("ix_transcode_reports_finish_time"), table_name="transcode_reports")
    op.drop_index(op.f("ix_transcode_reports_outcome"), table_name="transcode_reports")
    op.drop_index(op.f("ix_transcode_reports_customer_profile"), table_name="transcode_reports")
    op.drop_table("transcode_reports")
