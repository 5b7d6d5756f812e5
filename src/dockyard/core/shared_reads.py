"""Concurrent reads of the same bytes of a blob share one read from storage.

When many clients pull the same layer at once (a rollout: every node pulls the new image
within seconds), each response would otherwise read the blob from the object store on its
own: the store's requests, its bandwidth and the registry's receiving work, once per client.
Blob paths are content-addressed, so their bytes never change: a response that asks for the
same range of the same path as a read still holding its first chunk follows that read.

The read is driven by its followers: it takes the next chunk from storage only once one of
them has taken every chunk so far, so a lone follower reads exactly as a plain read does.
Memory is bounded: chunks are held until the slowest follower has taken them, and once that
is ``window`` bytes or more while another follower waits for more, the slowest is detached.
It keeps the chunks it has not taken yet and reads the rest on its own, so a slow client
holds back the others only until the window is full. Once nobody can join any more and one
follower is left (a blob pulled by one client: the usual case), that follower takes the
storage read over and iterates it itself, without the hand-offs between tasks that sharing
costs for every chunk.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from dataclasses import dataclass, field

__all__ = ["WINDOW", "Opener", "SharedReads"]

Opener = Callable[[str, int, int], AsyncIterator[bytes]]
"""Opens a read of ``length`` bytes of ``path`` from ``offset``: the storage driver's."""

WINDOW = 16 << 20
"""Bytes a shared read holds for its slowest follower before detaching it."""


class SharedReads:
    """Reads of ``(path, offset, length)`` through ``open``, shared while they overlap."""

    def __init__(self, open: Opener, window: int = WINDOW) -> None:
        if window <= 0:
            raise ValueError("window must be positive")
        self._open = open
        self._window = window
        self._reads: dict[tuple[str, int, int], _Read] = {}

    def read(self, path: str, offset: int, length: int) -> AsyncGenerator[bytes, None]:
        """The bytes, from a read in progress if one can still be joined when iteration
        starts, else from a new one."""
        return self._follow((path, offset, length))

    @property
    def reads(self) -> int:
        """Shared reads that can still be joined."""
        return len(self._reads)

    async def _follow(self, key: tuple[str, int, int]) -> AsyncGenerator[bytes, None]:
        # Joining happens here, when the response starts taking chunks, not when it is built.
        read = self._reads.get(key)
        if read is None or not read.joinable:
            read = _Read(self._open, key, self._window, self._forget)
            self._reads[key] = read
        follower = _Follower()
        read.join(follower)
        try:
            async for chunk in read.chunks(follower):
                yield chunk
        finally:
            read.leave(follower)
        if follower.rest is not None:
            path, start, length = follower.rest
            async for chunk in self._open(path, start, length):
                yield chunk

    def _forget(self, read: _Read) -> None:
        if self._reads.get(read.key) is read:
            del self._reads[read.key]


@dataclass(eq=False, slots=True)
class _Follower:
    cursor: int = 0
    """Index (counted from the read's first chunk) of the next chunk to take."""
    kept: list[bytes] = field(default_factory=list)
    """Once detached: the chunks it had not taken yet."""
    rest: tuple[str, int, int] | None = None
    """Once detached: what it reads on its own after ``kept`` (absent when nothing is left)."""
    detached: bool = False


