"""A ``Cache`` on Redis, through redis-py's asyncio client.

Each call is bounded by ``timeout`` as a whole (connecting included) and is never retried:
a Redis that is down or slow costs a request at most that long, and the caller decides what
to do next (see ``breaker.py``). Every failure comes out as ``CacheError``.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import RedisClusterException, RedisError

from dockyard.cache.base import CacheError, CacheLost

__all__ = ["RedisCache"]

T = TypeVar("T")


def _bytes(value: bytes | str | None) -> bytes | None:
    # The client is made without ``decode_responses``, so values come back as bytes.
    return value.encode() if isinstance(value, str) else value


def _milliseconds(ttl: float | None) -> int | None:
    return None if ttl is None else max(1, round(ttl * 1000))


class RedisCache:
    """A cache on ``client``, which it owns and closes. ``name`` says which server it is, in
    error messages; ``moved``, asked after each call, says whether the server may have lost
    writes it acknowledged (a failover): the call then raises ``CacheLost``. ``limit`` bounds
    the calls in flight, where the client's pool does not make callers wait."""

    def __init__(
        self,
        client: Redis | RedisCluster,
        *,
        timeout: float,
        name: str = "redis",
        moved: Callable[[], Awaitable[str | None]] | None = None,
        limit: int | None = None,
    ) -> None:
        if timeout <= 0:
            raise ValueError("timeout must be positive")
        self._client = client
        self._timeout = timeout
        self._name = name
        self._moved = moved
        self._moves = 0
        """Changes of primary seen so far."""
        self._slots = contextlib.nullcontext() if limit is None else asyncio.Semaphore(limit)

    @property
    def client(self) -> Redis | RedisCluster:
        return self._client

    @property
    def timeout(self) -> float:
        return self._timeout

    def __repr__(self) -> str:
        return f"RedisCache({self._name})"

    async def _call(self, what: str, operation: Awaitable[T]) -> T:
        moves = self._moves
        try:
            async with asyncio.timeout(self._timeout), self._slots:
                result = await operation
                # Asked after the call, which may have been what met the new primary: its
                # answer may come from the data the failover left, so it is not used.
                moved = None if self._moved is None else await self._moved()
                if moved is not None:
                    self._moves += 1
                elif self._moves != moves:
                    # Another call saw the move while this one was in flight, maybe on a
                    # connection to the old primary: what it wrote there may be lost too.
                    moved = "the primary moved while the call was in flight"
        except TimeoutError as error:
            raise CacheError(f"{self._name}: {what} timed out after {self._timeout}s") from error
        # The Cluster client's own errors (no node reachable, say) are not RedisErrors.
        except (RedisError, RedisClusterException, OSError) as error:
            raise CacheError(f"{self._name}: {what} failed: {error}") from error
        finally:
            # Timed out waiting for a slot, the call never started: say it never will.
            if inspect.iscoroutine(operation):
                operation.close()
        if moved is not None:
            raise CacheLost(f"{self._name}: {moved}")
        return result

    async def get(self, key: str) -> bytes | None:
        return _bytes(await self._call("GET", self._client.get(key)))

    async def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        if not keys:
            return []
        # A Cluster answers MGET only for keys of one slot: it asks each node for its own.
        multi = (
            self._client.mget_nonatomic(keys)
            if isinstance(self._client, RedisCluster)
            else self._client.mget(keys)
        )
        values = await self._call("MGET", multi)
        return [_bytes(value) for value in values]

    async def set(self, key: str, value: bytes, ttl: float | None = None) -> None:
        await self._call("SET", self._client.set(key, value, px=_milliseconds(ttl)))

    async def add(self, key: str, value: bytes, ttl: float | None = None) -> bool:
        done = await self._call(
            "SET NX", self._client.set(key, value, px=_milliseconds(ttl), nx=True)
        )
        return bool(done)

    async def delete(self, *keys: str) -> int:
        if not keys:
            return 0
        count: int = await self._call("DEL", self._client.delete(*keys))
        return count

    async def close(self) -> None:
        with contextlib.suppress(RedisError, OSError):
            await self._client.aclose()
