"""SQLite engines that are safe with several processes on one database file.

Every connection runs in WAL mode (readers never block the writer), waits up to
``BUSY_TIMEOUT_MS`` for a lock instead of failing, and enforces foreign keys. The sqlite3
driver's own transaction handling is switched off so that SQLAlchemy emits BEGIN itself:
transactions that write begin with ``BEGIN IMMEDIATE``, taking the write lock up front. A
deferred transaction that reads and then writes would have to upgrade its lock, and two such
transactions waiting on each other fail with SQLITE_BUSY whatever the timeout.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from dockyard.metadata.sql import WRITE_OPTION

__all__ = ["BUSY_TIMEOUT_MS", "create_sqlite_engine"]

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
