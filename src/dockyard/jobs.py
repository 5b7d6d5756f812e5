"""Periodic background jobs that exactly one replica runs at a time.

Every worker of every replica wakes up now and then and tries to *claim* a job: one short
transaction that moves the job's ``next_run`` forward by its interval if it is due. Of many
replicas trying at once, exactly one sees the job due and moves it; the others find it not
due (or, on PostgreSQL, locked by the claimer, which ``FOR UPDATE SKIP LOCKED`` skips without
waiting). A replica that dies while running a job delays it by one interval at most.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

from sqlalchemy import insert, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from dockyard.metadata.engine import Database, DatabaseUnavailable
from dockyard.metadata.schema import jobs

__all__ = ["Jobs", "run_periodically"]

log = logging.getLogger("dockyard.jobs")


def _claim(conn: Connection, name: str, interval: float) -> bool:
    query = select(jobs.c.next_run).where(jobs.c.name == name)
    if conn.dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    row = conn.execute(query).first()
    # The time once the row is held, not when the claim was asked for: a claim that waited
    # for a connection would otherwise start its interval early, and let the next claim run
    # the job again less than an interval after this one.
    now = datetime.now(UTC)
    following = now + timedelta(seconds=interval)
    if row is None:
        exists = conn.execute(select(jobs.c.name).where(jobs.c.name == name)).first()
        if exists is not None:
            return False  # another replica holds the row right now
        conn.execute(insert(jobs).values(name=name, next_run=following, last_run=now))
        return True
    if row.next_run > now:
        return False
    conn.execute(update(jobs).where(jobs.c.name == name).values(next_run=following, last_run=now))
    return True


class Jobs:
    def __init__(self, database: Database) -> None:
        self._database = database

    async def claim(self, name: str, interval: float) -> bool:
        """True if this caller may run ``name`` now; it is then not due for ``interval``."""
        try:
            return await self._database.transaction(_claim, name, interval)
        except IntegrityError:  # a concurrent first insert: the other caller won
            return False


async def run_periodically(
    jobs: Jobs,
    name: str,
    interval: float,
    job: Callable[[], Awaitable[None]],
    poll: float | None = None,
) -> None:
    """Run ``job`` every ``interval`` seconds on whichever replica claims it first."""
    poll = poll if poll is not None else min(interval, 60.0)
    # Spread the first attempts of workers that started together.
    await asyncio.sleep(random.uniform(0, poll))
    while True:
        try:
            if await jobs.claim(name, interval):
                await job()
        except DatabaseUnavailable as error:  # an outage: a line, not a traceback per poll
            log.warning("job %s: database unavailable: %s", name, error)
        except Exception:
            log.exception("job %s failed", name)
        await asyncio.sleep(poll)
