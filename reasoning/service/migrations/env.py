"""Alembic's entry point: migrations run on the connection `database.upgrade` passes in.

Run programmatically only (no alembic.ini): the service, `reasoning db upgrade` and the
tests all go through `reasoning.service.database.upgrade`.
"""

from alembic import context

from reasoning.service.database import METADATA

MIGRATION_LOCK = 7_406_201
"""PostgreSQL advisory lock held while migrating: replicas starting together take turns
(SQLite's BEGIN IMMEDIATE does the same there)."""

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=METADATA, render_as_batch=True)
with context.begin_transaction():
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK})")
    context.run_migrations()
