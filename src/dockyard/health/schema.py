"""Starting while the database is out of reach.

``dockyard serve`` brings the schema up to date before it forks the workers. When the
database does not answer then, it starts anyway and tells the workers so
(``SCHEMA_PENDING_ENV`` in ``dockyard.server``): each one retries the migration in the
background (safe from every process at once, see ``metadata/migrate.py``) and, until it has
succeeded, answers every request but the health endpoints with 503 ``UNAVAILABLE``. A
replica restarted during a database outage so comes back with the database, with no second
restart.
"""

from __future__ import annotations

import asyncio
import logging

from dockyard.api.base import store_unavailable
from dockyard.errors import RegistryError
from dockyard.metadata.engine import DatabaseUnavailable, describe

__all__ = ["SchemaWait"]

FIRST_DELAY = 0.5
MAX_DELAY = 10.0
"""Seconds between attempts: doubled after each, up to this."""

log = logging.getLogger("dockyard.health")


class SchemaWait:
    """Migrates the database at ``url`` as soon as it answers; ``ready`` once it has."""

    def __init__(self, url: str) -> None:
        self._url = url
        self.ready = False

    def refusal(self) -> RegistryError | None:
        """For the health endpoints' ``Gate``: 503 until the schema is up to date."""
        return None if self.ready else store_unavailable("metadata database")

    async def run(self) -> None:
        # Imported here: Alembic is needed only on this path.
        from dockyard.metadata import migrate

        delay = FIRST_DELAY
        while True:
            try:
                await migrate.upgrade(self._url)
            except DatabaseUnavailable:
                pass  # `serve` said so at start; the 503s are in the access log
            except Exception as error:  # the message only: the URL may hold a password
                log.error("database.url: cannot bring the schema up to date: %s", describe(error))
            else:
                self.ready = True
                log.info("database.url: the database answers; the schema is up to date")
                return
            await asyncio.sleep(delay)
            delay = min(delay * 2, MAX_DELAY)
