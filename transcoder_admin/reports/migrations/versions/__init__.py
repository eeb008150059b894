"""Alembic revisions of the reports database, oldest first."""
