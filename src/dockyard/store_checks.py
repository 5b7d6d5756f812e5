"""Asking the stores a config names whether its keys are right: ``check-config`` asks both,
``serve`` asks the object store before it starts (and finds the database when it migrates).

Each probe answers with the key at fault, or a warning when the store could not be reached at
all: an outage blames no key, and a registry may start during one (it answers 503 until the
store is back).
"""

from __future__ import annotations

import asyncio

from dockyard.config import Config, Problem

__all__ = ["probe_database", "probe_storage"]


def probe_storage(config: Config) -> tuple[Problem | None, str | None]:
    """Ask the object store whether the config reaches its bucket: the key at fault, or a
    warning if the store could not be reached (it may be down; no key is known wrong)."""
    if config.storage.s3 is None:
        return None, None
    from dockyard.storage.s3.bucket import S3Unavailable
    from dockyard.storage.s3.probe import probe_bucket

    try:
        return probe_bucket(config.storage.s3), None
    except S3Unavailable as exc:
        return None, f"storage.s3: unavailable ({exc})"


def probe_database(config: Config) -> tuple[Problem | None, str | None]:
    """Connect to a PostgreSQL ``database.url``: the key at fault (credentials, database
    name), or a warning if the server could not be reached. SQLite is a local file, made on
    first use: nothing to ask."""
    from dockyard.metadata.engine import DatabaseUnavailable, describe, open_database

    url = config.database_url
    if url.startswith("sqlite:"):
        return None, None

    async def ask() -> None:
        from sqlalchemy import text

        database = open_database(url)
        try:
            await database.read(text("SELECT 1"))
        finally:
            await database.close()

    try:
        asyncio.run(ask())
    except DatabaseUnavailable as exc:
        return None, f"database.url: unavailable ({exc})"
    except Exception as exc:  # the message only: the URL may hold a password
        return Problem("database.url", describe(exc)), None
    return None, None
