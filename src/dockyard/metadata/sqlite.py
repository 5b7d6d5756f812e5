"""SQLite engines that are safe with several processes on one database file.

Every connection runs in WAL mode (readers never block the writer), waits up to
``BUSY_TIMEOUT_MS`` for a lock instead of failing, and enforces foreign keys. The sqlite3
driver's own transaction handling is switched off so that SQLAlchemy emits BEGIN itself:
transactions that write begin with ``BEGIN IMMEDIATE``, taking the write lock up front. A
deferred transaction that reads and then writes would have to upgrade its lock, and two such
transactions waiting on each other fail with SQLITE_BUSY whatever the timeout.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Row, Select, event
from sqlalchemy import create_engine as create_sync_engine
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from dockyard.metadata.sql import WRITE_OPTION, SqlMetadataStore

__all__ = ["BUSY_TIMEOUT_MS", "SqliteMetadataStore", "create_sqlite_engine"]

BUSY_TIMEOUT_MS = 30_000

_PRAGMAS = (
    # First, so that the journal mode switch below waits for other processes too.
    f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}",
    "PRAGMA journal_mode = WAL",
    # Durable at checkpoints, not at every commit: WAL keeps the database consistent.
    "PRAGMA synchronous = NORMAL",
    "PRAGMA foreign_keys = ON",
)


def _on_connect(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        for pragma in _PRAGMAS:
            cursor.execute(pragma)
    finally:
        cursor.close()


def _on_begin(connection: Connection) -> None:
    writes = connection.get_execution_options().get(WRITE_OPTION, False)
    connection.exec_driver_sql("BEGIN IMMEDIATE" if writes else "BEGIN DEFERRED")


# A reader waits this long at most (it blocks the event loop); WAL readers are rarely kept
# waiting at all, only while a crashed writer's log is being recovered.
READ_BUSY_TIMEOUT_MS = 1_000


def _on_read_connect(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout = {READ_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA query_only = ON")
    finally:
        cursor.close()


class SqliteMetadataStore(SqlMetadataStore):
    """SQLite with a fast read path: point reads of a local database file take tens of
    microseconds, less than one hop to aiosqlite's thread, so reads run synchronously on the
    calling thread through a plain (sync) engine in autocommit mode, each query its own
    snapshot. Writes keep going through the async engine."""

    def __init__(self, engine: AsyncEngine) -> None:
        super().__init__(engine)
        url = engine.url.set(drivername="sqlite+pysqlite")
        self._reader: Engine = create_sync_engine(url, isolation_level="AUTOCOMMIT")
        event.listen(self._reader, "connect", _on_read_connect)

    async def _read(self, query: Select[Any]) -> Sequence[Row[Any]]:
        with self._reader.connect() as conn:
            return conn.execute(query).all()

    async def close(self) -> None:
        self._reader.dispose()
        await super().close()


def create_sqlite_engine(url: str) -> AsyncEngine:
    """An engine for a ``sqlite:///relative`` or ``sqlite:////absolute`` database file
    (``sqlite+aiosqlite`` URLs are accepted as they are)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        raise ValueError(f"not a SQLite URL: {parsed!r}")
    if parsed.database in (None, "", ":memory:"):
        # Each pooled connection would see its own empty database.
        raise ValueError("SQLite metadata needs a database file, not an in-memory database")
    engine = create_async_engine(parsed.set(drivername="sqlite+aiosqlite"))
    event.listen(engine.sync_engine, "connect", _on_connect)
    event.listen(engine.sync_engine, "begin", _on_begin)
    return engine
