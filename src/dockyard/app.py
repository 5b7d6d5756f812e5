"""The composition root: build the ASGI application from a config object."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import ClientDisconnect

from dockyard.api.base import (
    Context,
    disconnect_handler,
    http_exception_handler,
    registry_error_handler,
    unavailable_handler,
    unexpected_error_handler,
)
from dockyard.api.leftovers import RequestTasks, TrackRequests
from dockyard.api.middleware import StaticHeaders, TrustedProxies
from dockyard.api.routes import routes
from dockyard.auth.builtin import BuiltinAccess
from dockyard.auth.factory import access_controller
from dockyard.cache.factory import open_cache
from dockyard.config import Config, load_config
from dockyard.core.gc import Placements
from dockyard.core.policy import Policy
from dockyard.core.registry import Registry
from dockyard.errors import RegistryError
from dockyard.events.service import EventService
from dockyard.health.endpoints import Gate
from dockyard.health.schema import SchemaWait
from dockyard.hub.retention import purge_audit_forever
from dockyard.hub.search import discovery
from dockyard.hub.webhooks import Webhooks
from dockyard.jobs import Jobs
from dockyard.lifecycle.pulls import PullRecorder
from dockyard.lifecycle.quotas import Quotas
from dockyard.lifecycle.runtime import retain_forever
from dockyard.lifecycle.service import LifecycleService
from dockyard.maintenance import collect_garbage_forever, purge_uploads_forever
from dockyard.malloc import tune_malloc
from dockyard.metadata.base import MetadataStore
from dockyard.metadata.cached import CachedMetadataStore
from dockyard.metadata.engine import WARM_POOL, DatabaseUnavailable
from dockyard.metadata.factory import open_store
from dockyard.metadata.gc import GcStore
from dockyard.observability.logging import configure_logging
from dockyard.operations import Operations
from dockyard.server import CONFIG_ENV, SCHEMA_PENDING_ENV
from dockyard.storage.base import StorageDriver, StorageUnavailable
from dockyard.storage.factory import open_storage
from dockyard.ui.routes import routes as ui_routes
from dockyard.ui.state import build_ui, ui_enabled

__all__ = ["create_app", "from_environment"]


class StartupError(Exception):
    """The config names something this build cannot run."""


def _storage(config: Config) -> StorageDriver:
    try:
        return open_storage(config)
    except ValueError as error:
        raise StartupError(str(error)) from None


def create_app(config: Config, schema_pending: bool = False) -> Starlette:
    """The registry for ``config``; with ``schema_pending`` (the database did not answer at
    start-up) it answers 503 until the database answers and its schema is up to date."""
    ops = Operations(config)
    schema = SchemaWait(config.database_url) if schema_pending else None
    storage = ops.storage(_storage(config))
    maintenance = config.storage.maintenance
    policy = Policy(
        delete_enabled=config.storage.delete.enabled,
        readonly=maintenance.readonly.enabled,
    )
    requests = RequestTasks()

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        # `dockyard serve` migrated the schema once before forking the workers.
        store = await open_store(
            config.database_url, migrate=False, connections=config.database.maxconnections
        )
        # Built here: auth.builtin keeps its accounts in the metadata's database.
        access = access_controller(
            config.auth,
            store.database,
            host=config.http.host,
            data_directory=config.data_directory,
        )
        cache = await open_cache(config.redis or None)
        # Redis, when configured, caches hot facts for every replica (see metadata/cached.py).
        metadata: MetadataStore = (
            store
            if cache is None
            else CachedMetadataStore(
                store,
                cache,
                stats=None if ops.metrics is None else ops.metrics.cache_stats("redis"),
            )
        )
        # What the garbage collector removes must leave the cache too.
        invalidate = metadata.invalidate if isinstance(metadata, CachedMetadataStore) else None
        metadata = ops.metadata(metadata)
        # Content events for notification endpoints and the audit log (none: no writes).
        events = EventService(config, store.database, ops.metrics)
        # Pulls per tag, counted in memory and written every second (and at shutdown).
        pulls = PullRecorder(store.database)
        # Rules, quotas, policies and usage; the management API reaches it here.
        app.state.lifecycle = LifecycleService(store.database, invalidate)
        registry = Registry(
            storage,
            metadata,
            policy,
            redirects=not config.storage.redirect.disable,
            placements=Placements(GcStore(store.database)),
            events=events.sink,
            quotas=Quotas(store.database),
            pulls=pulls,
        )
        app.state.context = Context(
            registry=registry,
            access=access,
            host=config.http.host,
            relative_urls=config.http.relativeurls,
        )
        if isinstance(access, BuiltinAccess) and access.authority is not None:
            # Search, stars and READMEs, for /v1/search and the UI.
            found = app.state.discovery = discovery(store.database, access.authority)
            # Repository webhooks, for the management API (sent by the event service).
            app.state.webhooks = Webhooks(store.database, config.hub.webhooks)
            if ui_enabled(config):
                app.state.ui = build_ui(config, store.database, access, registry, found)
        # Connections for the first burst of concurrent requests, opened in the background.
        tasks: list[asyncio.Task[None]] = [asyncio.create_task(store.database.warm(WARM_POOL))]
        if schema is not None:
            tasks.append(asyncio.create_task(schema.run()))
        purging = maintenance.uploadpurging
        if purging.enabled and not maintenance.readonly.enabled:
            tasks.append(
                asyncio.create_task(
                    purge_uploads_forever(
                        registry.uploads,
                        Jobs(store.database),
                        purging.age,
                        purging.interval,
                        purging.dryrun,
                    )
                )
            )
        if config.gc.enabled and not maintenance.readonly.enabled:
            tasks.append(
                asyncio.create_task(
                    collect_garbage_forever(config.gc, store.database, storage, invalidate)
                )
            )
        retention = config.retention
        if retention.enabled and not maintenance.readonly.enabled:
            tasks.append(
                asyncio.create_task(
                    retain_forever(app.state.lifecycle, Jobs(store.database), retention.interval)
                )
            )
        if isinstance(access, BuiltinAccess) and access.issuer is not None:
            builtin = access.settings
            if builtin.audit_retention is not None and not maintenance.readonly.enabled:
                tasks.append(
                    asyncio.create_task(
                        purge_audit_forever(
                            access.issuer.store,
                            Jobs(store.database),
                            builtin.audit_retention,
                            builtin.audit_purge_interval,
                        )
                    )
                )
        try:
            async with ops.running(storage, metadata), events.running(), pulls.running():
                try:
                    yield
                finally:
                    # Before anything they may use is closed (see api/leftovers.py).
                    await requests.end_leftovers()
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await metadata.close()
            if cache is not None:
                await cache.close()

    return Starlette(
        # The UI's paths come last and are all explicit: they shadow none of the others.
        routes=[*ops.routes(), *routes(), *(ui_routes() if ui_enabled(config) else [])],
        middleware=[
            Middleware(TrackRequests, tasks=requests),
            # Everything inside sees the client address that may be believed.
            Middleware(TrustedProxies, proxies=config.http.trustedproxies),
            *ops.middleware(
                Middleware(StaticHeaders, headers=config.http.headers),
                *([] if schema is None else [Middleware(Gate, refusal=schema.refusal)]),
            ),
        ],
        exception_handlers={
            RegistryError: registry_error_handler,
            HTTPException: http_exception_handler,
            ClientDisconnect: disconnect_handler,
            DatabaseUnavailable: unavailable_handler,
            StorageUnavailable: unavailable_handler,
            Exception: unexpected_error_handler,
        },
        lifespan=lifespan,
    )


def from_environment() -> Starlette:
    """Granian's factory: every worker loads the config named by ``DOCKYARD_CONFIG``."""
    tune_malloc()
    path = os.environ.get(CONFIG_ENV) or None
    config = load_config(path, os.environ)
    configure_logging(config.log)
    return create_app(config, schema_pending=os.environ.get(SCHEMA_PENDING_ENV) == "1")
