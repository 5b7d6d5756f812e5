"""Background upkeep run by every worker: purging stale upload sessions."""

from __future__ import annotations

import asyncio
import logging
import random
from datetime import UTC, datetime, timedelta

from dockyard.core.uploads import Uploads

__all__ = ["purge_uploads_forever"]

log = logging.getLogger("dockyard.maintenance")


async def purge_uploads_forever(
    uploads: Uploads, age: float, interval: float, dry_run: bool = False
) -> None:
    """Purge sessions older than ``age`` seconds every ``interval`` seconds.

    Every worker runs this; purging is idempotent, and a random start spreads the work.
    """
    await asyncio.sleep(random.uniform(0, min(interval, 60.0)))
    while True:
        cutoff = datetime.now(UTC) - timedelta(seconds=age)
        try:
            if dry_run:
                log.info("upload purging is in dry-run mode; nothing deleted")
            else:
                purged = await uploads.purge(cutoff)
                if purged:
                    log.info("purged %d stale upload(s)", len(purged))
        except Exception:
            log.exception("upload purging failed")
        await asyncio.sleep(interval)
