"""Concurrent reads of one range share a read from storage (a real filesystem driver)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from dockyard.core.shared_reads import SharedReads
from dockyard.storage.base import PathNotFound
from dockyard.storage.filesystem import FilesystemDriver

MiB = 1 << 20
PATH = "blobs/sha256/ab/abcdef/data"


@dataclass
class Storage:
    """A filesystem driver whose reads are recorded: what was opened, chunks handed out,
    reads closed."""

    driver: FilesystemDriver
    opened: list[tuple[str, int, int]] = field(default_factory=list)
    chunks: int = 0
    closed: int = 0
    gate: asyncio.Event | None = None
    """When set up, each read waits for it before its first chunk."""
    takers: list[asyncio.Task[object] | None] = field(default_factory=list)
    """The task that took each chunk from storage."""
    streams: list[AsyncIterator[bytes]] = field(default_factory=list)
    """Every read opened: held, so that only an explicit close (not garbage collection)
    closes one."""

    def reader(self, path: str, offset: int, length: int) -> AsyncIterator[bytes]:
        self.opened.append((path, offset, length))
        stream = self._read(path, offset, length)
        self.streams.append(stream)
        return stream

    async def _read(self, path: str, offset: int, length: int) -> AsyncIterator[bytes]:
        try:
            if self.gate is not None:
                await self.gate.wait()
            async for chunk in self.driver.reader(path, offset, length):
                self.chunks += 1
                self.takers.append(asyncio.current_task())
                yield chunk
        finally:
            self.closed += 1


@pytest.fixture
def data() -> bytes:
    return os.urandom(10 * MiB)  # ten of the filesystem driver's 1 MiB chunks


@pytest.fixture
async def storage(tmp_path: Path, data: bytes) -> Storage:
    driver = FilesystemDriver(str(tmp_path))
    await driver.put_content(PATH, data)
    return Storage(driver)


async def read_all(chunks: AsyncIterator[bytes]) -> bytes:
    return b"".join([chunk async for chunk in chunks])


async def test_readers_of_one_range_share_one_read(storage: Storage, data: bytes) -> None:
    reads = SharedReads(storage.reader)
    got = await asyncio.gather(*(read_all(reads.read(PATH, 0, len(data))) for _ in range(5)))
    assert got == [data] * 5
    assert storage.opened == [(PATH, 0, len(data))]
    assert storage.chunks == 10
    assert reads.reads == 0


async def test_different_ranges_are_read_apart(storage: Storage, data: bytes) -> None:
    reads = SharedReads(storage.reader)
    whole, part = await asyncio.gather(
        read_all(reads.read(PATH, 0, len(data))), read_all(reads.read(PATH, 5, 3 * MiB))
    )
    assert whole == data
    assert part == data[5 : 5 + 3 * MiB]
    assert sorted(storage.opened) == [(PATH, 0, len(data)), (PATH, 5, 3 * MiB)]


async def test_a_lone_reader_takes_chunks_from_storage_only_as_it_needs_them(
    storage: Storage, data: bytes
) -> None:
    reads = SharedReads(storage.reader)
    chunks = reads.read(PATH, 0, len(data))
    first = await anext(chunks)
    await asyncio.sleep(0.05)  # time for a read that ran ahead to do so
    assert storage.chunks == 1
    rest = await read_all(chunks)
    assert first + rest == data


async def test_a_lone_reader_takes_the_storage_read_over(storage: Storage, data: bytes) -> None:
    # Past the first chunk nobody can join: the reader's own task takes the rest from storage,
    # with no hand-off through the sharing task for each chunk.
    reads = SharedReads(storage.reader)
    reader = asyncio.create_task(read_all(reads.read(PATH, 0, len(data))))
    assert await reader == data
    assert storage.takers[-8:] == [reader] * 8
    assert storage.closed == 1
    assert reads.reads == 0


async def test_a_read_taken_over_is_closed_however_early_its_reader_leaves(
    storage: Storage, data: bytes
) -> None:
    reads = SharedReads(storage.reader)
    for steps in range(8):
        chunks = reads.read(PATH, 0, len(data))
        assert await anext(chunks) == data[:MiB]
        waiting = asyncio.create_task(anext(chunks))
        for _ in range(steps):
            await asyncio.sleep(0)
        waiting.cancel()
        await asyncio.gather(waiting, return_exceptions=True)
        await chunks.aclose()
    for _ in range(50):
        if storage.closed == len(storage.opened):
            break
        await asyncio.sleep(0.01)
    assert len(storage.opened) == 8
    assert storage.closed == 8
    assert reads.reads == 0


async def test_a_reader_arriving_after_the_first_chunk_was_taken_reads_alone(
    storage: Storage, data: bytes
) -> None:
    reads = SharedReads(storage.reader)
    early = reads.read(PATH, 0, len(data))
    first = await anext(early)
    late = await read_all(reads.read(PATH, 0, len(data)))
    assert late == data
    assert first + await read_all(early) == data
    assert storage.opened == [(PATH, 0, len(data))] * 2


async def test_a_slow_reader_is_detached_and_reads_the_rest_alone(
    storage: Storage, data: bytes
) -> None:
    reads = SharedReads(storage.reader, window=3 * MiB)
    slow = reads.read(PATH, 0, len(data))
    fast = reads.read(PATH, 0, len(data))
    slow_first, fast_first = await asyncio.gather(anext(slow), anext(fast))
    assert slow_first == fast_first == data[:MiB]
    # The slow one takes nothing more: the fast one still gets to the end, not held back by it.
    fast_rest = await asyncio.wait_for(read_all(fast), timeout=10)
    assert fast_first + fast_rest == data
    slow_rest = await read_all(slow)
    assert slow_first + slow_rest == data
    # Detached once the window was full: it kept those chunks and read the rest itself.
    assert len(storage.opened) == 2
    _, offset, length = storage.opened[1]
    assert offset == 4 * MiB
    assert offset + length == len(data)
    assert storage.chunks == 10 + 6


async def test_a_reader_that_leaves_does_not_disturb_the_others(
    storage: Storage, data: bytes
) -> None:
    reads = SharedReads(storage.reader)
    leaving = reads.read(PATH, 0, len(data))
    staying = reads.read(PATH, 0, len(data))
    await asyncio.gather(anext(leaving), anext(staying))
    await anext(leaving)
    await leaving.aclose()
    assert data[:MiB] + await read_all(staying) == data
    assert storage.opened == [(PATH, 0, len(data))]


async def test_the_storage_read_is_closed_when_every_reader_has_left(
    storage: Storage, data: bytes
) -> None:
    reads = SharedReads(storage.reader)
    chunks = reads.read(PATH, 0, len(data))
    await anext(chunks)
    await chunks.aclose()
    for _ in range(10):
        if storage.closed:
            break
        await asyncio.sleep(0.01)
    assert storage.closed == 1
    assert storage.chunks < 10
    assert reads.reads == 0


async def test_a_reader_cancelled_while_waiting_does_not_disturb_the_others(
    storage: Storage, data: bytes
) -> None:
    storage.gate = asyncio.Event()
    reads = SharedReads(storage.reader)
    cancelled = asyncio.create_task(read_all(reads.read(PATH, 0, len(data))))
    staying = asyncio.create_task(read_all(reads.read(PATH, 0, len(data))))
    await asyncio.sleep(0.01)  # both wait for the first chunk
    cancelled.cancel()
    await asyncio.sleep(0.01)
    storage.gate.set()
    assert await asyncio.wait_for(staying, timeout=10) == data
    assert cancelled.cancelled()
    assert storage.opened == [(PATH, 0, len(data))]


async def test_a_storage_error_reaches_every_reader(storage: Storage) -> None:
    reads = SharedReads(storage.reader)
    missing = "blobs/sha256/cd/cdef/data"
    results = await asyncio.gather(
        *(read_all(reads.read(missing, 0, MiB)) for _ in range(3)), return_exceptions=True
    )
    assert [type(result) for result in results] == [PathNotFound] * 3
    assert storage.opened == [(missing, 0, MiB)]
    # A failed read is not joined: the next reader tries storage again.
    with pytest.raises(PathNotFound):
        await read_all(reads.read(missing, 0, MiB))
    assert len(storage.opened) == 2


async def test_the_window_must_be_positive(storage: Storage) -> None:
    with pytest.raises(ValueError, match="window"):
        SharedReads(storage.reader, window=0)
