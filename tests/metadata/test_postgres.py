"""PostgreSQL metadata: the contract against a database made for this test session.

The server is ``DOCKYARD_TEST_POSTGRES`` (default ``postgresql://postgres@127.0.0.1:5432/test``);
the session creates a uniquely named database beside it and drops it at the end.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import socket
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
import yaml
from sqlalchemy import text
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import ProgrammingError

from contracts.metadata_suite import MetadataStoreContract, manifest
from dockyard.app import create_app
from dockyard.config import load_config
from dockyard.config.models import DATABASE_CONNECTIONS
from dockyard.metadata import engine as engine_module
from dockyard.metadata.base import MetadataStore
from dockyard.metadata.engine import AsyncDatabase, DatabaseUnavailable, describe, open_database
from dockyard.metadata.factory import open_store
from dockyard.metadata.migrate import current_revision, head_revision, upgrade
from dockyard.metadata.schema import metadata

from .schema_drift import schema_drift

SKIP_REASON = "install PostgreSQL (Debian postgresql) and asyncpg"
SERVER = os.environ.get("DOCKYARD_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")

try:
    import asyncpg
except ImportError:
    pytest.skip(SKIP_REASON, allow_module_level=True)


@contextlib.asynccontextmanager
async def _server_connection() -> AsyncIterator[asyncpg.Connection]:
    """A connection of the tests' own to the server, outside any pool under test."""
    dsn = make_url(SERVER).render_as_string(hide_password=False)
    connection = await asyncpg.connect(dsn, timeout=5)
    try:
        yield connection
    finally:
        await connection.close()


async def _admin(statement: str) -> None:
    async with _server_connection() as connection:
        await connection.execute(statement)


async def _create_database(name: str) -> None:
    # A locale that does not sort bytewise where the server has one (ICU's en-US ignores
    # case and punctuation at first), so that the tests show names are ordered bytewise
    # whatever the database's default collation.
    try:
        await _admin(
            f"CREATE DATABASE \"{name}\" TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE 'en-US'"
        )
    except asyncpg.PostgresError:
        await _admin(f'CREATE DATABASE "{name}"')


@contextmanager
def fresh_database() -> Iterator[str]:
    """The URL of a new, empty database, dropped afterwards."""
    name = f"dockyard_test_{secrets.token_hex(6)}"
    try:
        asyncio.run(_create_database(name))
    except (OSError, asyncpg.PostgresError) as error:
        pytest.skip(f"{SKIP_REASON} ({error})")
    try:
        yield make_url(SERVER).set(database=name).render_as_string(hide_password=False)
    finally:
        asyncio.run(_admin(f'DROP DATABASE "{name}" WITH (FORCE)'))


@contextmanager
def database_of(kind: str, directory: Path, *, migrate: bool = False) -> Iterator[str]:
    """The URL of a new database: ``sqlite``, a file in ``directory``, or ``postgresql``, as
    :func:`fresh_database`; migrated to head when ``migrate``."""
    with contextlib.ExitStack() as stack:
        if kind == "sqlite":
            url = f"sqlite:///{directory / 'dockyard.db'}"
        else:
            url = stack.enter_context(fresh_database())
        if migrate:
            asyncio.run(upgrade(url))
        yield url


@pytest.fixture(scope="module")
def database_url() -> Iterator[str]:
    """A fresh database, migrated to head, for this module's tests."""
    with fresh_database() as url:
        asyncio.run(upgrade(url))
        yield url


class TestPostgresMetadataStore(MetadataStoreContract):
    @pytest.fixture
    async def store(self, database_url: str) -> AsyncIterator[MetadataStore]:
        store = await open_store(database_url, migrate=False)
        tables = ", ".join(f'"{table.name}"' for table in metadata.sorted_tables)
        await store.database.transaction(
            Connection.exec_driver_sql, f"TRUNCATE {tables} RESTART IDENTITY"
        )
        yield store
        await store.close()


