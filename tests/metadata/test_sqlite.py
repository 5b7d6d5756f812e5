"""SQLite metadata: the contract, its connection settings, how writers wait for the write
lock, migrations, and several OS processes sharing one database file."""

from __future__ import annotations

import asyncio
import multiprocessing
import sqlite3
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from multiprocessing.synchronize import Barrier
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import OperationalError

from contracts.metadata_suite import MetadataStoreContract, blob, manifest, upload
from dockyard.metadata import sqlite as sqlite_module
from dockyard.metadata.base import MetadataStore
from dockyard.metadata.engine import open_database
from dockyard.metadata.factory import open_store
from dockyard.metadata.migrate import current_revision, head_revision, upgrade
from dockyard.metadata.sql import SqlMetadataStore
from dockyard.metadata.sqlite import (
    BUSY_TIMEOUT_MS,
    READ_BUSY_TIMEOUT_MS,
    READ_POOL_SIZE,
    WRITE_POOL_SIZE,
    WRITE_THREADS,
    SqliteDatabase,
)

from .schema_drift import schema_drift


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path.resolve()}"


class TestSqliteMetadataStore(MetadataStoreContract):
    @pytest.fixture
    async def store(self, tmp_path: Path) -> AsyncIterator[MetadataStore]:
        store = await open_store(sqlite_url(tmp_path / "metadata.db"))
        yield store
        await store.close()


def _write_settings(connection: Connection) -> dict[str, Any]:
    pragmas = ("journal_mode", "busy_timeout", "synchronous", "foreign_keys")
    return {p: connection.exec_driver_sql(f"PRAGMA {p}").scalar() for p in pragmas}


async def test_every_connection_is_configured(tmp_path: Path) -> None:
    store = await open_store(sqlite_url(tmp_path / "metadata.db"))
    database = store.database
    try:
        writes = await database.transaction(_write_settings)
        reads = {
            pragma: (await database.read(text(f"PRAGMA {pragma}")))[0][0]
            for pragma in ("journal_mode", "busy_timeout", "query_only")
        }
    finally:
        await store.close()
    assert writes == {
        "journal_mode": "wal",
        "busy_timeout": BUSY_TIMEOUT_MS,
        "synchronous": 1,  # NORMAL
        "foreign_keys": 1,
    }
    assert reads == {"journal_mode": "wal", "busy_timeout": READ_BUSY_TIMEOUT_MS, "query_only": 1}


def test_refuses_an_in_memory_database() -> None:
    with pytest.raises(ValueError, match="in-memory"):
        open_database("sqlite://")


def _in_transaction(connection: Connection) -> bool:
    dbapi_connection = connection.connection.dbapi_connection
    assert isinstance(dbapi_connection, sqlite3.Connection)
    return dbapi_connection.in_transaction


async def test_writes_begin_immediate(tmp_path: Path) -> None:
    """A write transaction holds the write lock from its start: another connection cannot
    take it meanwhile, not even before the first write."""
    path = tmp_path / "metadata.db"
    store = await open_store(sqlite_url(path))

    def body(connection: Connection) -> bool:
        assert _in_transaction(connection)
        other = sqlite3.connect(path, timeout=0, isolation_level=None)
        try:
            other.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as error:
            return "locked" in str(error)
        finally:
            other.close()
        return False

    try:
        assert await store.database.transaction(body) is True
    finally:
        await store.close()


async def test_waiting_for_the_write_lock_leaves_the_event_loop_free(tmp_path: Path) -> None:
    path = tmp_path / "metadata.db"
    store = await open_store(sqlite_url(path))
    # Another process's writer, as far as SQLite can tell.
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")
    try:
        write = asyncio.create_task(store.link_blob("repo", blob("a"), 1))
        started = time.monotonic()
        for _ in range(20):
            await asyncio.sleep(0.01)
        # A writer waiting on the event loop's thread would hold it for the busy timeout.
        assert time.monotonic() - started < BUSY_TIMEOUT_MS / 1000 / 2
        assert not write.done()
        # Reads go on from their own snapshot meanwhile.
        assert await store.get_blob(blob("a")) is None
        holder.execute("COMMIT")
        await asyncio.wait_for(write, 10)
        assert await store.get_repository_blob("repo", blob("a")) is not None
    finally:
        holder.close()
        await store.close()


