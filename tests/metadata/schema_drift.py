"""Differences between a migrated database and ``dockyard.metadata.schema``."""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy.engine import Connection

from dockyard.metadata.engine import create_engine
from dockyard.metadata.schema import metadata


def _compare(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, metadata))


async def schema_drift(url: str) -> list[Any]:
    """What autogenerate would put in a new revision; empty when migrations match models."""
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(_compare)
    finally:
        await engine.dispose()
