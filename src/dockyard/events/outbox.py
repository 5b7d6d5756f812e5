"""The outbox in the metadata database: events, who still has to deliver each, and who sends.

An event is one ``events`` row plus one ``event_deliveries`` row per consumer, inserted in
the transaction of the change (``insert_events``, called by the ``MetadataStore``). A consumer's
queue is its delivery rows in event id order; a delivered event's row is deleted.

Why rows per consumer and not a cursor (the highest id delivered): on PostgreSQL ids come
from a sequence, drawn when a transaction inserts, not when it commits. A transaction that
drew id 7 may commit after one that drew id 8 was already delivered; a cursor at 8 would skip
7 for ever. A delivery row is simply found by the next poll, whatever its id.

One process sends for a consumer at a time: the holder of its lease in ``event_consumers``,
renewed while it sends. A holder that dies delays delivery by one lease at most; a holder that
stalls past its lease may send a batch twice, which at-least-once delivery allows (events carry
a unique ``id`` for receivers to drop repeats). A released lease keeps its time (expired at
once), so ``lease_until`` always tells when a consumer was last sent for: ``forget`` relies on
it to tell an abandoned queue from a live one.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, delete, exists, func, insert, or_, select, update

from dockyard.metadata.base import OutboxEvent
from dockyard.metadata.engine import Database
from dockyard.metadata.schema import event_consumers, event_deliveries, events
from dockyard.metadata.sql_common import dialect_insert

__all__ = ["Outbox", "PendingEvent", "acknowledge", "insert_events"]


@dataclass(frozen=True, slots=True)
class PendingEvent:
    id: int
    body: str


def _now() -> datetime:
    return datetime.now(UTC)


# One statement for many rows (SQLAlchemy's "insertmanyvalues"), ids given back in row order.
_INSERT_EVENTS = insert(events).returning(events.c.id, sort_by_parameter_order=True)
_INSERT_DELIVERY = insert(event_deliveries)


def insert_events(conn: Connection, outbox: Sequence[OutboxEvent], now: datetime) -> None:
    """Record ``outbox`` in the caller's transaction (events without consumers are skipped)."""
    wanted = [event for event in outbox if event.consumers]
    if not wanted:
        return
    rows = [{"created_at": now, "body": event.body} for event in wanted]
    ids = conn.execute(_INSERT_EVENTS, rows).scalars().all()
    deliveries = [
        {"consumer": name, "event_id": event_id}
        for event, event_id in zip(wanted, ids, strict=True)
        for name in event.consumers
    ]
    conn.execute(_INSERT_DELIVERY, deliveries)


def acknowledge(conn: Connection, consumer: str, ids: Sequence[int]) -> None:
    """Forget ``consumer``'s deliveries of ``ids``, and the events nobody else still owes."""
    if not ids:
        return
    conn.execute(
        delete(event_deliveries).where(
            event_deliveries.c.consumer == consumer, event_deliveries.c.event_id.in_(ids)
        )
    )
    conn.execute(delete(events).where(events.c.id.in_(ids), ~_owed()))


def _owed() -> Any:
    return exists().where(event_deliveries.c.event_id == events.c.id)


def _pending_query(consumer: str, limit: int) -> Any:
    return (
        select(events.c.id, events.c.body)
        .join(event_deliveries, event_deliveries.c.event_id == events.c.id)
        .where(event_deliveries.c.consumer == consumer)
        .order_by(event_deliveries.c.event_id)
        .limit(limit)
    )


def _add(conn: Connection, outbox: Sequence[OutboxEvent]) -> None:
    insert_events(conn, outbox, _now())


def _claim(conn: Connection, consumer: str, holder: str, now: datetime, until: datetime) -> bool:
    taken = conn.execute(
        update(event_consumers)
        .where(
            event_consumers.c.name == consumer,
            or_(
                event_consumers.c.holder == holder,
                event_consumers.c.lease_until.is_(None),
                event_consumers.c.lease_until <= now,
            ),
        )
        .values(holder=holder, lease_until=until)
    )
    if taken.rowcount:
        return True
    created = conn.execute(
        dialect_insert(conn)(event_consumers)
        .values(name=consumer, holder=holder, lease_until=until)
        .on_conflict_do_nothing(index_elements=["name"])
    )
    return bool(created.rowcount)


