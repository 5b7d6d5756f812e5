"""SQLite databases that are safe with several processes on one database file.

Every connection runs in WAL mode (readers never block the writer) and waits up to
``BUSY_TIMEOUT_MS`` for a lock instead of failing. The sqlite3 driver's own transaction
handling is switched off so that SQLAlchemy emits BEGIN itself, and every write transaction
begins with ``BEGIN IMMEDIATE``, taking the write lock up front: a deferred transaction that
reads and then writes would have to upgrade its lock, and two such transactions waiting on
each other fail with SQLITE_BUSY whatever the timeout.

Statements on a local database file take microseconds, less than a hop between threads, so
the cost of a transaction is the number of hops it makes:

- A write transaction (BEGIN IMMEDIATE ... COMMIT) runs whole in one hop to a worker thread,
  so that waiting for the write lock, held perhaps by another process, never blocks the event
  loop. SQLite admits one writer at a time, so the writers of one process first take turns on
  a lock of their own, where a waiting thread wakes the moment the previous one commits; the
  one whose turn it is tries for SQLite's lock at short intervals (see ``_begin_immediate``).
- A read runs synchronously on the calling thread, in autocommit mode, each query its own
  snapshot: in WAL mode a reader waits for nothing but the recovery of a crashed writer's log.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Concatenate, ParamSpec, TypeVar

from anyio import CapacityLimiter
from anyio.to_thread import run_sync
from sqlalchemy import Executable, Row, create_engine, event
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import QueuePool

__all__ = ["BUSY_TIMEOUT_MS", "READ_BUSY_TIMEOUT_MS", "SqliteDatabase"]

P = ParamSpec("P")
T = TypeVar("T")

BUSY_TIMEOUT_MS = 30_000

# A reader waits this long at most, blocking the event loop meanwhile.
READ_BUSY_TIMEOUT_MS = 1_000

# Worker threads a process lends to write transactions at once: one runs while the others
# wait their turn, ready to start the moment it commits. They come out of a limiter of their
# own, so that queued writers never hold the threads that file I/O needs.
WRITE_THREADS = 4

# Pooled connections, so that no request opens one of its own. Writers take their turn before
# they take a connection, so one serves them all (the overflow is slack); reads run one at a
# time on each event loop thread.
WRITE_POOL_SIZE = 1
READ_POOL_SIZE = 4

# Pauses between tries for the write lock, growing from the first to the last.
_FIRST_PAUSE = 0.000_2
_LAST_PAUSE = 0.002

_PRAGMAS = (
    # First, so that the journal mode switch below waits for other processes too.
    f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}",
    "PRAGMA journal_mode = WAL",
    # Durable at checkpoints, not at every commit: WAL keeps the database consistent.
    "PRAGMA synchronous = NORMAL",
    "PRAGMA foreign_keys = ON",
)

_READ_PRAGMAS = (
    f"PRAGMA busy_timeout = {READ_BUSY_TIMEOUT_MS}",
    "PRAGMA query_only = ON",
)


def _execute_all(dbapi_connection: Any, pragmas: Sequence[str]) -> None:
    cursor = dbapi_connection.cursor()
    try:
        for pragma in pragmas:
            cursor.execute(pragma)
    finally:
        cursor.close()


def _until_not_busy(step: Callable[[], object]) -> None:
    """Run ``step`` until SQLite stops answering SQLITE_BUSY, for up to ``BUSY_TIMEOUT_MS``,
    trying again at short intervals; the last error once the time is up, or any other."""
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    pause = _FIRST_PAUSE
    while True:
        try:
            step()
            return
        except sqlite3.OperationalError as error:
            code = getattr(error, "sqlite_errorcode", 0) & 0xFF
            if code != sqlite3.SQLITE_BUSY or time.monotonic() >= deadline:
                raise
        time.sleep(pause)
        pause = min(2 * pause, _LAST_PAUSE)


def _on_write_connect(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None
    # Switching a new database to WAL needs an exclusive lock, and SQLite answers BUSY at once,
    # without its busy handler, while another process holds the write lock (as when several
    # processes open a new database file together). The pragmas may all run again.
    _until_not_busy(lambda: _execute_all(dbapi_connection, _PRAGMAS))


def _begin_immediate(dbapi_connection: Any) -> None:
    """``BEGIN IMMEDIATE``, waiting up to ``BUSY_TIMEOUT_MS`` for the write lock.

    SQLite's busy handler sleeps longer and longer between tries, up to 100 ms, while a
    writer of another process holds the lock for a fraction of a millisecond; so this tries
    again at short intervals instead.
    """
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA busy_timeout = 0")
        try:
            _until_not_busy(lambda: cursor.execute("BEGIN IMMEDIATE"))
        except sqlite3.OperationalError as error:
            # Wrapped as SQLAlchemy wraps the errors of every other statement.
            raise DBAPIError.instance("BEGIN IMMEDIATE", None, error, sqlite3.Error) from error
    finally:
        cursor.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        cursor.close()


def _on_write_begin(connection: Connection) -> None:
    _begin_immediate(connection.connection.dbapi_connection)


def _on_read_connect(dbapi_connection: Any, _record: Any) -> None:
    _execute_all(dbapi_connection, _READ_PRAGMAS)


class SqliteDatabase:
    """A SQLite database file (``sqlite:///relative`` or ``sqlite:////absolute``; any
    ``sqlite+driver`` URL is taken to mean that file) through two sync engines, one that
    writes and one that reads."""

    def __init__(self, url: str) -> None:
        parsed = make_url(url)
        if parsed.get_backend_name() != "sqlite":
            raise ValueError(f"not a SQLite URL: {parsed!r}")
        if parsed.database in (None, "", ":memory:"):
            # Each pooled connection would see its own empty database.
            raise ValueError("SQLite metadata needs a database file, not an in-memory database")
        parsed = parsed.set(drivername="sqlite+pysqlite")
        # Connections move between threads: the pool hands them to whichever thread asks.
        threads = {"check_same_thread": False}
        self._writer = create_engine(
            parsed,
            poolclass=QueuePool,
            pool_size=WRITE_POOL_SIZE,
            max_overflow=WRITE_THREADS,
            connect_args=threads,
        )
        event.listen(self._writer, "connect", _on_write_connect)
        event.listen(self._writer, "begin", _on_write_begin)
        self._reader = create_engine(
            parsed,
            isolation_level="AUTOCOMMIT",
            poolclass=QueuePool,
            pool_size=READ_POOL_SIZE,
            max_overflow=4 * READ_POOL_SIZE,
            connect_args=threads,
        )
        event.listen(self._reader, "connect", _on_read_connect)
        self._write_lock = threading.Lock()
        self._write_threads = CapacityLimiter(WRITE_THREADS)

    @property
    def dialect(self) -> str:
        return "sqlite"

    @property
    def writer(self) -> Engine:
        """The engine write transactions run on (in worker threads)."""
        return self._writer

    @property
    def reader(self) -> Engine:
        """The engine reads run on (on the calling thread)."""
        return self._reader

    async def transaction(
        self,
        body: Callable[Concatenate[Connection, P], T],
        /,
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> T:
        def run() -> T:
            with self._write_lock, self._writer.begin() as conn:
                return body(conn, *args, **kwargs)

        # Not abandoned on cancellation: the transaction commits or rolls back in its
        # thread, and the connection goes back to the pool clean.
        return await run_sync(run, limiter=self._write_threads)

    async def read(
        self, query: Executable, parameters: Mapping[str, Any] | None = None
    ) -> Sequence[Row[Any]]:
        with self._reader.connect() as conn:
            return conn.execute(query, parameters).all()

    async def warm(self, connections: int) -> None:
        """Nothing to do: opening a SQLite file costs microseconds."""

    async def close(self) -> None:
        self._writer.dispose()
        self._reader.dispose()
