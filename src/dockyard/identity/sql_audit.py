"""Queries over the audit log and its purge, on SQLAlchemy Core, for
:class:`dockyard.identity.sql.SqlIdentityStore`."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Select, delete, select
from sqlalchemy.engine import Connection

from dockyard.identity.base import AuditEvent, AuditFilter, AuditRecord
from dockyard.metadata.schema import audit_events, login_failures

__all__ = ["FIELDS", "page_query", "record", "tx_purge"]

FIELDS = (
    "time",
    "action",
    "outcome",
    "actor",
    "client_address",
    "repository",
    "digest",
    "tag",
    "detail",
)


def page_query(where: AuditFilter, after: int | None, limit: int) -> Select[Any]:
    query = select(audit_events.c.id, *(audit_events.c[name] for name in FIELDS))
    if where.since is not None:
        query = query.where(audit_events.c.time >= where.since)
    if where.until is not None:
        query = query.where(audit_events.c.time < where.until)
    for name in ("actor", "action", "repository", "outcome"):
        wanted = getattr(where, name)
        if wanted is not None:
            query = query.where(audit_events.c[name] == wanted)
    if after is not None:
        query = query.where(audit_events.c.id > after)
    return query.order_by(audit_events.c.id).limit(max(limit, 0))


def record(row: Any) -> AuditRecord:
    return AuditRecord(
        id=int(row.id), event=AuditEvent(**{name: getattr(row, name) for name in FIELDS})
    )


def tx_purge(connection: Connection, before: datetime) -> int:
    purged = connection.execute(delete(audit_events).where(audit_events.c.time < before))
    connection.execute(delete(login_failures).where(login_failures.c.window_start < before))
    return int(purged.rowcount)