def test_concurrent_first_upgrades() -> None:
    with fresh_database() as url:

        async def race() -> None:
            assert await current_revision(url) is None
            await asyncio.gather(*(upgrade(url) for _ in range(4)))
            assert await current_revision(url) == head_revision() is not None

        asyncio.run(race())


async def test_upgrade_again_is_a_no_op(database_url: str) -> None:
    store = await open_store(database_url, migrate=False)
    try:
        await store.put_manifest(manifest("kept", "m"), ["latest"])
        await asyncio.gather(*(upgrade(database_url) for _ in range(3)))
        assert await current_revision(database_url) == head_revision() is not None
        assert await store.get_tagged_manifest("kept", "latest") == manifest("kept", "m")
    finally:
        await store.close()


async def test_migrations_match_the_schema_module(database_url: str) -> None:
    assert await schema_drift(database_url) == []


async def test_warming_opens_pooled_connections(database_url: str) -> None:
    database = open_database(database_url)
    assert isinstance(database, AsyncDatabase)
    try:
        await database.warm(3)
        # Three connections of their own, back in the pool for the first requests.
        assert database.engine.sync_engine.pool.checkedin() == 3
    finally:
        await database.close()


async def test_warming_opens_no_more_than_the_pool_holds(database_url: str) -> None:
    database = open_database(database_url, connections=2)
    assert isinstance(database, AsyncDatabase)
    try:
        # Not a wait of WARM_SECONDS for a third connection that the pool never gives.
        async with asyncio.timeout(engine_module.WARM_SECONDS / 2):
            await database.warm(4)
        assert database.engine.sync_engine.pool.checkedin() == 2
    finally:
        await database.close()


async def test_connections_opened_for_a_burst_serve_the_next_one(database_url: str) -> None:
    limit = DATABASE_CONNECTIONS
    database = open_database(database_url)

    async def backend() -> int:
        # Held long enough for every read of a burst to need a connection of its own.
        rows = await database.read(text("SELECT pg_backend_pid(), pg_sleep(0.2)"))
        return int(rows[0][0])

    try:
        first = set(await asyncio.gather(*(backend() for _ in range(limit))))
        assert len(first) == limit
        # The same connections again: none was closed after its use and another opened.
        assert set(await asyncio.gather(*(backend() for _ in range(limit)))) == first
        # More reads at once than connections: the rest wait for one rather than open more.
        assert set(await asyncio.gather(*(backend() for _ in range(limit + 5)))) == first
    finally:
        await database.close()


async def _backends(url: str) -> int:
    """How many connections the database at ``url`` has (other than the one asking)."""
    async with _server_connection() as connection:
        count = await connection.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
            make_url(url).database,
        )
    return int(count)


async def test_database_maxconnections_caps_each_process(database_url: str, tmp_path: Path) -> None:
    path = tmp_path / "config.yml"
    path.write_text(
        yaml.safe_dump(
            {
                "version": 0.1,
                "storage": {"filesystem": {"rootdirectory": str(tmp_path / "data")}},
                "database": {"url": database_url, "maxconnections": 3},
            }
        )
    )
    app = create_app(load_config(str(path), {}))
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 5000))
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://registry") as client,
    ):
        # Twelve lookups at once, each a read of the database.
        missing = f"sha256:{'0' * 64}"
        answers = await asyncio.gather(
            *(client.head(f"/v2/team/app{n}/blobs/{missing}") for n in range(12))
        )
        assert {answer.status_code for answer in answers} == {404}
        assert 1 <= await _backends(database_url) <= 3


