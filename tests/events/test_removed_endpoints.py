"""The queues of notification endpoints taken out of the config: removed once no replica has
sent for them for ``REMOVED_AFTER`` (their lease has not moved), never while one does, and
never another kind of consumer's; on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Connection, func, select, update

from dockyard.config import load_config
from dockyard.config.notifications import EndpointConfig
from dockyard.events.endpoint_queues import REMOVED_AFTER, forget_removed_endpoints
from dockyard.events.outbox import Outbox, insert_events
from dockyard.events.service import EventService
from dockyard.metadata.base import OutboxEvent
from dockyard.metadata.factory import open_store
from dockyard.metadata.schema import event_consumers, events
from metadata.test_postgres import database_of

LONG_AGO = timedelta(hours=7)
assert LONG_AGO > REMOVED_AFTER


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with database_of(request.param, tmp_path) as found:
        yield found


@pytest.fixture
async def outbox(url: str) -> AsyncIterator[Outbox]:
    store = await open_store(url)
    yield Outbox(store.database)
    await store.close()


def _now() -> datetime:
    return datetime.now(UTC)


async def _queue(outbox: Outbox, when: datetime, *consumers: str) -> None:
    event = OutboxEvent(json.dumps({"consumers": consumers}), consumers)
    await outbox.database.transaction(insert_events, [event], when)


async def _lease_until(outbox: Outbox, consumer: str, when: datetime) -> None:
    def change(conn: Connection) -> None:
        conn.execute(
            update(event_consumers)
            .where(event_consumers.c.name == consumer)
            .values(lease_until=when)
        )

    await outbox.database.transaction(change)


async def _events(outbox: Outbox) -> int:
    return int((await outbox.database.read(select(func.count()).select_from(events)))[0][0])


def _endpoint(name: str, *, disabled: bool = False) -> EndpointConfig:
    return EndpointConfig(name=name, url="http://127.0.0.1:9/", disabled=disabled)


async def test_only_queues_nobody_sends_for_go(
    outbox: Outbox, caplog: pytest.LogCaptureFixture
) -> None:
    now = _now()
    everyone = ("endpoint:gone", "endpoint:kept", "audit", "endpoint:elsewhere")
    await _queue(outbox, now - LONG_AGO, *everyone, "endpoint:resting", "endpoint:stale")
    await _queue(outbox, now - LONG_AGO, "endpoint:gone")
    await _queue(outbox, now, "endpoint:gone")  # queued after the cut-off
    # Another replica delivers to "elsewhere" now; one sent for "resting" and stopped just now.
    assert await outbox.claim("endpoint:elsewhere", "other-replica", 30)
    assert await outbox.claim("endpoint:resting", "other-replica", 30)
    await outbox.release("endpoint:resting", "other-replica")
    # Nobody has held the lease of "stale" for longer than REMOVED_AFTER.
    assert await outbox.claim("endpoint:stale", "old-replica", 30)
    await _lease_until(outbox, "endpoint:stale", now - LONG_AGO)

    with caplog.at_level(logging.INFO, logger="dockyard.events"):
        removed = await forget_removed_endpoints(outbox, [_endpoint("kept")], now)
    assert removed == 3
    assert [r.getMessage() for r in caplog.records] == [
        "removed 3 queued deliveries of endpoints no longer configured anywhere: gone, stale"
    ]
    depths = {name: await outbox.depth(name) for name in (*everyone, "endpoint:resting")}
    assert depths == dict.fromkeys(depths, 1)
    assert await outbox.depth("endpoint:stale") == 0
    assert await _events(outbox) == 2  # the one only "gone" owed was swept

    # Hours later nobody has sent for "elsewhere" or "resting" either; "kept" and the audit
    # log keep theirs, whatever their leases say.
    later = now + LONG_AGO
    assert await forget_removed_endpoints(outbox, [_endpoint("kept")], later) == 3
    assert await outbox.depth("endpoint:kept") == await outbox.depth("audit") == 1
    for name in ("endpoint:gone", "endpoint:elsewhere", "endpoint:resting"):
        assert await outbox.depth(name) == 0
    assert await _events(outbox) == 1
    # Nothing left to remove: nothing logged, nothing swept.
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="dockyard.events"):
        assert await forget_removed_endpoints(outbox, [_endpoint("kept")], later) == 0
    assert caplog.records == []


async def test_a_released_lease_keeps_its_time(outbox: Outbox) -> None:
    assert await outbox.claim("endpoint:x", "me", 30)
    before = _now()
    await outbox.release("endpoint:x", "me")
    holder, until = await outbox.holder("endpoint:x")
    assert holder is None
    assert until is not None
    assert before - timedelta(seconds=1) <= until <= _now()
    assert await outbox.claim("endpoint:x", "another", 30)  # free at once


async def test_removed_at_start_up_keeping_disabled_endpoints(
    outbox: Outbox, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "config.yml"
    path.write_text(
        "version: 0.1\n"
        "notifications:\n"
        "  endpoints:\n"
        "    - {name: paused, url: 'http://127.0.0.1:9/', disabled: true}\n"
    )
    config = load_config(str(path), {})
    await _queue(outbox, _now() - LONG_AGO, "endpoint:paused", "endpoint:dropped")
    service = EventService(config, outbox.database, None)
    with caplog.at_level(logging.INFO, logger="dockyard.events"):
        async with service.running():
            assert await outbox.depth("endpoint:dropped") == 0
    assert await outbox.depth("endpoint:paused") == 1
    assert any("dropped" in r.getMessage() for r in caplog.records)
