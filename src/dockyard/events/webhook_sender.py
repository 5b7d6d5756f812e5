"""Sending queued webhook deliveries: the holder of the lease ``webhooks:send`` POSTs each due
delivery to its webhook's URL. Every try is recorded in ``webhook_attempts``; a failed one is
tried again after ``backoff``, doubled each time up to ``maxbackoff``, until ``maxattempts``.
Finished deliveries are pruned once older than ``history``."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import Connection, and_, delete, insert, select, update

from dockyard.config.models import WebhooksConfig
from dockyard.events.lease import Lease
from dockyard.events.outbox import Outbox
from dockyard.events.webhook_network import webhook_client
from dockyard.events.webhook_payload import SIGNATURE_HEADER, sign
from dockyard.metadata.schema import webhook_attempts, webhook_deliveries, webhooks

__all__ = ["WebhookSender", "prune", "run_webhooks"]

log = logging.getLogger("dockyard.events")

SENDER_LEASE = "webhooks:send"
USER_AGENT = "Dockyard-Webhook/1"
POLL_INTERVAL = 0.5
LEASE_SECONDS = 30.0
BATCH = 16
PRUNE_EVERY = 600.0
MAX_ERROR = 500


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class _Due:
    id: int
    attempts: int
    payload: str
    url: str
    secret: str | None


@dataclass(frozen=True, slots=True)
class _Outcome:
    time: datetime
    response_code: int | None
    error: str | None
    duration_ms: int

    @property
    def delivered(self) -> bool:
        return self.response_code is not None and 200 <= self.response_code < 300


def _due_query(now: datetime, limit: int) -> Any:
    return (
        select(
            webhook_deliveries.c.id,
            webhook_deliveries.c.attempts,
            webhook_deliveries.c.payload,
            webhooks.c.url,
            webhooks.c.secret,
        )
        .join(webhooks, webhooks.c.id == webhook_deliveries.c.webhook_id)
        .where(
            webhook_deliveries.c.state == "pending",
            webhook_deliveries.c.next_attempt_at <= now,
            webhooks.c.active.is_(True),
        )
        .order_by(webhook_deliveries.c.next_attempt_at, webhook_deliveries.c.id)
        .limit(limit)
    )


def _record(conn: Connection, due: _Due, outcome: _Outcome, settings: WebhooksConfig) -> None:
    attempt = due.attempts + 1
    counted = conn.execute(
        update(webhook_deliveries)
        .where(
            webhook_deliveries.c.id == due.id,
            # Another sender that already recorded this attempt wins (a stalled lease).
            webhook_deliveries.c.attempts == due.attempts,
        )
        .values(attempts=attempt, response_code=outcome.response_code)
    )
    if not counted.rowcount:
        return
    conn.execute(
        insert(webhook_attempts).values(
            delivery_id=due.id,
            attempt=attempt,
            time=outcome.time,
            response_code=outcome.response_code,
            error=outcome.error,
            duration_ms=outcome.duration_ms,
        )
    )
    changes: dict[str, Any]
    if outcome.delivered or attempt >= settings.maxattempts:
        changes = {
            "state": "delivered" if outcome.delivered else "failed",
            "next_attempt_at": None,
            "finished_at": outcome.time,
        }
    else:
        wait = min(settings.backoff * 2 ** (attempt - 1), settings.maxbackoff)
        changes = {"next_attempt_at": outcome.time + timedelta(seconds=wait)}
    conn.execute(
        update(webhook_deliveries)
        # Still pending: switching the webhook off while this attempt ran gave it up.
        .where(webhook_deliveries.c.id == due.id, webhook_deliveries.c.state == "pending")
        .values(**changes)
    )


def prune(conn: Connection, before: datetime) -> int:
    finished = conn.execute(
        delete(webhook_deliveries).where(
            and_(
                webhook_deliveries.c.state != "pending",
                webhook_deliveries.c.finished_at < before,
            )
        )
    )
    return int(finished.rowcount)


class WebhookSender:
    """Sends due deliveries while holding the ``webhooks:send`` lease (one process of all
    replicas at a time; a batch goes out concurrently, each with its own timeout)."""

    def __init__(
        self,
        outbox: Outbox,
        settings: WebhooksConfig,
        client: httpx.AsyncClient,
        holder: str,
        *,
        poll: float = POLL_INTERVAL,
        lease_seconds: float = LEASE_SECONDS,
    ) -> None:
        self._db = outbox.database
        self._settings = settings
        self._client = client
        self._poll = poll
        self._lease = Lease(outbox, SENDER_LEASE, holder, lease_seconds)

    async def run_forever(self) -> None:
        await self._lease.run_forever(self._send_while_held, "webhook delivery failed")

    async def _send_while_held(self) -> None:
        renew_at = time.monotonic() + self._lease.seconds / 3
        pruned_at = time.monotonic() - PRUNE_EVERY
        while True:
            if time.monotonic() >= renew_at:
                if not await self._lease.claim():
                    return
                renew_at = time.monotonic() + self._lease.seconds / 3
            if time.monotonic() - pruned_at >= PRUNE_EVERY:
                before = _now() - timedelta(seconds=self._settings.history)
                await self._db.transaction(prune, before)
                pruned_at = time.monotonic()
            if not await self.send_due():
                await asyncio.sleep(self._poll)

    async def send_due(self) -> int:
        """Try every due delivery (up to a batch) once; how many were tried."""
        rows = await self._db.read(_due_query(_now(), BATCH))
        due = [_Due(r.id, r.attempts, r.payload, r.url, r.secret) for r in rows]
        await asyncio.gather(*(self._send(one) for one in due))
        return len(due)

    async def _send(self, due: _Due) -> None:
        outcome = await self._attempt(due)
        if not outcome.delivered:
            log.warning(
                "webhook delivery %d to %s failed (attempt %d): %s",
                due.id,
                due.url,
                due.attempts + 1,
                outcome.error,
            )
        try:
            await self._db.transaction(_record, due, outcome, self._settings)
        except Exception:
            # The others of the batch are recorded all the same; this one is tried again.
            log.exception("could not record webhook delivery %d", due.id)

    async def _attempt(self, due: _Due) -> _Outcome:
        body = due.payload.encode()
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            "X-Dockyard-Event": "push",
            "X-Dockyard-Delivery": str(due.id),
        }
        if due.secret:
            headers[SIGNATURE_HEADER] = sign(due.secret, body)
        started = _now()
        clock = time.monotonic()
        code: int | None = None
        error: str | None = None
        try:
            response = await self._client.post(
                due.url, content=body, headers=headers, timeout=self._settings.timeout
            )
        except httpx.HTTPError as failure:
            error = str(failure) or type(failure).__name__
        else:
            code = response.status_code
            if not 200 <= code < 300:
                error = f"HTTP {code}"
        elapsed = int((time.monotonic() - clock) * 1000)
        return _Outcome(started, code, error[:MAX_ERROR] if error else None, elapsed)


async def run_webhooks(outbox: Outbox, settings: WebhooksConfig, holder: str) -> None:
    """Send webhooks until cancelled (a background task of the app)."""
    client = webhook_client(settings)
    try:
        await WebhookSender(outbox, settings, client, holder).run_forever()
    finally:
        await client.aclose()
