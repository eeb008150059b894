"""Add the prognostician's verdict on a failed source.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03

``wrong_mime_type``, ``wrong_file_type``, ``video_too_small``, ``audio_too_small`` or
NULL: whether a failure was to be expected of the upload (junk) or says something
about the farm.  Rows written before have none.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """One nullable column."""
    with op.batch_alter_table("transcode_reports") as batch:
        batch.add_column(sa.Column("verdict", sa.String(20), nullable=True))


def downgrade() -> None:
    """Drop it again."""
    with op.batch_alter_table("transcode_reports") as batch:
        batch.drop_column("verdict")
