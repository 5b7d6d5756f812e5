"""Background upkeep: purging stale upload sessions, run by one replica at a time."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from dockyard.core.uploads import Uploads
from dockyard.jobs import Jobs, run_periodically

__all__ = ["PURGE_JOB", "purge_uploads_forever"]

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
