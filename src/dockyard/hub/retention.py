"""The periodic purge of old audit events and failed-login counters (``auth.builtin``'s
``auditretention``), run by one replica at a time."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from dockyard.identity.base import IdentityStore
from dockyard.jobs import Jobs, run_periodically

__all__ = ["PURGE_AUDIT_JOB", "purge_audit", "purge_audit_forever"]

PURGE_AUDIT_JOB = "purge-audit"

log = logging.getLogger("dockyard.hub.retention")


async def purge_audit(
    store: IdentityStore,
    retention: float,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> int:
    """Delete what is older than ``retention`` seconds; how many audit events went."""
    purged = await store.purge_audit(clock() - timedelta(seconds=retention))
    if purged:
        log.info("purged %d audit event(s) older than %gs", purged, retention)
    return purged


async def purge_audit_forever(
    store: IdentityStore, jobs: Jobs, retention: float, interval: float
) -> None:
    async def job() -> None:
        await purge_audit(store, retention)

    await run_periodically(jobs, PURGE_AUDIT_JOB, interval, job)
