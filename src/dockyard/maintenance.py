"""Background upkeep: purging stale upload sessions and collecting garbage, each run by one
replica at a time."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from dockyard.config.models import Config, GcConfig
from dockyard.core.gc import Changed, Collector, GcReport, collect_forever
from dockyard.core.uploads import Uploads
from dockyard.jobs import Jobs, run_periodically
from dockyard.metadata.engine import Database
from dockyard.metadata.gc import GcStore
from dockyard.storage.base import StorageDriver

__all__ = [
    "PURGE_JOB",
    "collect_garbage",
    "collect_garbage_forever",
    "collector",
    "purge_uploads_forever",
]

PURGE_JOB = "purge-uploads"

log = logging.getLogger("dockyard.maintenance")


async def purge_uploads_forever(
    uploads: Uploads, jobs: Jobs, age: float, interval: float, dry_run: bool = False
) -> None:
    """Every ``interval`` seconds, one replica purges sessions older than ``age`` seconds."""

    async def purge() -> None:
        if dry_run:
            log.info("upload purging is in dry-run mode; nothing deleted")
            return
        purged = await uploads.purge(datetime.now(UTC) - timedelta(seconds=age))
        if purged:
            log.info("purged %d stale upload(s)", len(purged))

    await run_periodically(jobs, PURGE_JOB, interval, purge)


def collector(
    config: GcConfig,
    database: Database,
    storage: StorageDriver,
    changed: Changed | None = None,
    delete_untagged: bool | None = None,
) -> Collector:
    """The collector ``config`` describes (``delete_untagged`` overrides its flag)."""
    if delete_untagged is None:
        delete_untagged = config.deleteuntagged
    return Collector(GcStore(database), storage, config.grace, delete_untagged, changed)


async def collect_garbage_forever(
    config: GcConfig, database: Database, storage: StorageDriver, changed: Changed | None = None
) -> None:
    """Every ``config.interval`` seconds, one replica collects garbage."""
    gc = collector(config, database, storage, changed)
    await collect_forever(gc, Jobs(database), config.interval)


async def collect_garbage(
    config: Config,
    dry_run: bool = False,
    delete_untagged: bool | None = None,
    *,
    rescan: bool = False,
) -> GcReport:
    """One collection over the registry ``config`` describes (``dockyard gc``), after a
    rescan that queues every stored blob and manifest if ``rescan``."""
    # Imported here: the command needs them, the server imports this module too.
    from dockyard.cache.factory import open_cache
    from dockyard.metadata.cached import CachedMetadataStore
    from dockyard.metadata.factory import open_store
    from dockyard.storage.factory import open_storage

    storage = open_storage(config)
    store = await open_store(config.database_url)
    cache = None if dry_run else await open_cache(config.redis or None)
    try:
        changed = None if cache is None else CachedMetadataStore(store, cache).invalidate
        gc = collector(config.gc, store.database, storage, changed, delete_untagged)
        rescanned = await gc.rescan() if rescan else None
        report = await gc.run(dry_run)
        report.rescan = rescanned
        return report
    finally:
        await store.close()
        if cache is not None:
            await cache.close()
