"""The operations side of one app, built from its config: request ids and the access log,
Prometheus metrics wrapped around the storage and metadata seams, health checks and their
endpoints, and the debug server. ``app.create_app`` composes it with the registry."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from starlette.middleware import Middleware
from starlette.routing import Route

from dockyard.config import Config
from dockyard.debug import DebugServer
from dockyard.health.checks import (
    HealthChecks,
    PeriodicCheck,
    configured_checks,
    database_probe,
    storage_probe,
)
from dockyard.health.endpoints import Gate, health_refusal, health_routes
from dockyard.metadata.base import MetadataStore
from dockyard.observability.accesslog import Observer, RequestLog, log_access
from dockyard.observability.tracing import TracingMiddleware, open_tracing
from dockyard.storage.base import StorageDriver

if TYPE_CHECKING:
    from dockyard.observability.metrics import Metrics

__all__ = ["READINESS_INTERVAL", "Operations"]

READINESS_INTERVAL = 3.0
"""Seconds between the readiness probes of the database and the storage."""
READINESS_TIMEOUT = 5.0


class Operations:
    def __init__(self, config: Config) -> None:
        self.config = config
        debug = config.http.debug
        self.metrics: Metrics | None = None
        if debug is not None and debug.prometheus.enabled:
            # Imported here: prometheus-client is loaded only when metrics are on.
            from dockyard.observability.metrics import Metrics

            self.metrics = Metrics()
        self.checks = HealthChecks()
        self.readiness = HealthChecks()
        # Made here, in the worker: the exporter's thread must not be forked.
        self.tracing = open_tracing(config)

    def storage(self, driver: StorageDriver) -> StorageDriver:
        if self.metrics is None and self.tracing is None:
            return driver
        from dockyard.observability.storage import MeteredStorage

        return MeteredStorage(driver, self.metrics, self.tracing)

    def metadata(self, store: MetadataStore) -> MetadataStore:
        if self.metrics is None and self.tracing is None:
            return store
        from dockyard.observability.metadata import MeteredMetadata

        return MeteredMetadata(store, self.metrics, self.tracing)

    def middleware(self, *inner: Middleware) -> list[Middleware]:
        """The request log outermost (it sees every answer, the gate's included), then
        ``inner``, then the health gate."""
        observers: list[Observer] = []
        if not self.config.log.accesslog.disabled:
            observers.append(log_access)
        if self.metrics is not None:
            observers.append(self.metrics.observe_request)
        tracing = []
        if self.tracing is not None:
            tracing.append(Middleware(TracingMiddleware, tracing=self.tracing))
        return [
            Middleware(RequestLog, observers=observers),
            *tracing,
            *inner,
            Middleware(Gate, refusal=health_refusal(self.checks)),
        ]

    def routes(self) -> list[Route]:
        return health_routes(self.checks, self.readiness)

    @contextlib.asynccontextmanager
    async def running(self, storage: StorageDriver, metadata: MetadataStore) -> AsyncIterator[None]:
        """Checks and the debug server run while the app serves (each worker its own)."""
        self.checks.checks = configured_checks(
            self.config.health, storage, self.config.storage.driver_name
        )
        self.readiness.checks = [
            PeriodicCheck(
                "database", database_probe(metadata, READINESS_TIMEOUT), READINESS_INTERVAL
            ),
            PeriodicCheck("storage", storage_probe(storage), READINESS_INTERVAL),
        ]
        debug = self.config.http.debug
        server = None
        if debug is not None:
            server = DebugServer(debug.addr, self.checks, self.metrics, debug.prometheus.path)
        await self.checks.start()
        await self.readiness.start()
        try:
            if server is not None:
                await server.start()
            yield
        finally:
            if server is not None:
                await server.stop()
            await self.checks.stop()
            await self.readiness.stop()
            if self.metrics is not None:
                self.metrics.close()
            if self.tracing is not None:
                self.tracing.shutdown()
