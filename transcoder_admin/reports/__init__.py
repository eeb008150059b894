"""Reports: the YAML report file of every finished job and its row in the reports database.

``files`` reads and writes report files; ``model`` is the database schema, migrated by
Alembic (``migrations/``); ``db`` checks and upgrades the schema and runs ``ReportsDB``,
the service that owns the engine and the thread pool every SQL statement runs in;
``escape`` is how texts (file names that are not UTF-8 included) are stored; ``spool``
keeps rows waiting for the database across a crash of the admin.
"""

from .db import (
    ReportsDB,
    StaleSchemaError,
    check_schema,
    current_revision,
    head_revision,
    upgrade,
)
from .files import find_reports, read_report, replay_reports, row_from_report, write_report

__all__ = [
    "ReportsDB",
    "StaleSchemaError",
    "check_schema",
    "current_revision",
    "find_reports",
    "head_revision",
    "read_report",
    "replay_reports",
    "row_from_report",
    "upgrade",
    "write_report",
]
