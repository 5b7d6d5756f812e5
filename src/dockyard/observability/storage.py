"""A ``StorageDriver`` that times every call of the driver it wraps, counts the bytes, and
keeps the gauge of uploads being written (with metrics on); and traces each call as a span of
the request it serves (with tracing on; single writes are not traced, reads are one span
each). Behaviour is the wrapped driver's, unchanged."""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Protocol

from dockyard.storage.base import FileInfo, StorageDriver, StorageWriter

if TYPE_CHECKING:
    from dockyard.observability.metrics import Metrics
    from dockyard.observability.tracing import Tracing

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


class _Count(Protocol):
    def inc(self, amount: float = 1) -> None: ...


class _Gauge(_Count, Protocol):
    def dec(self, amount: float = 1) -> None: ...


class _Uncounted:
    """Stands in for the counters when metrics are off."""

    def inc(self, amount: float = 1) -> None:
        pass

    def dec(self, amount: float = 1) -> None:
        pass


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
        with self._driver.timer("write", traced=False):
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
    def __init__(
        self, driver: StorageDriver, metrics: Metrics | None, tracing: Tracing | None = None
    ) -> None:
        self._driver = driver
        self.name = driver.name
        self._tracing = tracing
        self.read: _Count = _Uncounted()
        self.written: _Count = _Uncounted()
        self.uploads: _Gauge = _Uncounted()
        self._timers = {}
        if metrics is not None:
            self._timers = {
                operation: metrics.storage_duration.labels(driver.name, operation)
                for operation in _OPERATIONS
            }
            self.read = metrics.storage_bytes.labels(driver.name, "read")
            self.written = metrics.storage_bytes.labels(driver.name, "written")
            self.uploads = metrics.uploads

    def timer(
        self, operation: str, *, traced: bool = True
    ) -> contextlib.AbstractContextManager[object]:
        timer = self._timers.get(operation)
        if self._tracing is None or not traced:
            return contextlib.nullcontext() if timer is None else timer.time()
        span = self._tracing.span(f"storage {operation}", self._attributes(operation))
        if timer is None:
            return span
        stack = contextlib.ExitStack()
        stack.enter_context(span)
        stack.enter_context(timer.time())
        return stack

    def _attributes(self, operation: str) -> dict[str, str]:
        return {"dockyard.storage.driver": self.name, "dockyard.storage.operation": operation}

    def _observe_read(self, seconds: float) -> None:
        timer = self._timers.get("reader")
        if timer is not None:
            timer.observe(seconds)

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
        # Not made the current span: a stream may be resumed and closed from other tasks.
        tracing = self._tracing
        span = (
            None if tracing is None else tracing.start("storage reader", self._attributes("reader"))
        )
        chunks = self._driver.reader(path, offset, length)
        try:
            async for chunk in chunks:
                if first:
                    first = False
                    self._observe_read(time.perf_counter() - started)
                self.read.inc(len(chunk))
                yield chunk
        except BaseException as exc:
            if tracing is not None and span is not None:
                tracing.failed(span, exc)
            raise
        finally:
            if first:  # nothing was read: an empty range, or the read failed
                self._observe_read(time.perf_counter() - started)
            if span is not None:
                span.end()
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
