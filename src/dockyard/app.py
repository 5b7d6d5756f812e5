"""The composition root: build the ASGI application from a config object."""

from __future__ import annotations

import asyncio
import contextlib
import logging
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
    unexpected_error_handler,
)
from dockyard.api.middleware import StaticHeaders
from dockyard.api.routes import routes
from dockyard.auth.factory import access_controller
from dockyard.cache.factory import open_cache
from dockyard.config import Config, load_config
from dockyard.core.gc import Placements
from dockyard.core.policy import Policy
from dockyard.core.registry import Registry
from dockyard.errors import RegistryError
from dockyard.jobs import Jobs
from dockyard.maintenance import collect_garbage_forever, purge_uploads_forever
from dockyard.metadata.base import MetadataStore
from dockyard.metadata.cached import CachedMetadataStore
from dockyard.metadata.factory import open_store
from dockyard.metadata.gc import GcStore
from dockyard.observability.logging import configure_logging
from dockyard.operations import Operations
from dockyard.storage.base import StorageDriver
from dockyard.storage.factory import open_storage

__all__ = ["create_app", "from_environment"]

CONFIG_ENV = "DOCKYARD_CONFIG"

log = logging.getLogger("dockyard")


class StartupError(Exception):
    """The config names something this build cannot run."""


def _storage(config: Config) -> StorageDriver:
    try:
        return open_storage(config)
    except ValueError as error:
        raise StartupError(str(error)) from None


def create_app(config: Config) -> Starlette:
    ops = Operations(config)
    storage = ops.storage(_storage(config))
    maintenance = config.storage.maintenance
    policy = Policy(
        delete_enabled=config.storage.delete.enabled,
        readonly=maintenance.readonly.enabled,
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        # `dockyard serve` migrated the schema once before forking the workers.
        store = await open_store(config.database_url, migrate=False)
        # Built here: auth.builtin keeps its accounts in the metadata's database.
        access = access_controller(config.auth, store.database, host=config.http.host)
        cache = await open_cache(config.redis or None)
        # Redis, when configured, caches hot facts for every replica (see metadata/cached.py).
        metadata: MetadataStore = store if cache is None else CachedMetadataStore(store, cache)
        # What the garbage collector removes must leave the cache too.
        invalidate = metadata.invalidate if isinstance(metadata, CachedMetadataStore) else None
        metadata = ops.metadata(metadata)
        registry = Registry(
            storage,
            metadata,
            policy,
            redirects=not config.storage.redirect.disable,
            placements=Placements(GcStore(store.database)),
        )
        app.state.context = Context(
            registry=registry,
            access=access,
            host=config.http.host,
            relative_urls=config.http.relativeurls,
        )
        tasks: list[asyncio.Task[None]] = []
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
        try:
            async with ops.running(storage, metadata):
                yield
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await metadata.close()
            if cache is not None:
                await cache.close()

    return Starlette(
        routes=[*ops.routes(), *routes()],
        middleware=ops.middleware(Middleware(StaticHeaders, headers=config.http.headers)),
        exception_handlers={
            RegistryError: registry_error_handler,
            HTTPException: http_exception_handler,
            ClientDisconnect: disconnect_handler,
            Exception: unexpected_error_handler,
        },
        lifespan=lifespan,
    )


def from_environment() -> Starlette:
    """Granian's factory: every worker loads the config named by ``DOCKYARD_CONFIG``."""
    path = os.environ.get(CONFIG_ENV) or None
    config = load_config(path, os.environ)
    configure_logging(config.log)
    return create_app(config)
