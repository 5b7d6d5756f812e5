"""The pull buffer's limit while the outbox is unreachable: the oldest pulls go first, and
every dropped one is counted in the log, whether it was dropped as a pull came in or as a
failed batch was put back in front of the pulls served meanwhile."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path

import pytest
from sqlalchemy.exc import DBAPIError

from dockyard.events.outbox import Outbox
from dockyard.events.pulls import PullBuffer
from dockyard.metadata.base import OutboxEvent
from dockyard.metadata.engine import open_database
from dockyard.metadata.migrate import upgrade

CONSUMER = "endpoint:listener"


def pull(n: int) -> OutboxEvent:
    return OutboxEvent(json.dumps({"n": n}), (CONSUMER,))


class ServedDuringWrite(Outbox):
    """An outbox whose write gives the pulls ``arriving`` to ``buffer`` before it goes on."""

    buffer: PullBuffer
    arriving: list[OutboxEvent]

    async def add(self, outbox: Sequence[OutboxEvent]) -> None:
        for event in self.arriving:
            self.buffer.add(event)
        self.arriving = []
        await super().add(outbox)


async def _kept(outbox: Outbox) -> list[int]:
    return [json.loads(event.body)["n"] for event in await outbox.pending(CONSUMER, 100)]


async def test_a_failed_batch_put_back_into_a_full_buffer_loses_its_oldest(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    url = f"sqlite:///{tmp_path / 'later.db'}"
    database = open_database(url)  # no tables yet: every write fails
    outbox = ServedDuringWrite(database)
    buffer = outbox.buffer = PullBuffer(outbox, interval=3600, limit=3)
    for n in (1, 2, 3):
        buffer.add(pull(n))
    outbox.arriving = [pull(4), pull(5)]  # served while the batch 1, 2, 3 is being written
    with pytest.raises(DBAPIError):
        await buffer.flush()
    await upgrade(url)  # the database is back
    with caplog.at_level(logging.ERROR, logger="dockyard.events"):
        await buffer.flush()
    assert await _kept(outbox) == [3, 4, 5]
    # Only the buffer's own lines: the migration above may log too, by other tests' settings.
    assert [r.getMessage() for r in caplog.records if r.name.startswith("dockyard.events")] == [
        "dropped 2 pull events: the outbox was unreachable"
    ]
    await database.close()


async def test_pulls_beyond_the_limit_push_out_the_oldest(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    url = f"sqlite:///{tmp_path / 'later.db'}"
    database = open_database(url)
    outbox = Outbox(database)
    buffer = PullBuffer(outbox, interval=3600, limit=3)
    buffer.add(pull(1))
    with pytest.raises(DBAPIError):
        await buffer.flush()  # 1 is put back
    for n in (2, 3, 4, 5):
        buffer.add(pull(n))
    await upgrade(url)
    with caplog.at_level(logging.ERROR, logger="dockyard.events"):
        await buffer.flush()
    assert await _kept(outbox) == [3, 4, 5]
    # Only the buffer's own lines: the migration above may log too, by other tests' settings.
    assert [r.getMessage() for r in caplog.records if r.name.startswith("dockyard.events")] == [
        "dropped 2 pull events: the outbox was unreachable"
    ]
    await database.close()


async def test_a_batch_that_fits_is_put_back_whole_and_in_order(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'later.db'}"
    database = open_database(url)
    outbox = ServedDuringWrite(database)
    buffer = outbox.buffer = PullBuffer(outbox, interval=3600, limit=10)
    buffer.add(pull(1))
    buffer.add(pull(2))
    outbox.arriving = [pull(3)]
    with pytest.raises(DBAPIError):
        await buffer.flush()
    await upgrade(url)
    await buffer.flush()
    assert await _kept(outbox) == [1, 2, 3]
    await database.close()
