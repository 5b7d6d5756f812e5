"""Events for one app, built from its config: the sink the core writes to and the background
tasks that deliver (one ``Deliverer`` per consumer, and the pull buffer's flush).

Consumers: each enabled ``notifications.endpoints`` entry, and the audit log when
``auth.builtin`` is on. With none, the sink is ``NO_EVENTS`` and nothing is written.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import uuid
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from dockyard.config import Config
from dockyard.config.fields import parse_tcp_address
from dockyard.config.notifications import EndpointConfig
from dockyard.events.audit import AUDIT_CONSUMER, AuditLog
from dockyard.events.delivery import Consumer, Deliverer, RetryPolicy
from dockyard.events.endpoint_queues import consumer_name, forget_removed_endpoints
from dockyard.events.outbox import Outbox
from dockyard.events.pulls import PullBuffer
from dockyard.events.sink import NO_EVENTS, ConsumerFilter, Events, EventSink
from dockyard.events.webhook_queue import WEBHOOKS_CONSUMER
from dockyard.events.webhook_queue import ignores as webhooks_ignore
from dockyard.metadata.engine import Database

if TYPE_CHECKING:
    from dockyard.observability.metrics import Metrics

__all__ = ["EventService"]

log = logging.getLogger("dockyard.events")

REMOVED_CHECK_EVERY = 3600.0
"""Seconds between looks for queues of endpoints that were taken out of the config."""


def _never(action: str, media_type: str | None) -> bool:
    return False


def _source_addr(config: Config) -> str:
    try:
        _, port = parse_tcp_address(config.http.addr)
    except ValueError:
        port = None
    host = socket.gethostname()
    return f"{host}:{port}" if port else host


class EventService:
    def __init__(self, config: Config, database: Database, metrics: Metrics | None) -> None:
        self._config = config
        self._metrics = metrics
        self.outbox = Outbox(database)
        self.endpoints: list[EndpointConfig] = list(config.notifications.active)
        self.audit = "builtin" in config.auth
        self.instance_id = str(uuid.uuid4())
        self.pulls: PullBuffer | None = None
        filters = [ConsumerFilter(consumer_name(e), e.ignores) for e in self.endpoints]
        if self.audit:
            filters.append(ConsumerFilter(AUDIT_CONSUMER, _never))
        # Repository webhooks are configured through the management API of auth.builtin.
        self.webhooks = self.audit
        if self.webhooks:
            filters.append(ConsumerFilter(WEBHOOKS_CONSUMER, webhooks_ignore))
        self.sink: EventSink = NO_EVENTS
        if filters:
            self.pulls = PullBuffer(self.outbox)
            self.sink = Events(
                filters,
                source_addr=_source_addr(config),
                instance_id=self.instance_id,
                include_references=config.notifications.events.includereferences,
                host=config.http.host,
                pull_buffer=self.pulls.add,
            )

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """Deliver in the background while the block runs; flush buffered pulls at the end.
        Queues of endpoints taken out of the config go at start-up and hourly checks after
        (see ``forget_removed_endpoints`` for when it is safe)."""
        await self._forget_removed_endpoints()
        checks = asyncio.create_task(self._forget_removed_endpoints_forever())
        try:
            if self.pulls is None:
                yield
            else:
                async with self._delivering(self.pulls):
                    yield
        finally:
            checks.cancel()
            await asyncio.gather(checks, return_exceptions=True)

    async def _forget_removed_endpoints(self) -> None:
        try:
            await forget_removed_endpoints(self.outbox, self._config.notifications.endpoints)
        except Exception as error:
            # Housekeeping: the queues wait for the next check; serving goes on.
            log.warning("could not remove the queues of removed endpoints: %s", error)

    async def _forget_removed_endpoints_forever(self) -> None:
        while True:
            await asyncio.sleep(REMOVED_CHECK_EVERY)
            await self._forget_removed_endpoints()

    @contextlib.asynccontextmanager
    async def _delivering(self, pulls: PullBuffer) -> AsyncIterator[None]:
        # Imported here: only apps that send notifications need an HTTP client.
        import httpx

        from dockyard.events.endpoint import HttpEndpoint

        event_metrics = None
        if self._metrics is not None:
            from dockyard.events.metrics import EventMetrics

            event_metrics = EventMetrics(self._metrics)
        holder = f"{socket.gethostname()}/{os.getpid()}/{self.instance_id}"
        client = httpx.AsyncClient(follow_redirects=True)
        deliverers: list[Deliverer] = []
        for endpoint in self.endpoints:
            log.info(
                "configuring endpoint %s (%s), timeout=%ss, threshold=%d, backoff=%ss",
                endpoint.name,
                endpoint.url,
                endpoint.timeout,
                endpoint.threshold,
                endpoint.backoff,
            )
            consumer: Consumer = HttpEndpoint(endpoint, client)
            policy = RetryPolicy(endpoint.threshold, endpoint.backoff)
            deliverers.append(Deliverer(self.outbox, consumer, policy, holder, event_metrics))
        if self.audit:
            audit = AuditLog(self.outbox.database)
            deliverers.append(Deliverer(self.outbox, audit, RetryPolicy(), holder, None))
        if self.webhooks:
            from dockyard.events.webhooks import WebhookQueue, run_webhooks

            queue = WebhookQueue(self.outbox)
            deliverers.append(Deliverer(self.outbox, queue, RetryPolicy(), holder, None))
        try:
            # Pull events are written every second, and once more after the deliverers stop.
            async with pulls.running():
                tasks: list[asyncio.Task[None]] = []
                if self.webhooks:
                    settings = self._config.hub.webhooks
                    tasks.append(asyncio.create_task(run_webhooks(self.outbox, settings, holder)))
                tasks += [asyncio.create_task(d.run_forever()) for d in deliverers]
                try:
                    yield
                finally:
                    for task in tasks:
                        task.cancel()
                    await asyncio.gather(*tasks, return_exceptions=True)
        finally:
            await client.aclose()
