"""Differences between a migrated database and ``dockyard.metadata.schema``."""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy.engine import Connection

from dockyard.metadata.engine import open_database
from dockyard.metadata.schema import metadata


def _compare(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, metadata))


async def schema_drift(url: str) -> list[Any]:
    """What autogenerate would put in a new revision; empty when migrations match models."""
    database = open_database(url)
    try:
        return await database.transaction(_compare)
    finally:
        await database.close()
