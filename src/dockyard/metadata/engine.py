"""Databases from URLs, and how a transaction runs on each.

A transaction is written once, as a plain function of a sync SQLAlchemy ``Connection``
(statements executed one after another, no awaits); a ``Database`` runs it:

- PostgreSQL (``postgresql://user:password@host:port/database``, or ``postgres://``) through
  asyncpg, the function inside ``AsyncConnection.run_sync``: each statement is awaited on the
  event loop, the function itself is unaware of it.
- SQLite (``sqlite:///relative/path``, ``sqlite:////absolute/path``) through the standard
  library's sqlite3, the whole transaction in one hop to a worker thread (see ``sqlite.py``).

A PostgreSQL server that cannot be reached, drops the connection, stops answering, is shutting
down or starting up, or has no connection to spare raises :class:`DatabaseUnavailable` (the
registry answers 503 and tries again with the next request): a condition of the moment, unlike
the errors of a statement. A transaction cut off that way may or may not have committed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, Concatenate, ParamSpec, Protocol, TypeVar

from sqlalchemy import Executable, Row, event
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.exc import DBAPIError, DisconnectionError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import QueuePool

from dockyard.config.models import DATABASE_CONNECTIONS
from dockyard.metadata.sqlite import SqliteDatabase

__all__ = [
    "WARM_POOL",
    "AsyncDatabase",
    "Database",
    "DatabaseUnavailable",
    "describe",
    "open_database",
]

WARM_POOL = 4
"""Connections each process opens at start-up (see ``Database.warm``)."""
WARM_SECONDS = 10.0
"""How long warming the pool may take before it gives up (the database may be down)."""
CONNECT_SECONDS = 10.0
"""How long opening a PostgreSQL connection may take (asyncpg's default is a minute); the
URL's ``timeout`` parameter overrides it."""
STATEMENT_SECONDS = 10.0
"""How long a statement may wait for PostgreSQL's answer; the URL's ``command_timeout``
parameter overrides it. Without a limit, a server that stops answering without closing the
connection (a network partition, a frozen host) holds requests until TCP gives up, a quarter
of an hour later. The registry's statements take milliseconds; garbage collection works in
batches."""
PING_AFTER_IDLE = 1.0
"""A pooled connection that has rested this many seconds is pinged before use."""
_RETURNED = "dockyard_returned"

log = logging.getLogger("dockyard.metadata")

P = ParamSpec("P")
T = TypeVar("T")


class DatabaseUnavailable(Exception):
    """The database could not be reached or gave up on the connection; try again later."""


def _unavailable(error: BaseException) -> bool:
    """Whether ``error`` (or one it was raised from) says the server was out of reach rather
    than that a statement failed."""
    import asyncpg

    reasons = (
        OSError,  # refused, unreachable, reset, name not resolved
        TimeoutError,  # no connection, or no answer to a statement, in time
        PoolTimeout,  # every pooled connection busy for the pool's timeout
        asyncpg.PostgresConnectionError,  # lost, or failed to open
        asyncpg.exceptions.OperatorInterventionError,  # shutting down, starting up
        asyncpg.TooManyConnectionsError,
    )
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, DBAPIError) and seen.connection_invalidated:
            return True
        if isinstance(seen, reasons):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


