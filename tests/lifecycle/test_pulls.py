"""Pull counts kept in memory and written in batches, against a real SQLite database: a failed
write keeps its counts for the next, and stopping writes what is left."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.exc import DBAPIError

from dockyard.lifecycle.pulls import PullRecorder
from dockyard.metadata.engine import open_database
from dockyard.metadata.migrate import upgrade
from dockyard.metadata.schema import tag_pulls

START = datetime(2024, 5, 1, tzinfo=UTC)


def ticking() -> Iterator[datetime]:
    """A clock a minute later at each reading."""
    minute = 0
    while True:
        yield START + timedelta(minutes=minute)
        minute += 1


async def _counts(url: str) -> dict[tuple[str, str], tuple[int, datetime]]:
    database = open_database(url)
    try:
        rows = await database.read(select(tag_pulls))
    finally:
        await database.close()
    return {(r.repository, r.tag): (r.pulls, r.last_pulled_at) for r in rows}


async def test_a_failed_write_keeps_the_counts_for_the_next(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'later.db'}"
    database = open_database(url)  # no tables yet: every write fails
    clock = ticking()
    pulls = PullRecorder(database, clock=lambda: next(clock), interval=3600)
    pulls.record("repo", "a")  # minute 0
    pulls.record("repo", "b")  # minute 1
    with pytest.raises(DBAPIError):
        await pulls.flush()
    pulls.record("repo", "a")  # minute 2, counted while the first batch waits
    await upgrade(url)  # the database is back
    await pulls.flush()
    await pulls.flush()  # nothing twice
    await database.close()
    assert await _counts(url) == {
        ("repo", "a"): (2, START + timedelta(minutes=2)),
        ("repo", "b"): (1, START + timedelta(minutes=1)),
    }


async def test_counts_are_written_every_interval_and_when_stopped(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'metadata.db'}"
    await upgrade(url)
    database = open_database(url)
    pulls = PullRecorder(database, interval=0.05)
    async with pulls.running():
        pulls.record("repo", "early")
        for _ in range(200):
            if ("repo", "early") in await _counts(url):
                break
            await asyncio.sleep(0.02)
        pulls.record("repo", "late")  # written only by the last flush
    await database.close()
    assert {key: n for key, (n, _) in (await _counts(url)).items()} == {
        ("repo", "early"): 1,
        ("repo", "late"): 1,
    }
