"""SQLite metadata: the contract, its connection settings, migrations, and several OS
processes sharing one database file."""

from __future__ import annotations

import asyncio
import multiprocessing
import sqlite3
from collections.abc import AsyncIterator
from multiprocessing.synchronize import Barrier
from pathlib import Path

import pytest

from contracts.metadata_suite import MetadataStoreContract, blob, manifest, upload
from dockyard.metadata.base import MetadataStore
from dockyard.metadata.engine import create_engine
from dockyard.metadata.factory import open_store
from dockyard.metadata.migrate import current_revision, head_revision, upgrade
from dockyard.metadata.sql import SqlMetadataStore

from .schema_drift import schema_drift


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path.resolve()}"


class TestSqliteMetadataStore(MetadataStoreContract):
    @pytest.fixture
    async def store(self, tmp_path: Path) -> AsyncIterator[MetadataStore]:
        store = await open_store(sqlite_url(tmp_path / "metadata.db"))
        yield store
        await store.close()


async def test_every_connection_is_configured(tmp_path: Path) -> None:
    store = await open_store(sqlite_url(tmp_path / "metadata.db"))
    try:
        async with store.engine.connect() as connection:
            settings = {
                pragma: (await connection.exec_driver_sql(f"PRAGMA {pragma}")).scalar()
                for pragma in ("journal_mode", "busy_timeout", "synchronous", "foreign_keys")
            }
    finally:
        await store.close()
    assert settings == {
        "journal_mode": "wal",
        "busy_timeout": 30_000,
        "synchronous": 1,  # NORMAL
        "foreign_keys": 1,
    }


def test_refuses_an_in_memory_database() -> None:
    with pytest.raises(ValueError, match="in-memory"):
        create_engine("sqlite://")


def _schema(path: Path) -> list[tuple[str, str, str]]:
    with sqlite3.connect(path) as connection:
        rows = connection.execute("SELECT type, name, sql FROM sqlite_master ORDER BY name")
        return list(rows)


async def test_upgrade_twice_is_a_no_op(tmp_path: Path) -> None:
    path = tmp_path / "metadata.db"
    url = sqlite_url(path)
    assert await current_revision(url) is None
    await upgrade(url)
    assert await current_revision(url) == head_revision() is not None
    schema = _schema(path)
    store = SqlMetadataStore(create_engine(url))
    await store.put_manifest(manifest("repo", "m"), ["latest"])
    await store.close()

    await upgrade(url)

    assert _schema(path) == schema
    assert await current_revision(url) == head_revision()
    store = SqlMetadataStore(create_engine(url))
    assert await store.get_tagged_manifest("repo", "latest") == manifest("repo", "m")
    await store.close()


async def test_migrations_match_the_schema_module(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path / "metadata.db")
    await upgrade(url)
    assert await schema_drift(url) == []


# -- several processes -------------------------------------------------------------------------

ROUNDS = 60
PROCESSES = 2


async def _work(url: str, name: str, barrier: Barrier) -> None:
    # Start together, so that the schema migration races as well.
    await asyncio.to_thread(barrier.wait, 60)
    store = await open_store(url)
    try:
        await asyncio.to_thread(barrier.wait, 60)
        await store.create_upload(upload(f"{name}-upload"))
        for n in range(ROUNDS):
            layer = blob(f"{name}-{n}")
            await store.link_blob("shared/repo", blob("shared"), 1)
            await store.link_blob("shared/repo", layer, 1)
            record = manifest("shared/repo", f"{name}-{n}", blobs=sorted([blob("shared"), layer]))
            await store.put_manifest(record, ["latest", f"{name}-{n}"])
            await store.put_manifest(manifest("shared/repo", "common"), ["common"])
            assert await store.acquire_upload(f"{name}-upload", 30) is not None
            await store.release_upload(f"{name}-upload", offset=n + 1)
    finally:
        await store.close()


def _process(url: str, name: str, barrier: Barrier) -> None:
    asyncio.run(_work(url, name, barrier))


async def test_processes_share_one_database_file(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path / "metadata.db")
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(PROCESSES)
    names = [f"p{n}" for n in range(PROCESSES)]
    processes = [context.Process(target=_process, args=(url, n, barrier)) for n in names]
    for process in processes:
        process.start()
    for process in processes:
        await asyncio.to_thread(process.join, 120)
    assert [p.exitcode for p in processes] == [0] * PROCESSES

    store = await open_store(url)
    try:
        tags = await store.list_tags("shared/repo", 1000)
        assert sorted(tags) == tags
        assert len(tags) == PROCESSES * ROUNDS + 2
        latest = await store.get_tagged_manifest("shared/repo", "latest")
        assert latest is not None
        assert latest.digest in {manifest("shared/repo", f"{n}-{ROUNDS - 1}").digest for n in names}
        for name in names:
            session = await store.get_upload(f"{name}-upload")
            assert session is not None
            assert session.offset == ROUNDS
        assert await current_revision(url) == head_revision()
    finally:
        await store.close()
