"""A ``StorageDriver`` that times every call of the driver it wraps, counts the bytes, and
keeps the gauge of uploads being written. Behaviour is the wrapped driver's, unchanged."""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator

from dockyard.observability.metrics import Metrics
from dockyard.storage.base import FileInfo, StorageDriver, StorageWriter

__all__ = ["MeteredStorage", "MeteredWriter"]

_OPERATIONS = (
    "get_content",
    "put_content",
    "reader",
    "writer",
    "write",
    "close",
    "commit",
    "cancel",
    "stat",
    "list",
    "move",
    "delete",
    "redirect_url",
)


class MeteredWriter:
    """Times the writes and the ending; the upload counts as in progress until it ends."""

    def __init__(self, writer: StorageWriter, driver: MeteredStorage) -> None:
        self._writer = writer
        self._driver = driver
        self._open = True
        driver.uploads.inc()

    @property
    def size(self) -> int:
        return self._writer.size

    async def write(self, data: bytes | bytearray) -> None:
        with self._driver.timer("write"):
            await self._writer.write(data)
        self._driver.written.inc(len(data))

    async def close(self) -> None:
        try:
            with self._driver.timer("close"):
                await self._writer.close()
        finally:
            self._ended()

    async def commit(self) -> None:
        try:
            with self._driver.timer("commit"):
                await self._writer.commit()
        finally:
            self._ended()

    async def cancel(self) -> None:
        try:
            with self._driver.timer("cancel"):
                await self._writer.cancel()
        finally:
            self._ended()

    def _ended(self) -> None:
        # A writer may be cancelled after a failed commit: count its end once.
        if self._open:
            self._open = False
            self._driver.uploads.dec()


class MeteredStorage:
    def __init__(self, driver: StorageDriver, metrics: Metrics) -> None:
        self._driver = driver
        self.name = driver.name
        self._timers = {
            operation: metrics.storage_duration.labels(driver.name, operation)
            for operation in _OPERATIONS
        }
        self.read = metrics.storage_bytes.labels(driver.name, "read")
        self.written = metrics.storage_bytes.labels(driver.name, "written")
        self.uploads = metrics.uploads

    def timer(self, operation: str) -> contextlib.AbstractContextManager[object]:
        return self._timers[operation].time()

    async def get_content(self, path: str) -> bytes:
        with self.timer("get_content"):
            data = await self._driver.get_content(path)
        self.read.inc(len(data))
        return data

    async def put_content(self, path: str, data: bytes) -> None:
        with self.timer("put_content"):
            await self._driver.put_content(path, data)
        self.written.inc(len(data))

    def reader(self, path: str, offset: int = 0, length: int | None = None) -> AsyncIterator[bytes]:
        return self._read(path, offset, length)

    async def _read(self, path: str, offset: int, length: int | None) -> AsyncIterator[bytes]:
        started = time.perf_counter()
        first = True
        chunks = self._driver.reader(path, offset, length)
        try:
            async for chunk in chunks:
                if first:
                    first = False
                    self._timers["reader"].observe(time.perf_counter() - started)
                self.read.inc(len(chunk))
                yield chunk
        finally:
            if first:  # nothing was read: an empty range, or the read failed
                self._timers["reader"].observe(time.perf_counter() - started)
            # Close the driver's stream now (its file or connection), not when collected.
            close = getattr(chunks, "aclose", None)
            if close is not None:
                await close()

    async def writer(self, path: str, offset: int = 0) -> StorageWriter:
        with self.timer("writer"):
            writer = await self._driver.writer(path, offset)
        return MeteredWriter(writer, self)

    async def stat(self, path: str) -> FileInfo:
        with self.timer("stat"):
            return await self._driver.stat(path)

    async def list(self, path: str) -> list[str]:
        with self.timer("list"):
            return await self._driver.list(path)

    async def move(self, source: str, destination: str) -> None:
        with self.timer("move"):
            await self._driver.move(source, destination)

    async def delete(self, path: str) -> None:
        with self.timer("delete"):
            await self._driver.delete(path)

    def walk(self, path: str) -> AsyncIterator[FileInfo]:
        return self._driver.walk(path)

    async def redirect_url(self, path: str, method: str = "GET") -> str | None:
        with self.timer("redirect_url"):
            return await self._driver.redirect_url(path, method)

    def local_path(self, path: str) -> str | None:
        return self._driver.local_path(path)
