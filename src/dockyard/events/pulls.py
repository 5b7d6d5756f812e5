"""Pull events, recorded in batches: a pull changes nothing, so it gets no transaction of its
own on the request's path.

Each worker keeps the pulls it served in memory and writes them to the outbox every
``interval`` (a second) and when it shuts down (the loop is ``dockyard.batching``'s). What a
crash can lose: the pulls a worker served in its last ``interval`` before it was killed
(SIGKILL, power loss), and, while the database is unreachable, those beyond ``limit`` (the
oldest are dropped first, and counted in the log). Content events (push, mount, delete) are
never buffered: they commit with their change.
"""

from __future__ import annotations

import collections
import logging

from dockyard.batching import Batcher
from dockyard.events.outbox import Outbox
from dockyard.metadata.base import OutboxEvent

__all__ = ["FLUSH_INTERVAL", "PullBuffer"]

FLUSH_INTERVAL = 1.0
BUFFER_LIMIT = 100_000

log = logging.getLogger("dockyard.events")


class PullBuffer(Batcher[list[OutboxEvent]]):
    def __init__(
        self, outbox: Outbox, interval: float = FLUSH_INTERVAL, limit: int = BUFFER_LIMIT
    ) -> None:
        super().__init__(interval, "pull events", log)
        self._outbox = outbox
        self._limit = limit
        self._events: collections.deque[OutboxEvent] = collections.deque(maxlen=limit)
        self._dropped = 0

    def add(self, event: OutboxEvent) -> None:
        if len(self._events) == self._limit:
            self._dropped += 1
        self._events.append(event)

    def _take(self) -> list[OutboxEvent] | None:
        if self._dropped:
            log.error("dropped %d pull events: the outbox was unreachable", self._dropped)
            self._dropped = 0
        if not self._events:
            return None
        batch = list(self._events)
        self._events.clear()
        return batch

    def _put_back(self, batch: list[OutboxEvent]) -> None:
        # In front, in order, for the next flush. The batch is older than what came since, so
        # when both do not fit its oldest go (extendleft on a full deque would drop the newest).
        room = self._limit - len(self._events)
        if len(batch) > room:
            self._dropped += len(batch) - room
            batch = batch[len(batch) - room :]
        self._events.extendleft(reversed(batch))

    async def _write(self, batch: list[OutboxEvent]) -> None:
        await self._outbox.add(batch)
