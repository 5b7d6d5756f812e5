"""The lifecycle work a serving process runs in the background: applying retention policies
on a schedule (one replica at a time, claimed through the database's job table). Pull counts
are flushed elsewhere, by the ``PullRecorder`` (``lifecycle.pulls``) that ``app.py`` runs."""

from __future__ import annotations

import logging

from dockyard.jobs import Jobs, run_periodically
from dockyard.lifecycle.retention import RETENTION_JOB
from dockyard.lifecycle.service import LifecycleService

__all__ = ["retain_forever"]

log = logging.getLogger("dockyard.lifecycle")


async def retain_forever(service: LifecycleService, jobs: Jobs, interval: float) -> None:
    """Every ``interval`` seconds, one replica applies the retention policies."""

    async def retain() -> None:
        report = await service.run_retention()
        for removal in report.removed:
            log.info(
                "retention removed %s:%s (%s) by policies %s",
                removal.repository,
                removal.tag,
                removal.digest,
                ",".join(map(str, removal.policies)),
            )

    await run_periodically(jobs, RETENTION_JOB, interval, retain)
