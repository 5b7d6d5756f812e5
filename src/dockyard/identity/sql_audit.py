"""The audit log on SQLAlchemy Core, for :class:`dockyard.identity.sql.SqlIdentityStore`:
adding an event, the queries that read events, and the purge."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Select, delete, insert, select
from sqlalchemy.engine import Connection

from dockyard.identity.base import AuditEvent, AuditFilter, AuditRecord
from dockyard.metadata.schema import audit_events, login_failures

__all__ = ["FIELDS", "event", "events_query", "page_query", "record", "tx_add_event", "tx_purge"]

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


def tx_add_event(connection: Connection, event: AuditEvent) -> None:
    connection.execute(insert(audit_events).values({name: getattr(event, name) for name in FIELDS}))


def events_query(since: datetime | None, actor: str | None, limit: int | None) -> Select[Any]:
    """The latest events (``limit`` of them), newest first."""
    query = select(*(audit_events.c[name] for name in FIELDS))
    if since is not None:
        query = query.where(audit_events.c.time >= since)
    if actor is not None:
        query = query.where(audit_events.c.actor == actor)
    query = query.order_by(audit_events.c.time.desc(), audit_events.c.id.desc())
    if limit is not None:
        query = query.limit(limit)
    return query


def event(row: Any) -> AuditEvent:
    return AuditEvent(**{name: getattr(row, name) for name in FIELDS})


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
    return AuditRecord(id=int(row.id), event=event(row))


def tx_purge(connection: Connection, before: datetime) -> int:
    purged = connection.execute(delete(audit_events).where(audit_events.c.time < before))
    connection.execute(delete(login_failures).where(login_failures.c.window_start < before))
    return int(purged.rowcount)
