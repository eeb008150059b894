"""Reports: the YAML report file of every finished job and its row in the reports database.

``files`` reads and writes report files; ``model`` is the database schema, migrated by
Alembic (``migrations/``); ``db`` checks and upgrades the schema and runs ``ReportsDB``,
the service that owns the engine and the thread pool every SQL statement runs in;
``escape`` is how texts (file names that are not UTF-8 included) are stored; ``spool``
keeps rows waiting for the database across a crash of the admin.

Nothing is imported here: a worker writes report files (``files``) without loading
SQLAlchemy, which only the admin's ``db`` needs.
"""