def _release(conn: Connection, consumer: str, holder: str, now: datetime) -> None:
    conn.execute(
        update(event_consumers)
        .where(event_consumers.c.name == consumer, event_consumers.c.holder == holder)
        .values(holder=None, lease_until=now)
    )


def _forget(
    conn: Connection, prefix: str, keep: Collection[str], idle_before: datetime
) -> list[str]:
    consumer = event_deliveries.c.consumer
    # NULL lease_until (a lease released before releases kept their time) counts as idle.
    sent_for_lately = exists().where(
        event_consumers.c.name == consumer, event_consumers.c.lease_until >= idle_before
    )
    # Also old events only: a consumer just added elsewhere may queue before its first claim.
    queued_before = exists().where(
        events.c.id == event_deliveries.c.event_id, events.c.created_at < idle_before
    )
    result = conn.execute(
        delete(event_deliveries)
        .where(
            consumer.startswith(prefix, autoescape=True),
            consumer.not_in(list(keep)),
            ~sent_for_lately,
            queued_before,
        )
        .returning(consumer)
    )
    return list(result.scalars())


def _sweep(conn: Connection) -> int:
    result = conn.execute(delete(events).where(~_owed()))
    return int(result.rowcount)


class Outbox:
    """The outbox's queues and leases, over the metadata database."""

    def __init__(self, database: Database) -> None:
        self._db = database

    @property
    def database(self) -> Database:
        return self._db

    async def add(self, outbox: Sequence[OutboxEvent]) -> None:
        """Record events that go with no change (pulls), in one transaction."""
        if any(event.consumers for event in outbox):
            await self._db.transaction(_add, outbox)

    async def pending(self, consumer: str, limit: int) -> list[PendingEvent]:
        """The oldest events ``consumer`` still has to deliver, by id."""
        rows = await self._db.read(_pending_query(consumer, limit))
        return [PendingEvent(row.id, row.body) for row in rows]

    async def acknowledge(self, consumer: str, ids: Sequence[int]) -> None:
        await self._db.transaction(acknowledge, consumer, list(ids))

    async def depth(self, consumer: str) -> int:
        query = select(func.count()).where(event_deliveries.c.consumer == consumer)
        rows = await self._db.read(query)
        return int(rows[0][0])

    async def holder(self, consumer: str) -> tuple[str | None, datetime | None]:
        query = select(event_consumers.c.holder, event_consumers.c.lease_until).where(
            event_consumers.c.name == consumer
        )
        rows = await self._db.read(query)
        return (rows[0].holder, rows[0].lease_until) if rows else (None, None)

    async def claim(self, consumer: str, holder: str, seconds: float) -> bool:
        """Take (or renew) the lease to send ``consumer``'s events for ``seconds``; False if
        another holder's lease runs."""
        now = _now()
        current, until = await self.holder(consumer)
        # A read first: most tries find another holder, and need no write transaction.
        if current not in (None, holder) and until is not None and until > now:
            return False
        expiry = now + timedelta(seconds=seconds)
        return await self._db.transaction(_claim, consumer, holder, now, expiry)

    async def release(self, consumer: str, holder: str) -> None:
        await self._db.transaction(_release, consumer, holder, _now())

    async def forget(
        self, prefix: str, keep: Collection[str], idle_before: datetime
    ) -> Counter[str]:
        """Delete the queues of consumers named ``prefix...`` but not in ``keep`` that nobody
        has sent for since ``idle_before`` (no lease held since), in one statement: only
        their events queued before then. How many rows went, by consumer. The events nobody
        owes any more stay for :meth:`sweep`."""
        return Counter(await self._db.transaction(_forget, prefix, keep, idle_before))

    async def sweep(self) -> int:
        """Delete events no consumer owes (left when two consumers acknowledged at once)."""
        return await self._db.transaction(_sweep)
