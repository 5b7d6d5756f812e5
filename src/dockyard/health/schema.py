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

from starlette.types import ASGIApp, Receive, Scope, Send

from dockyard.api.base import error_response, store_unavailable
from dockyard.health.endpoints import HEALTH_PATHS
from dockyard.metadata.engine import DatabaseUnavailable, describe

__all__ = ["SchemaGate", "SchemaWait"]

FIRST_DELAY = 0.5
MAX_DELAY = 10.0
"""Seconds between attempts: doubled after each, up to this."""

log = logging.getLogger("dockyard.health")


class SchemaWait:
    """Migrates the database at ``url`` as soon as it answers; ``ready`` once it has."""

    def __init__(self, url: str, first_delay: float = FIRST_DELAY) -> None:
        self._url = url
        self._first_delay = first_delay
        self.ready = False

    async def run(self) -> None:
        # Imported here: Alembic is needed only on this path.
        from dockyard.metadata import migrate

        delay = self._first_delay
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


class SchemaGate:
    """Pure ASGI middleware: 503 for everything but the health endpoints until ``wait`` is
    ready."""

    def __init__(self, app: ASGIApp, wait: SchemaWait) -> None:
        self.app = app
        self.wait = wait

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not self.wait.ready and scope["path"] not in HEALTH_PATHS:
            response = error_response(store_unavailable("metadata database"))
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)