class _Read:
    def __init__(
        self,
        open: Opener,
        key: tuple[str, int, int],
        window: int,
        forget: Callable[[_Read], None],
    ) -> None:
        self.key = key
        self._open = open
        self._window = window
        self._forget = forget
        self._chunks: deque[bytes] = deque()
        self._base = 0
        """Index of ``_chunks[0]``: chunks before it were taken by every follower."""
        self._held = 0
        """Bytes in ``_chunks``."""
        self._read = 0
        """Bytes read from storage so far."""
        self._followers: list[_Follower] = []
        self._done = False
        self._error: BaseException | None = None
        self._news = asyncio.Event()
        """Set, and replaced, when a chunk arrives, followers are detached or the read ends."""
        self._demand = asyncio.Event()
        """Set while some follower waits for the next chunk."""
        self._task: asyncio.Task[None] | None = None
        self._handover: AsyncIterator[bytes] | None = None
        """The storage read, once the last follower is to take it over."""

    @property
    def joinable(self) -> bool:
        """Whether a new follower can take every chunk from the first."""
        return self._base == 0 and self._error is None

    def join(self, follower: _Follower) -> None:
        self._followers.append(follower)
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._produce())

    def leave(self, follower: _Follower) -> None:
        if follower in self._followers:
            self._followers.remove(follower)
        if not self._followers:
            self._forget(self)
            if self._task is not None and not self._task.done():
                self._task.cancel()
            elif self._handover is not None:
                # Handed over to a follower cancelled before it took the read: closed by a
                # task of its own, kept in ``_task`` until it is done.
                upstream, self._handover = self._handover, None
                self._task = asyncio.get_running_loop().create_task(_close(upstream))
            return
        self._trim()

    async def chunks(self, follower: _Follower) -> AsyncGenerator[bytes, None]:
        while not follower.detached:
            index = follower.cursor - self._base
            if index < len(self._chunks):
                chunk = self._chunks[index]
                follower.cursor += 1
                self._trim()
                yield chunk
                continue
            if self._handover is not None:
                upstream, self._handover = self._handover, None
                try:
                    async for chunk in upstream:
                        yield chunk
                finally:
                    await _close(upstream)
                return
            if self._done:
                if self._error is not None:
                    raise self._error
                return
            news = self._news
            self._demand.set()
            await news.wait()
        for chunk in follower.kept:
            yield chunk
        follower.kept = []

    async def _produce(self) -> None:
        path, offset, length = self.key
        upstream: AsyncIterator[bytes] | None = self._open(path, offset, length)
        try:
            while upstream is not None:
                await self._demand.wait()
                if self._base and len(self._followers) == 1:
                    # The first chunk is gone (nobody can join) and the one follower left is
                    # the one waiting: it reads on by itself.
                    self._handover, upstream = upstream, None
                    break
                self._detach_laggards()
                try:
                    chunk = await anext(upstream)
                except StopAsyncIteration:
                    break
                self._chunks.append(chunk)
                self._held += len(chunk)
                self._read += len(chunk)
                self._announce()
        except Exception as exc:
            self._error = exc
        finally:
            self._done = True
            self._announce()
            if upstream is not None:
                await _close(upstream)

    def _announce(self) -> None:
        news, self._news = self._news, asyncio.Event()
        news.set()
        self._demand.clear()

    def _detach_laggards(self) -> None:
        """Detach the slowest followers while they hold ``window`` bytes or more (called
        while another follower waits for the next chunk; the slowest have chunks to take, so
        none of them waits: each sees it is detached at its next step)."""
        path, offset, length = self.key
        while self._held >= self._window:
            slowest = [f for f in self._followers if f.cursor == self._base]
            if len(slowest) == len(self._followers):
                break
            for follower in slowest:
                follower.kept = list(self._chunks)
                if self._read < length:
                    follower.rest = (path, offset + self._read, length - self._read)
                follower.detached = True
                self._followers.remove(follower)
            self._trim()

    def _trim(self) -> None:
        """Drop the chunks every follower has taken."""
        if not self._followers:
            return
        lowest = min(f.cursor for f in self._followers)
        while self._base < lowest:
            self._held -= len(self._chunks.popleft())
            self._base += 1
            if self._base == 1:
                self._forget(self)


async def _close(upstream: AsyncIterator[bytes]) -> None:
    """Close a storage read (its connection). Its readers have their outcome: a failure to
    close changes nothing for them."""
    aclose = getattr(upstream, "aclose", None)
    if aclose is not None:
        with contextlib.suppress(Exception):
            await aclose()
