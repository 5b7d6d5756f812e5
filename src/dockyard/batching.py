"""Facts kept in memory and written in batches: for what is too frequent to cost a database
write each (pulls) and may lose its last moment's worth when a process is killed.

Every such buffer needs the same loop, and it is easy to get subtly wrong twice: every
``interval`` seconds take what was kept and write it in one go; when a write fails, keep the
batch for the next attempt (ahead of what came since), log, and go on; when the process stops,
write once more. ``Batcher`` is that loop; a subclass says how its facts are kept, taken, put
back and written.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator
from typing import Generic, TypeVar

__all__ = ["Batcher"]

B = TypeVar("B")


class Batcher(ABC, Generic[B]):
    """Writes batches of type ``B``: every ``interval`` seconds while ``running``, and once
    more as it ends. ``what`` names the facts in the log."""

    def __init__(self, interval: float, what: str, log: logging.Logger) -> None:
        self.interval = interval
        self._what = what
        self._log = log
        # One flush at a time, so that a batch put back stays ahead of the next one.
        self._lock = asyncio.Lock()

    @abstractmethod
    def _take(self) -> B | None:
        """Everything kept since the last take, leaving nothing kept; None when empty."""

    @abstractmethod
    def _put_back(self, batch: B) -> None:
        """Keep a batch that could not be written, ahead of what was kept since."""

    @abstractmethod
    async def _write(self, batch: B) -> None:
        """Write one batch; raises when it could not."""

    async def flush(self) -> None:
        """Write what was kept; on failure (or cancellation) keep it and raise."""
        async with self._lock:
            batch = self._take()
            if batch is None:
                return
            try:
                await self._write(batch)
            except BaseException:
                self._put_back(batch)
                raise

    async def run_forever(self) -> None:
        """Flush every ``interval`` seconds until cancelled."""
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.flush()
            except Exception:
                self._log.exception("writing %s failed; will retry", self._what)

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """Flush in the background while the block runs, and once more when it ends."""
        task = asyncio.create_task(self.run_forever())
        try:
            yield
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            try:
                await self.flush()
            except Exception:
                self._log.exception("writing %s at shutdown failed", self._what)