async def test_warming_an_unreachable_database_gives_up_quietly(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(engine_module, "WARM_SECONDS", 0.5)
    # A port nothing listens on, with a short connect timeout: refused or timed out, not raised.
    database = open_database("postgresql://postgres@127.0.0.1:9/nothing?timeout=1")
    try:
        await database.warm(2)
    finally:
        await database.close()


async def test_a_database_out_of_reach_is_unavailable_not_an_error_of_the_statement(
    database_url: str,
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))  # bound, never listening: connections are refused
        gone = open_database(f"postgresql://postgres@127.0.0.1:{probe.getsockname()[1]}/x")
        try:
            with pytest.raises(DatabaseUnavailable, match="ConnectionRefusedError"):
                await gone.read(text("SELECT 1"))
            with pytest.raises(DatabaseUnavailable, match="ConnectionRefusedError"):
                await gone.transaction(lambda conn: conn.exec_driver_sql("SELECT 1"))
        finally:
            await gone.close()
    # A statement the server refuses is the statement's error, and says so.
    database = open_database(database_url)
    try:
        with pytest.raises(ProgrammingError, match="no_such_table") as refused:
            await database.read(text("SELECT * FROM no_such_table"))
        assert not isinstance(refused.value, DatabaseUnavailable)
        assert describe(refused.value).startswith("UndefinedTableError: relation ")
    finally:
        await database.close()


async def _cut_connections(url: str) -> None:
    """End every connection to the database at ``url``, as a restart of the server would."""
    name = make_url(url).database
    await _admin(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
        f"WHERE datname = '{name}' AND pid <> pg_backend_pid()"
    )


async def test_pooled_connections_cut_while_resting_are_replaced_unseen(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(engine_module, "PING_AFTER_IDLE", 0.2)
    database = open_database(database_url)
    try:
        await database.warm(3)
        await _cut_connections(database_url)
        await asyncio.sleep(0.3)  # they have rested: each is pinged before use
        for _ in range(4):
            assert (await database.read(text("SELECT 1")))[0][0] == 1
        assert await database.transaction(lambda conn: conn.exec_driver_sql("SELECT 2").scalar())
    finally:
        await database.close()


async def test_a_connection_cut_while_in_use_fails_one_request(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(engine_module, "PING_AFTER_IDLE", 3600.0)  # never pinged
    database = open_database(database_url)
    try:
        await database.warm(3)
        await _cut_connections(database_url)
        with pytest.raises(DatabaseUnavailable):
            await database.read(text("SELECT 1"))
        # The pool replaced every connection opened before the failure: no second one fails.
        for _ in range(4):
            assert (await database.read(text("SELECT 1")))[0][0] == 1
    finally:
        await database.close()


async def test_a_database_that_stops_answering_is_unavailable_in_bounded_time(
    database_url: str,
) -> None:
    from tcp_proxy import TcpProxy

    parsed = make_url(database_url)
    with TcpProxy(parsed.host or "127.0.0.1", parsed.port or 5432) as proxy:
        through = parsed.set(host="127.0.0.1", port=proxy.port, query={"timeout": "1"})
        database = open_database(
            through.render_as_string(hide_password=False), statement_timeout=0.5
        )
        try:
            await database.warm(2)
            assert (await database.read(text("SELECT 1")))[0][0] == 1
            proxy.stall()  # connections stay open; nothing comes back
            # Without the limits each would wait for TCP to give up, many minutes later.
            async with asyncio.timeout(10):
                with pytest.raises(DatabaseUnavailable, match="TimeoutError"):
                    await database.read(text("SELECT 1"))
                with pytest.raises(DatabaseUnavailable, match="TimeoutError"):
                    await database.transaction(lambda conn: conn.exec_driver_sql("SELECT 1"))
            proxy.flow()
            # Once the database answers again, so do the reads: no restart, no stuck connection.
            for _ in range(3):
                assert (await database.read(text("SELECT 1")))[0][0] == 1
        finally:
            await database.close()


def test_the_urls_timeouts_override_the_defaults() -> None:
    url = make_url("postgresql://u@h/d?timeout=2.5&command_timeout=7&sslmode=disable")
    stripped, chosen = engine_module._timeouts(url, 3.0)
    assert chosen == {"timeout": 2.5, "command_timeout": 7.0}
    assert stripped.query == {"sslmode": "disable"}
    stripped, chosen = engine_module._timeouts(make_url("postgresql://u@h/d"), None)
    assert chosen == {"timeout": engine_module.CONNECT_SECONDS, "command_timeout": None}
    with pytest.raises(ValueError, match=r"command_timeout in database\.url must be a number"):
        open_database("postgresql://u@h/d?command_timeout=soon")
