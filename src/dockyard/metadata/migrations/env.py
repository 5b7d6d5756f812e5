"""Alembic environment: runs the revisions on the connection ``migrate.py`` hands over."""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from dockyard.metadata.schema import metadata


def run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        # SQLite alters tables by copying them; later revisions need this to change columns.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


connection = context.config.attributes.get("connection")
if not isinstance(connection, Connection):
    raise RuntimeError("run migrations through dockyard.metadata.migrate (or `dockyard migrate`)")
run(connection)
