"""What the SQL store's modules share: dialect-specific inserts, row locks, and the
insert-or-read that settles races between writers in the database.

The statements of the frequent calls are built once, with bound parameters (``per_dialect``
builds one per dialect): building a SQLAlchemy expression takes several times longer than
running a point query on SQLite.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeAlias

from sqlalchemy import Row, Select, Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, CursorResult

from dockyard.metadata.base import MetadataError

__all__ = [
    "RACE_RETRIES",
    "dialect_insert",
    "ensure",
    "first",
    "key_share",
    "locked",
    "per_dialect",
    "rowcount",
    "tx_execute",
    "utc_now",
]

# How often to retry an insert-or-read whose row is deleted between the two statements.
RACE_RETRIES = 5

if TYPE_CHECKING:
    # Rows and selects of any shape (SQLAlchemy 2.1 types them by their column tuple).
    AnyRow: TypeAlias = Row[*tuple[Any, ...]]
    AnySelect: TypeAlias = Select[*tuple[Any, ...]]
    AnyInsert: TypeAlias = sqlite.Insert | postgresql.Insert


def utc_now() -> datetime:
    return datetime.now(UTC)


def dialect_insert(conn: Connection) -> Any:
    """The ``insert`` of the connection's dialect (``ON CONFLICT`` is dialect-specific)."""
    return sqlite.insert if conn.dialect.name == "sqlite" else postgresql.insert


def per_dialect(build: Callable[[Callable[[Table], AnyInsert]], Any]) -> dict[str, Any]:
    """An insert (``ON CONFLICT`` is dialect-specific) built for each supported dialect."""
    return {"sqlite": build(sqlite.insert), "postgresql": build(postgresql.insert)}


def key_share(query: AnySelect) -> AnySelect:
    """Lock the rows read against deletion until commit (PostgreSQL; a no-op on SQLite)."""
    return query.with_for_update(read=True, key_share=True)


def locked(conn: Connection, query: Any, skip_locked: bool = False) -> Any:
    """Lock the rows read until commit (PostgreSQL; SQLite's writers are serialised)."""
    if conn.dialect.name != "postgresql":
        return query
    return query.with_for_update(skip_locked=skip_locked)


def first(rows: Sequence[AnyRow]) -> AnyRow | None:
    return rows[0] if rows else None


def rowcount(result: Any) -> int:
    assert isinstance(result, CursorResult)
    return result.rowcount


def ensure(
    conn: Connection,
    inserts: Mapping[str, Any],
    values: Mapping[str, Any],
    lookup: AnySelect,
    key: Mapping[str, Any],
    what: str,
) -> tuple[Any, bool]:
    """Insert a row that concurrent writers may also insert, or read the winner's; the read
    locks the row against deletion until commit. Returns the first column and whether this
    call created the row."""
    insert = inserts[conn.dialect.name]
    for _ in range(RACE_RETRIES):
        value = conn.execute(insert, values).scalar_one_or_none()
        if value is not None:
            return value, True
        value = conn.execute(lookup, key).scalar_one_or_none()
        if value is not None:
            return value, False
    raise MetadataError(f"{what} was deleted concurrently {RACE_RETRIES} times")


def tx_execute(conn: Connection, statement: Any, parameters: Mapping[str, Any]) -> int:
    """A transaction of one statement; the number of rows it changed."""
    return rowcount(conn.execute(statement, parameters))