async def test_a_new_file_switches_to_wal_while_another_process_writes(tmp_path: Path) -> None:
    path = tmp_path / "metadata.db"
    # Another process creating the same new file: it holds the write lock, in the rollback
    # journal mode a new file starts in, which SQLite will not switch while it is held.
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")
    holder.execute("CREATE TABLE other (x)")
    release = asyncio.get_running_loop().call_later(0.3, holder.execute, "COMMIT")
    database = open_database(sqlite_url(path))
    try:
        started = time.monotonic()
        await database.transaction(Connection.exec_driver_sql, "CREATE TABLE mine (x)")
        assert time.monotonic() - started >= 0.25  # it waited for the lock, then went on
        mode = await database.read(text("PRAGMA journal_mode"))
        assert mode[0][0] == "wal"
    finally:
        release.cancel()
        holder.close()
        await database.close()


async def test_a_writer_gives_up_after_the_busy_timeout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "metadata.db"
    store = await open_store(sqlite_url(path))
    monkeypatch.setattr(sqlite_module, "BUSY_TIMEOUT_MS", 300)
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        started = time.monotonic()
        with pytest.raises(OperationalError, match="locked"):
            await store.link_blob("repo", blob("a"), 1)
        assert 0.3 <= time.monotonic() - started < 5
    finally:
        holder.close()
    try:
        # The connection went back to the pool usable, and the store goes on.
        await store.link_blob("repo", blob("a"), 1)
        assert await store.get_repository_blob("repo", blob("a")) is not None
    finally:
        await store.close()


async def test_concurrent_requests_reuse_connections(tmp_path: Path) -> None:
    store = await open_store(sqlite_url(tmp_path / "metadata.db"))
    database = store.database
    assert isinstance(database, SqliteDatabase)
    opened = []
    for engine in (database.writer, database.reader):
        event.listen(engine, "connect", lambda *_: opened.append(1))

    async def request(n: int) -> None:
        await store.create_upload(upload(f"u{n}"))
        assert await store.acquire_upload(f"u{n}", 30) is not None
        assert await store.get_upload(f"u{n}") is not None
        await store.complete_upload(f"u{n}", "repo", blob(f"b{n}"), n)

    try:
        await asyncio.gather(*(request(n) for n in range(32)))
        assert 2 <= len(opened) <= WRITE_POOL_SIZE + WRITE_THREADS + READ_POOL_SIZE
        first_round = len(opened)
        for start in (100, 200):
            await asyncio.gather(*(request(n) for n in range(start, start + 32)))
        assert len(opened) == first_round
    finally:
        await store.close()


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
    store = SqlMetadataStore(open_database(url))
    await store.put_manifest(manifest("repo", "m"), ["latest"])
    await store.close()

    await upgrade(url)

    assert _schema(path) == schema
    assert await current_revision(url) == head_revision()
    store = SqlMetadataStore(open_database(url))
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
            await store.create_upload(upload(f"{name}-{n}", repository="shared/repo"))
            assert await store.acquire_upload(f"{name}-{n}", 30) is not None
            await store.complete_upload(f"{name}-{n}", "shared/repo", layer, 1)
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
        # Only the long-lived sessions are left; the completed ones went with their blobs.
        cutoff = datetime.now(UTC) + timedelta(minutes=1)
        left = await store.list_uploads_before(cutoff, 1000)
        assert sorted(u.id for u in left) == [f"{name}-upload" for name in names]
        assert await current_revision(url) == head_revision()
    finally:
        await store.close()
