"""Queueing webhook deliveries: the outbox consumer ``webhooks`` turns each tagged manifest
push into one ``webhook_deliveries`` row per active webhook of the repository, with its
payload, in the transaction that acknowledges the event (so each is queued once)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, select

from dockyard.events.outbox import Outbox, PendingEvent, acknowledge
from dockyard.events.sink import BLOB_MEDIA_TYPE
from dockyard.events.webhook_payload import parse_push, payload, repository_info
from dockyard.metadata.schema import webhook_deliveries, webhooks
from dockyard.metadata.sql_common import dialect_insert

__all__ = ["WEBHOOKS_CONSUMER", "WebhookQueue", "ignores"]

WEBHOOKS_CONSUMER = "webhooks"


def ignores(action: str, media_type: str | None) -> bool:
    """The outbox filter: only manifest pushes (tags are looked at when queueing)."""
    return action != "push" or media_type in (None, BLOB_MEDIA_TYPE)


def _insert_ignoring_repeats(conn: Connection) -> Any:
    return dialect_insert(conn)(webhook_deliveries).on_conflict_do_nothing(
        index_elements=["webhook_id", "event"]
    )


def _queue(conn: Connection, events: Sequence[PendingEvent], now: datetime) -> int:
    rows: list[dict[str, Any]] = []
    for pending in events:
        push = parse_push(pending.body)
        if push is None:
            continue
        hooks = conn.execute(
            select(webhooks.c.id).where(
                webhooks.c.repository == push.repository, webhooks.c.active.is_(True)
            )
        ).all()
        if not hooks:
            continue
        repository = repository_info(conn, push)
        rows += [
            {
                "webhook_id": hook.id,
                "event": push.event,
                "created_at": now,
                "payload": payload(push, repository, hook.id),
                "state": "pending",
                "attempts": 0,
                "next_attempt_at": now,
            }
            for hook in hooks
        ]
    if rows:
        conn.execute(_insert_ignoring_repeats(conn), rows)
    acknowledge(conn, WEBHOOKS_CONSUMER, [event.id for event in events])
    return len(rows)


class WebhookQueue:
    """The outbox consumer: queues a delivery per active webhook, in the transaction that
    takes the events off the outbox (so each is queued once)."""

    def __init__(self, outbox: Outbox) -> None:
        self._db = outbox.database

    @property
    def name(self) -> str:
        return WEBHOOKS_CONSUMER

    @property
    def label(self) -> str:
        return WEBHOOKS_CONSUMER

    async def deliver(self, events: Sequence[PendingEvent]) -> str:
        await self._db.transaction(_queue, events, datetime.now(UTC))
        return "queued"
