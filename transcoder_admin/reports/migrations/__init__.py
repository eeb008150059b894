"""Alembic migrations of the reports database (run through ``reports.db.upgrade``)."""
