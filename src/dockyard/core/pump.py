"""Move a request body into a storage writer while hashing it, with flat memory.

Bytes are gathered into large buffers; each buffer is hashed in a worker thread while the
driver writes it (both release the GIL) and while the next buffer is being received, so
receiving, hashing and writing overlap.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Protocol

from dockyard.storage.base import StorageWriter

__all__ = ["BUFFER_SIZE", "Hasher", "pump"]

BUFFER_SIZE = 4 << 20


class Hasher(Protocol):
    def update(self, data: bytes | bytearray, /) -> None: ...


async def pump(
    chunks: AsyncIterator[bytes],
    hasher: Hasher,
    writer: StorageWriter,
    limit: int | None = None,
) -> int:
    """Hash and write everything from ``chunks``; return the byte count. Stops reading with
    ``OverflowError`` as soon as more than ``limit`` bytes arrive."""
    total = 0
    buffer = bytearray()
    pending: asyncio.Future[tuple[None, None]] | None = None

    async def flush() -> None:
        nonlocal pending, buffer
        # Hand the filled buffer over and start a new one: no copy of the bytes.
        data, buffer = buffer, bytearray()
        if pending is not None:
            await pending
        pending = asyncio.gather(asyncio.to_thread(hasher.update, data), writer.write(data))

    try:
        async for chunk in chunks:
            if not chunk:
                continue
            total += len(chunk)
            if limit is not None and total > limit:
                raise OverflowError(total)
            buffer += chunk
            if len(buffer) >= BUFFER_SIZE:
                await flush()
        if buffer:
            await flush()
        if pending is not None:
            await pending
            pending = None
    finally:
        if pending is not None:
            # Let the in-flight write finish before the caller discards or closes the writer.
            await asyncio.gather(pending, return_exceptions=True)
    return total
