"""Add the Qmaster batch id and cluster of a job.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Two nullable columns: the batch id and the cluster (after any fallback)."""
    with op.batch_alter_table("transcode_reports") as batch:
        batch.add_column(sa.Column("qmaster_batch_id", sa.String(255), nullable=True))
        batch.add_column(sa.Column("qmaster_cluster", sa.String(255), nullable=True))


def downgrade() -> None:
    """Drop them again."""
    with op.batch_alter_table("transcode_reports") as batch:
        batch.drop_column("qmaster_cluster")
        batch.drop_column("qmaster_batch_id")
