"""Databases from URLs, and how a transaction runs on each.

A transaction is written once, as a plain function of a sync SQLAlchemy ``Connection``
(statements executed one after another, no awaits); a ``Database`` runs it:

- PostgreSQL (``postgresql://user:password@host:port/database``, or ``postgres://``) through
  asyncpg, the function inside ``AsyncConnection.run_sync``: each statement is awaited on the
  event loop, the function itself is unaware of it.
- SQLite (``sqlite:///relative/path``, ``sqlite:////absolute/path``) through the standard
  library's sqlite3, the whole transaction in one hop to a worker thread (see ``sqlite.py``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Concatenate, ParamSpec, Protocol, TypeVar

from sqlalchemy import Executable, Row
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from dockyard.metadata.sqlite import SqliteDatabase

__all__ = [
    "PG_POOL_OVERFLOW",
    "PG_POOL_SIZE",
    "WARM_POOL",
    "AsyncDatabase",
    "Database",
    "open_database",
]

PG_POOL_SIZE = 12
PG_POOL_OVERFLOW = 8
WARM_POOL = 4
"""Connections each process opens at start-up (see ``Database.warm``)."""
WARM_SECONDS = 10.0
"""How long warming the pool may take before it gives up (the database may be down)."""

log = logging.getLogger("dockyard.metadata")

P = ParamSpec("P")
T = TypeVar("T")


class Database(Protocol):
    """Where a store's transactions run. Bound to the event loop that first uses it."""

    @property
    def dialect(self) -> str:
        """The SQLAlchemy dialect name: ``sqlite`` or ``postgresql``."""
        ...

    async def transaction(
        self,
        body: Callable[Concatenate[Connection, P], T],
        /,
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> T:
        """Run ``body(connection, *args, **kwargs)`` in one transaction that may write:
        committed when it returns, rolled back when it raises."""
        ...

    async def read(
        self, query: Executable, parameters: Mapping[str, Any] | None = None
    ) -> Sequence[Row[Any]]:
        """All rows of a read-only query, which sees a snapshot of its own."""
        ...

    async def warm(self, connections: int) -> None:
        """Open up to ``connections`` pooled connections ahead of need; best effort, never
        raises (an unreachable database is found by the requests that need it)."""
        ...

    async def close(self) -> None: ...


class AsyncDatabase:
    """A database behind an async SQLAlchemy engine; the database owns the engine."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    @property
    def engine(self) -> AsyncEngine:
        return self._engine

    @property
    def dialect(self) -> str:
        return self._engine.dialect.name

    async def transaction(
        self,
        body: Callable[Concatenate[Connection, P], T],
        /,
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> T:
        async with self._engine.begin() as conn:
            return await conn.run_sync(body, *args, **kwargs)

    async def read(
        self, query: Executable, parameters: Mapping[str, Any] | None = None
    ) -> Sequence[Row[Any]]:
        async with self._engine.connect() as conn:
            return (await conn.execute(query, parameters)).all()

    async def warm(self, connections: int) -> None:
        # A new PostgreSQL connection costs a backend fork, a handshake and asyncpg's setup
        # queries (milliseconds of CPU on both sides): paid at start-up rather than by the first
        # burst of concurrent requests. Held together, so that each is a connection of its own.
        opened = 0
        all_open = asyncio.Event()

        async def hold() -> None:
            nonlocal opened
            async with self._engine.connect():
                opened += 1
                if opened == connections:
                    all_open.set()
                await all_open.wait()

        try:
            async with asyncio.timeout(WARM_SECONDS):
                await asyncio.gather(*(hold() for _ in range(connections)))
        except Exception as error:  # best effort: see the protocol
            log.debug("warming the database pool stopped: %s", error)

    async def close(self) -> None:
        await self._engine.dispose()


def open_database(url: str) -> Database:
    """The database at ``url``, configured for concurrent use by many processes. Nothing is
    connected until the first transaction or read."""
    parsed = make_url(url.replace("postgres://", "postgresql://", 1))
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return SqliteDatabase(url)
    if backend == "postgresql":
        # Connections may be cut by the network, a proxy or a database restart (pre-ping).
        # The pool keeps enough connections for a busy worker: with SQLAlchemy's default of 5
        # most requests opened and closed an overflow connection, costing PostgreSQL as much
        # CPU as the registry itself. 20 at most per process keeps 2 replicas x 2 workers
        # within PostgreSQL's default of 100 connections.
        engine = create_async_engine(
            parsed.set(drivername="postgresql+asyncpg"),
            pool_pre_ping=True,
            pool_size=PG_POOL_SIZE,
            max_overflow=PG_POOL_OVERFLOW,
        )
        return AsyncDatabase(engine)
    raise ValueError(f"unsupported metadata database URL scheme: {parsed.drivername}")
