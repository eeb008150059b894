"""Name columns become TEXT; backslashes already stored are escaped.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02

A customer, profile, machine or worker name longer than 255 characters (PostgreSQL
refused its row) now fits. From this revision on every text is stored escaped
(``transcoder_admin.reports.escape``: ``\\`` for a backslash, ``\\xNN`` for a byte that is
not UTF-8), so backslashes in rows written before are doubled here to read the same.
On PostgreSQL, VARCHAR to TEXT rewrites neither the table nor its indexes.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: Column → its length before this revision.
_WIDENED = {
    "customer": 255,
    "profile": 255,
    "checksum": 200,
    "mime_type": 255,
    "audio_codec": 100,
    "video_codec": 100,
    "machine_name": 255,
    "worker_name": 255,
    "backend": 50,
    "qmaster_batch_id": 255,
    "qmaster_cluster": 255,
}
#: Every text column that may hold a backslash (not the job id or the closed sets).
_ESCAPED = (*_WIDENED, "relative_path", "report_path", "failure_reason", "comment")


def _table() -> sa.TableClause:
    return sa.table("transcode_reports", *(sa.column(name, sa.Text) for name in _ESCAPED))


def upgrade() -> None:
    """Widen the name columns to TEXT, then escape the backslashes of existing rows."""
    with op.batch_alter_table("transcode_reports") as batch:
        for name, length in _WIDENED.items():
            batch.alter_column(name, type_=sa.Text(), existing_type=sa.String(length))
    table = _table()
    for name in _ESCAPED:
        column = table.c[name]
        op.execute(
            table.update()
            .where(column.contains("\\", autoescape=True))
            .values({name: sa.func.replace(column, "\\", "\\\\")})
        )


def downgrade() -> None:
    """Undo the escaping of backslashes and narrow the columns again (longer names fail)."""
    table = _table()
    for name in _ESCAPED:
        column = table.c[name]
        op.execute(
            table.update()
            .where(column.contains("\\\\", autoescape=True))
            .values({name: sa.func.replace(column, "\\\\", "\\")})
        )
    with op.batch_alter_table("transcode_reports") as batch:
        for name, length in _WIDENED.items():
            batch.alter_column(name, type_=sa.String(length), existing_type=sa.Text())
