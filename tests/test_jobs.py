"""Periodic jobs are claimed by exactly one of many replicas, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, text

from dockyard.jobs import Jobs, run_periodically
from dockyard.metadata.engine import Database, open_database
from dockyard.metadata.schema import jobs
from metadata.test_postgres import database_of


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with database_of(request.param, tmp_path, migrate=True) as url:
        yield url


@pytest.fixture
async def replicas(database_url: str) -> AsyncIterator[list[Database]]:
    # Separate engines, as separate replicas would have.
    databases = [open_database(database_url) for _ in range(4)]
    yield databases
    for database in databases:
        await database.close()


async def test_one_claim_per_interval(replicas: list[Database]) -> None:
    jobs = Jobs(replicas[0])
    # An interval far longer than a loaded machine's pause between two calls.
    assert await jobs.claim("purge", 60)
    assert not await jobs.claim("purge", 60)
    # Jobs are independent of each other.
    assert await jobs.claim("other", 60)


async def test_a_job_is_due_again_once_its_interval_has_passed(replicas: list[Database]) -> None:
    jobs = Jobs(replicas[0])
    assert await jobs.claim("purge", 0.5)
    await asyncio.sleep(0.6)
    assert await jobs.claim("purge", 60)
    assert not await jobs.claim("purge", 60)


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_a_claim_that_waited_for_a_connection_counts_its_interval_from_then(
    database_url: str,
) -> None:
    # One connection, held by a slow read: the claim waits for it before it can run.
    database = open_database(database_url, connections=1)
    try:
        slow = asyncio.create_task(database.read(text("SELECT pg_sleep(0.5)")))
        await asyncio.sleep(0.1)  # the read has the connection
        asked = datetime.now(UTC)
        assert await Jobs(database).claim("purge", 60)
        await slow
        rows = await database.read(select(jobs.c.last_run, jobs.c.next_run))
    finally:
        await database.close()
    [(last_run, next_run)] = rows
    assert last_run - asked > timedelta(seconds=0.3)
    assert next_run == last_run + timedelta(seconds=60)


async def test_exactly_one_of_many_concurrent_claimers_wins(replicas: list[Database]) -> None:
    for round_ in range(3):
        claimers = [Jobs(database) for database in replicas for _ in range(5)]
        won = await asyncio.gather(*(j.claim(f"job{round_}", 60) for j in claimers))
        assert sum(won) == 1
        # The job once started, later rounds of the same job find it not due.
        again = await asyncio.gather(*(j.claim(f"job{round_}", 60) for j in claimers))
        assert sum(again) == 0


async def test_run_periodically_runs_on_one_replica_per_interval(
    replicas: list[Database],
) -> None:
    runs: list[float] = []
    three = asyncio.Event()

    async def job() -> None:
        runs.append(time.monotonic())
        if len(runs) >= 3:
            three.set()

    tasks = [
        asyncio.create_task(run_periodically(Jobs(db), "tick", 0.5, job, poll=0.05))
        for db in replicas
    ]
    # A loaded machine may be slow to open its connections: wait for the runs, not a time.
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(three.wait(), 10)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    assert len(runs) >= 3
    # One run per interval over all replicas, never one per replica per tick (the slack is
    # for the claim's wall clock against this monotonic one).
    assert all(later - earlier > 0.45 for earlier, later in itertools.pairwise(runs))
