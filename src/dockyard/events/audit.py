"""The audit log as a consumer of the outbox: push, pull and delete entries in
``audit_events`` (see ``dockyard.identity``), written in the same transaction that removes
them from the queue, so each event is logged exactly once."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, insert

from dockyard.events.outbox import PendingEvent, acknowledge
from dockyard.metadata.engine import Database
from dockyard.metadata.schema import audit_events

__all__ = ["AUDIT_CONSUMER", "AuditLog", "audit_row"]

AUDIT_CONSUMER = "audit"


def _time(text: str) -> datetime:
    when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def _client(addr: str | None) -> str | None:
    if not addr:
        return None
    host, _, port = addr.rpartition(":")
    return host if host and port.isdigit() else addr


def audit_row(body: str) -> dict[str, Any]:
    """The audit line of one event body."""
    event = json.loads(body)
    target = event.get("target", {})
    action = event["action"]
    detail = None
    if action == "mount":
        # A mount is a push of a blob the registry already has.
        action = "push"
        detail = f"mounted from {target.get('fromRepository')}"
    return {
        "time": _time(event["timestamp"]),
        "action": action,
        "outcome": "success",
        "actor": event.get("actor", {}).get("name"),
        "client_address": _client(event.get("request", {}).get("addr")),
        "repository": target.get("repository"),
        "digest": target.get("digest"),
        "tag": target.get("tag"),
        "detail": detail,
    }


def _log(conn: Connection, events: Sequence[PendingEvent]) -> None:
    conn.execute(insert(audit_events), [audit_row(event.body) for event in events])
    acknowledge(conn, AUDIT_CONSUMER, [event.id for event in events])


class AuditLog:
    def __init__(self, database: Database) -> None:
        self._db = database

    @property
    def name(self) -> str:
        return AUDIT_CONSUMER

    @property
    def label(self) -> str:
        return AUDIT_CONSUMER

    async def deliver(self, events: Sequence[PendingEvent]) -> str:
        await self._db.transaction(_log, events)
        return "logged"
