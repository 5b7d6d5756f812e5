"""Open a metadata store from a database URL (see ``engine.py`` for the URL forms)."""

from __future__ import annotations

from dockyard.config.models import DATABASE_CONNECTIONS
from dockyard.metadata.engine import open_database
from dockyard.metadata.sql import SqlMetadataStore

__all__ = ["open_store"]


async def open_store(
    url: str, *, migrate: bool = True, connections: int = DATABASE_CONNECTIONS
) -> SqlMetadataStore:
    """The store at ``url``, its schema first brought up to date unless ``migrate`` is off
    (for deployments that run ``dockyard migrate`` as a separate step); ``connections`` caps
    the PostgreSQL connections it opens."""
    if migrate:
        # Alembic (and Mako) only where migrations run: the workers of `dockyard serve` skip them.
        from dockyard.metadata.migrate import upgrade

        await upgrade(url)
    return SqlMetadataStore(open_database(url, connections=connections))
