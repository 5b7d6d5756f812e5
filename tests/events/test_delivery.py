"""The outbox's delivery machinery against real databases and a real HTTP endpoint: ids that
commit out of order, one sender per consumer, retries, and the pull buffer."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from dockyard.config.notifications import EndpointConfig
from dockyard.events.delivery import Deliverer, RetryPolicy
from dockyard.events.endpoint import HttpEndpoint
from dockyard.events.outbox import Outbox, insert_events
from dockyard.events.pulls import PullBuffer
from dockyard.metadata.base import OutboxEvent
from dockyard.metadata.engine import AsyncDatabase, open_database
from dockyard.metadata.factory import open_store
from dockyard.metadata.migrate import upgrade
from dockyard.metadata.sql import SqlMetadataStore

from .receiver import Receiver, receiver

CONSUMER = "endpoint:listener"


def numbered(n: int) -> OutboxEvent:
    return OutboxEvent(json.dumps({"id": f"e{n}", "n": n}), (CONSUMER,))


@pytest.fixture
def listener() -> Iterator[Receiver]:
    with receiver() as state:
        yield state


@pytest.fixture
async def sqlite_store(tmp_path: Path) -> AsyncIterator[SqlMetadataStore]:
    store = await open_store(f"sqlite:///{tmp_path / 'metadata.db'}")
    yield store
    await store.close()


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    from metadata.test_postgres import fresh_database

    with fresh_database() as url:
        yield url


@pytest.fixture
async def postgres_store(postgres_url: str) -> AsyncIterator[SqlMetadataStore]:
    store = await open_store(postgres_url)
    yield store
    await store.close()


def _endpoint(listener: Receiver, client: httpx.AsyncClient) -> HttpEndpoint:
    return HttpEndpoint(EndpointConfig(name="listener", url=listener.url), client)


async def test_an_id_that_commits_late_is_still_delivered(
    postgres_store: SqlMetadataStore, listener: Receiver
) -> None:
    """PostgreSQL hands out ids when a transaction inserts, not when it commits."""
    database = postgres_store.database
    assert isinstance(database, AsyncDatabase)
    engine: AsyncEngine = database.engine
    outbox = Outbox(database)
    async with httpx.AsyncClient() as client:
        deliverer = Deliverer(outbox, _endpoint(listener, client), RetryPolicy(), "me")
        async with engine.connect() as slow:
            transaction = await slow.begin()
            # Draws the smaller id, and stays uncommitted while a later change commits.
            await slow.run_sync(lambda conn: insert_events(conn, [numbered(1)], _now()))
            await postgres_store.link_blob("repo", "sha256:" + "a" * 64, 1, [numbered(2)])
            [committed_first] = await outbox.pending(CONSUMER, 10)
            await deliverer.send_once()
            assert [e["n"] for e in listener.events()] == [2]
            await transaction.commit()
        [committed_late] = await outbox.pending(CONSUMER, 10)
        await deliverer.send_once()
    assert [e["n"] for e in listener.events()] == [2, 1]
    # The late one has the smaller id: a cursor at the highest id sent would have skipped it.
    assert committed_late.id < committed_first.id
    assert await outbox.pending(CONSUMER, 10) == []


def _now() -> datetime:
    return datetime.now(UTC)


async def test_one_sender_per_consumer(sqlite_store: SqlMetadataStore) -> None:
    outbox = Outbox(sqlite_store.database)
    assert await outbox.claim(CONSUMER, "first", 30)
    assert not await outbox.claim(CONSUMER, "second", 30)
    assert await outbox.claim(CONSUMER, "first", 30)  # a renewal
    assert await outbox.claim("endpoint:other", "second", 30)  # another consumer is free
    await outbox.release(CONSUMER, "first")
    assert await outbox.claim(CONSUMER, "second", 30)
    # An expired lease is taken over.
    assert await outbox.claim("endpoint:short", "first", 0.05)
    await asyncio.sleep(0.1)
    assert await outbox.claim("endpoint:short", "second", 30)


async def test_failures_are_retried_in_order_then_back_off(
    sqlite_store: SqlMetadataStore, listener: Receiver
) -> None:
    outbox = Outbox(sqlite_store.database)
    for n in range(3):
        await sqlite_store.link_blob("repo", f"sha256:{n:064x}", 1, [numbered(n)])
    listener.status = 404
    policy = RetryPolicy(threshold=2, backoff=7.0)
    async with httpx.AsyncClient() as client:
        deliverer = Deliverer(outbox, _endpoint(listener, client), policy, "me", batch=2)
        pauses = [await deliverer.send_once() for _ in range(3)]
        # Immediately while under the threshold, then the backoff.
        assert pauses[0] < 1
        assert pauses[1] == pauses[2] == 7.0
        assert listener.refused == [404, 404, 404]
        assert deliverer.failures == 3
        assert await outbox.depth(CONSUMER) == 3  # nothing dropped
        listener.status = 202
        assert await deliverer.send_once() == 0.0
        assert await deliverer.send_once() == 0.0
        assert deliverer.failures == 0
        assert await deliverer.send_once() > 0  # empty: poll later
    assert [e["n"] for e in listener.events()] == [0, 1, 2]
    assert [len(envelope.body["events"]) for envelope in listener.accepted] == [2, 1]
    assert await outbox.depth(CONSUMER) == 0


async def test_a_deliverer_sends_in_the_background_and_hands_over(
    sqlite_store: SqlMetadataStore, listener: Receiver
) -> None:
    outbox = Outbox(sqlite_store.database)
    async with httpx.AsyncClient() as client:
        first = Deliverer(outbox, _endpoint(listener, client), RetryPolicy(), "one", poll=0.02)
        second = Deliverer(outbox, _endpoint(listener, client), RetryPolicy(), "two", poll=0.02)
        tasks = [asyncio.create_task(d.run_forever()) for d in (first, second)]
        try:
            for n in range(5):
                await sqlite_store.link_blob("repo", f"sha256:{n:064x}", 1, [numbered(n)])
            await _until(lambda: len(listener.events()) == 5)
            holder, _ = await outbox.holder(CONSUMER)
            assert holder in ("one", "two")
            # The holder stops (shutdown): it releases, and the other takes over.
            stopped = tasks[0] if holder == "one" else tasks[1]
            stopped.cancel()
            await asyncio.gather(stopped, return_exceptions=True)
            assert (await outbox.holder(CONSUMER))[0] is None
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
    assert [e["n"] for e in listener.events()] == list(range(5))


async def test_pulls_are_flushed_in_one_batch(sqlite_store: SqlMetadataStore) -> None:
    outbox = Outbox(sqlite_store.database)
    pulls = PullBuffer(outbox, interval=3600)
    for n in range(50):
        pulls.add(numbered(n))
    assert await outbox.depth(CONSUMER) == 0  # nothing written per pull
    await pulls.flush()
    pending = await outbox.pending(CONSUMER, 100)
    assert [json.loads(p.body)["n"] for p in pending] == list(range(50))
    await pulls.flush()  # nothing twice
    assert await outbox.depth(CONSUMER) == 50


async def test_pulls_wait_for_an_unreachable_database(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'later.db'}"
    database = open_database(url)  # no tables yet: every write fails
    outbox = Outbox(database)
    pulls = PullBuffer(outbox, interval=3600)
    pulls.add(numbered(1))
    with pytest.raises(DBAPIError):
        await pulls.flush()
    pulls.add(numbered(2))
    await upgrade(url)  # the database is back
    await pulls.flush()
    pending = await outbox.pending(CONSUMER, 10)
    assert [json.loads(p.body)["n"] for p in pending] == [1, 2]
    await database.close()


async def _until(condition: Callable[[], bool], limit: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + limit
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.02)
