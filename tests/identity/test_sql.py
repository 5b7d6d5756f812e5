"""The identity store on SQLite and on PostgreSQL, sharing the metadata store's database."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import Connection

from contracts.identity_suite import IdentityStoreContract
from dockyard.identity.base import IdentityStore
from dockyard.identity.sql import SqlIdentityStore
from dockyard.metadata.factory import open_store
from dockyard.metadata.migrate import upgrade
from dockyard.metadata.schema import metadata


class TestSqliteIdentityStore(IdentityStoreContract):
    @pytest.fixture
    async def store(self, tmp_path: Path) -> AsyncIterator[IdentityStore]:
        content = await open_store(f"sqlite:///{tmp_path / 'dockyard.db'}")
        yield SqlIdentityStore(content.database)
        await content.close()


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    from metadata.test_postgres import fresh_database

    with fresh_database() as url:
        asyncio.run(upgrade(url))
        yield url


class TestPostgresIdentityStore(IdentityStoreContract):
    @pytest.fixture
    async def store(self, postgres_url: str) -> AsyncIterator[IdentityStore]:
        content = await open_store(postgres_url, migrate=False)
        tables = ", ".join(f'"{table.name}"' for table in metadata.sorted_tables)
        await content.database.transaction(
            Connection.exec_driver_sql, f"TRUNCATE {tables} RESTART IDENTITY"
        )
        yield SqlIdentityStore(content.database)
        await content.close()


def test_an_unknown_dialect_is_refused() -> None:
    class Other:
        dialect = "mysql"

    with pytest.raises(ValueError, match="mysql"):
        SqlIdentityStore(Other())  # type: ignore[arg-type]
