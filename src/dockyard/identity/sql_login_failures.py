"""Failed logins counted per key in a time window, on SQLAlchemy Core: the query and
transactions :class:`dockyard.identity.sql.SqlIdentityStore` runs for them."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, case, delete, literal, select
from sqlalchemy.engine import Connection

from dockyard.metadata.schema import UtcDateTime, login_failures
from dockyard.metadata.sql_common import dialect_insert

__all__ = ["failures_query", "tx_clear", "tx_record"]


def failures_query(keys: Sequence[str]) -> Select[Any]:
    return select(
        login_failures.c.key, login_failures.c.window_start, login_failures.c.failures
    ).where(login_failures.c.key.in_(list(set(keys))))


def tx_record(
    connection: Connection, keys: Sequence[str], now: datetime, window: timedelta
) -> None:
    expired = login_failures.c.window_start <= now - window
    started = literal(now, UtcDateTime())
    for key in sorted(set(keys)):
        # One statement, so that failures counted at once on several replicas all count.
        connection.execute(
            dialect_insert(connection)(login_failures)
            .values(key=key, window_start=now, failures=1)
            .on_conflict_do_update(
                index_elements=["key"],
                set_={
                    "window_start": case((expired, started), else_=login_failures.c.window_start),
                    "failures": case((expired, 1), else_=login_failures.c.failures + 1),
                },
            )
        )


def tx_clear(connection: Connection, keys: Sequence[str]) -> None:
    connection.execute(delete(login_failures).where(login_failures.c.key.in_(list(keys))))
