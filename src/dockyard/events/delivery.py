"""Deliver one consumer's events, in order, at least once, with retries and backoff.

Every worker of every replica runs a ``Deliverer`` per consumer; only the holder of the
consumer's lease (see ``outbox.py``) sends. The holder takes the oldest pending events (up
to ``batch``), hands them to the consumer, and deletes their delivery rows only once the
consumer has them. A failure (no answer, timeout, any status but 2xx/3xx, 4xx included) is
logged and the same batch is tried again: at once while there have been fewer than
``threshold`` failures in a row, then every ``backoff`` (Distribution's retry policy). Nothing
is ever dropped; later events wait behind the failing one, which keeps them in order.

Delivery runs in background tasks; a request never waits for it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from dockyard.events.lease import Lease
from dockyard.events.outbox import Outbox, PendingEvent

if TYPE_CHECKING:
    # prometheus-client is loaded only when http.debug.prometheus is on.
    from dockyard.events.metrics import EventMetrics

__all__ = ["Consumer", "Deliverer", "DeliveryFailed", "RetryPolicy"]

log = logging.getLogger("dockyard.events")

POLL_INTERVAL = 0.5
"""Seconds between looks for new events while the queue is empty."""
LEASE_SECONDS = 30.0
BATCH = 32
IMMEDIATE_RETRY_PAUSE = 0.05
SWEEP_EVERY = 600.0


class DeliveryFailed(Exception):
    def __init__(self, status: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        """The HTTP status code, or ``error`` when there was no answer."""


class Consumer(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def label(self) -> str:
        """The name in metrics and logs."""
        ...

    async def deliver(self, events: Sequence[PendingEvent]) -> str:
        """Hand over ``events`` (oldest first); the status on success, ``DeliveryFailed``
        otherwise."""
        ...


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    threshold: int = 10
    backoff: float = 1.0

    def pause(self, failures: int) -> float:
        return self.backoff if failures >= self.threshold else IMMEDIATE_RETRY_PAUSE


class Deliverer:
    def __init__(
        self,
        outbox: Outbox,
        consumer: Consumer,
        policy: RetryPolicy,
        holder: str,
        metrics: EventMetrics | None = None,
        *,
        lease_seconds: float = LEASE_SECONDS,
        poll: float = POLL_INTERVAL,
        batch: int = BATCH,
    ) -> None:
        self._outbox = outbox
        self._consumer = consumer
        self._policy = policy
        self._metrics = metrics
        self._lease = Lease(outbox, consumer.name, holder, lease_seconds)
        self._poll = poll
        self._batch = batch
        self.failures = 0
        self._loop_time = time.monotonic

    async def run_forever(self) -> None:
        await self._lease.run_forever(
            self._send_while_held, "event delivery to %s failed", self._consumer.label
        )

    async def _send_while_held(self) -> None:
        renew_at = self._loop_time() + self._lease.seconds / 3
        swept_at = resume_at = self._loop_time()
        while True:
            now = self._loop_time()
            if now >= renew_at:
                if not await self._lease.claim():
                    return
                renew_at = self._loop_time() + self._lease.seconds / 3
            if now < resume_at:
                # Waiting (backoff, or an empty queue), renewing the lease meanwhile.
                await asyncio.sleep(min(resume_at, renew_at) - now)
                continue
            if now - swept_at >= SWEEP_EVERY:
                await self._outbox.sweep()
                swept_at = now
            resume_at = self._loop_time() + await self.send_once()

    async def send_once(self) -> float:
        """Try the oldest pending batch once; how long to wait before the next try."""
        pending = await self._outbox.pending(self._consumer.name, self._batch)
        label = self._consumer.label
        if self._metrics is not None:
            depth = len(pending)
            if depth == self._batch:
                depth = await self._outbox.depth(self._consumer.name)
            self._metrics.depth.labels(label).set(depth)
        if not pending:
            return self._poll
        try:
            status = await self._consumer.deliver(pending)
        except DeliveryFailed as failure:
            self.failures += 1
            pause = self._policy.pause(self.failures)
            log.warning(
                "delivery of %d events to %s failed (%s, %d in a row): %s; retrying in %.2fs",
                len(pending),
                label,
                failure.status,
                self.failures,
                failure,
                pause,
            )
            if self._metrics is not None:
                self._metrics.deliveries.labels(label, failure.status).inc()
                self._metrics.failures.labels(label, failure.status).inc()
            return pause
        self.failures = 0
        await self._outbox.acknowledge(self._consumer.name, [event.id for event in pending])
        if self._metrics is not None:
            self._metrics.deliveries.labels(label, status).inc()
            self._metrics.events.labels(label).inc(len(pending))
        return 0.0
