"""A sender's hold on one of the outbox's leases (see ``outbox.py``): claimed again and again
until got, renewed by the work it guards, and handed back at once when the loop stops."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from dockyard.events.outbox import Outbox

__all__ = ["Lease"]

log = logging.getLogger("dockyard.events")


class Lease:
    def __init__(self, outbox: Outbox, name: str, holder: str, seconds: float) -> None:
        self._outbox = outbox
        self.name = name
        self._holder = holder
        self.seconds = seconds
        self.held = False

    async def claim(self) -> bool:
        """Take or renew the lease; whether this holder has it now."""
        self.held = await self._outbox.claim(self.name, self._holder, self.seconds)
        return self.held

    async def run_forever(
        self, work: Callable[[], Awaitable[None]], failure: str, *args: object
    ) -> None:
        """Runs ``work`` whenever the lease is got (every third of its length a try); ``work``
        renews it with :meth:`claim` and returns once it is lost. An error is logged with the
        message ``failure % args`` and counts as losing the lease."""
        try:
            while True:
                try:
                    if await self.claim():
                        await work()
                except Exception:
                    log.exception(failure, *args)
                    self.held = False
                await asyncio.sleep(self.seconds / 3)
        finally:
            if self.held:
                # Hand over at once on shutdown instead of when the lease runs out.
                await asyncio.shield(self._outbox.release(self.name, self._holder))