@contextlib.contextmanager
def _outages_as_unavailable() -> Iterator[None]:
    """Raise :class:`DatabaseUnavailable` for what the block raises because the server was out
    of reach; let every other error through as it is."""
    try:
        yield
    except Exception as error:
        if _unavailable(error):
            raise DatabaseUnavailable(describe(error)) from error
        raise


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
        committed when it returns, rolled back when it raises; :class:`DatabaseUnavailable`
        when the database is out of reach."""
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
        # A read is one statement, which sees a snapshot of its own without a transaction
        # around it: autocommit spares it a BEGIN and a ROLLBACK, two round trips of four.
        self._reader = engine.execution_options(isolation_level="AUTOCOMMIT")

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
        with _outages_as_unavailable():
            async with self._engine.begin() as conn:
                return await conn.run_sync(body, *args, **kwargs)

    async def read(
        self, query: Executable, parameters: Mapping[str, Any] | None = None
    ) -> Sequence[Row[Any]]:
        with _outages_as_unavailable():
            async with self._reader.connect() as conn:
                return (await conn.execute(query, parameters)).all()

    async def warm(self, connections: int) -> None:
        # A new PostgreSQL connection costs a backend fork, a handshake and asyncpg's setup
        # queries (milliseconds of CPU on both sides): paid at start-up rather than by the first
        # burst of concurrent requests. Held together, so that each is a connection of its own
        # (no more than the pool holds: the rest would wait for the first to be returned).
        pool = self._engine.sync_engine.pool
        if isinstance(pool, QueuePool):
            connections = min(connections, pool.size())
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


def describe(error: BaseException) -> str:
    """The driver's own error, by name, and the first line of its message (SQLAlchemy's
    wrappers add the statement and a link). Never the URL: it may hold a password."""
    while True:
        inner = error.orig if isinstance(error, DBAPIError) else error.__cause__
        # asyncio's timeouts raise TimeoutError from the CancelledError that ended the wait.
        if not isinstance(inner, BaseException) or isinstance(inner, asyncio.CancelledError):
            break
        error = inner
    text = str(error).strip().splitlines()
    if not text and isinstance(error, TimeoutError):
        text = ["no answer in time"]
    return f"{type(error).__name__}: {text[0]}" if text else type(error).__name__


def _ping_when_idle(engine: AsyncEngine) -> None:
    """Check a pooled connection before use once it has rested ``PING_AFTER_IDLE`` seconds:
    the network, a proxy or a database restart may have cut it meanwhile. One in use moments
    ago is trusted: a ping costs three round trips (SQLAlchemy's ``pool_pre_ping`` pinged
    every time, more than half of what a read cost). A connection cut while in use fails its
    request (503) and has the pool replace every connection opened before it."""
    pool_events = engine.sync_engine

    @event.listens_for(pool_events, "connect")
    def connected(dbapi_connection: Any, record: Any) -> None:
        record.info[_RETURNED] = time.monotonic()

    @event.listens_for(pool_events, "checkin")
    def returned(dbapi_connection: Any, record: Any) -> None:
        record.info[_RETURNED] = time.monotonic()

    @event.listens_for(pool_events, "checkout")
    def taken(dbapi_connection: Any, record: Any, proxy: Any) -> None:
        if time.monotonic() - record.info.get(_RETURNED, 0.0) < PING_AFTER_IDLE:
            return
        try:
            dbapi_connection.ping()
        except Exception as error:
            # The pool drops this connection and checks out another (a new one if need be).
            raise DisconnectionError(describe(error)) from error


def _timeouts(url: URL, statements: float | None) -> tuple[URL, dict[str, float | None]]:
    """asyncpg's ``timeout`` (to connect) and ``command_timeout`` (per statement): the URL's
    own, as numbers, else ours; and the URL without them."""
    chosen: dict[str, float | None] = {"timeout": CONNECT_SECONDS, "command_timeout": statements}
    query = dict(url.query)
    for name in chosen:
        if name in query:
            value = query.pop(name)
            try:
                chosen[name] = float(value if isinstance(value, str) else value[-1])
            except ValueError:
                raise ValueError(f"{name} in database.url must be a number of seconds") from None
    return url.set(query=query), chosen


def open_database(
    url: str,
    *,
    statement_timeout: float | None = STATEMENT_SECONDS,
    connections: int = DATABASE_CONNECTIONS,
) -> Database:
    """The database at ``url``, configured for concurrent use by many processes. Nothing is
    connected until the first transaction or read. ``statement_timeout`` (seconds, or None
    for no limit) bounds the wait for each PostgreSQL statement's answer, unless the URL says
    otherwise (see :data:`STATEMENT_SECONDS`); ``connections`` caps PostgreSQL connections."""
    parsed = make_url(url.replace("postgres://", "postgresql://", 1))
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return SqliteDatabase(url)
    if backend == "postgresql":
        # Connections are opened once and kept: a request beyond ``connections`` waits for one
        # (milliseconds) rather than opening its own, which costs a backend fork, a handshake
        # and asyncpg's setup queries, more than most requests. 2 replicas x 2 workers x 20
        # stays within PostgreSQL's default of 100 connections.
        parsed, timeouts = _timeouts(parsed, statement_timeout)
        engine = create_async_engine(
            parsed.set(drivername="postgresql+asyncpg"),
            pool_size=connections,
            max_overflow=0,
            connect_args=timeouts,
        )
        _ping_when_idle(engine)
        return AsyncDatabase(engine)
    raise ValueError(f"unsupported metadata database URL scheme: {parsed.drivername}")
