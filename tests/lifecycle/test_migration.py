"""Migration 0007 counts what is already stored, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import insert
from sqlalchemy.engine import Connection

from dockyard.lifecycle.service import LifecycleService
from dockyard.metadata.engine import open_database
from dockyard.metadata.migrate import upgrade
from dockyard.metadata.schema import blobs, repositories, repository_blobs

NOW = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    from metadata.test_postgres import database_of

    with database_of(request.param, tmp_path) as url:
        yield url


def _stored(conn: Connection) -> None:
    conn.execute(
        insert(repositories),
        [{"id": 1, "name": "lib/a"}, {"id": 2, "name": "lib/b"}, {"id": 3, "name": "solo"}],
    )
    conn.execute(
        insert(blobs),
        [
            {"digest": "sha256:" + c * 64, "size": size, "created_at": NOW}
            for c, size in (("a", 100), ("b", 20), ("c", 3))
        ],
    )
    links = [(1, "a"), (2, "a"), (2, "b"), (3, "c")]
    conn.execute(
        insert(repository_blobs),
        [{"repository_id": r, "digest": "sha256:" + c * 64, "created_at": NOW} for r, c in links],
    )


def test_usage_of_content_stored_before_the_migration(url: str) -> None:
    async def run() -> None:
        await upgrade(url, "0006")
        database = open_database(url)
        try:
            await database.transaction(_stored)
            await upgrade(url)
            spaces = await LifecycleService(database).usage()
        finally:
            await database.close()
        found = {
            space.namespace: (space.bytes, {r.repository: r.bytes for r in space.repositories})
            for space in spaces
        }
        assert found == {
            "lib": (120, {"lib/a": 100, "lib/b": 120}),
            "solo": (3, {"solo": 3}),
        }

    asyncio.run(run())
