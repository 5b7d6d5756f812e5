"""The ``Cache`` seam: bytes under string keys, each with an optional time to live.

A cache may forget anything at any moment (eviction, expiry, a restart), so what a caller
stores must be safe to lose. It may also be unreachable: every method then raises
``CacheError`` within a short, bounded time, and callers fall back to the source of truth.

Errors::

    CacheError    the cache could not be reached, or did not answer in time
    CacheLost     (a CacheError) the cache may have dropped writes it had acknowledged: its
                  primary changed (a failover), and writes made just before may not have
                  reached the new one. What was stored may be stale, not only missing.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

__all__ = ["Cache", "CacheError", "CacheLost"]


class CacheError(Exception):
    """The cache could not be reached, or did not answer in time."""


class CacheLost(CacheError):
    """The cache may have dropped writes it had acknowledged (a failover to a replica that
    had not received them): entries that those writes replaced or invalidated may be back."""


@runtime_checkable
class Cache(Protocol):
    """Bytes by key. A ``ttl`` is in seconds (at least a millisecond); ``None`` keeps the
    entry until it is deleted or evicted."""

    async def get(self, key: str) -> bytes | None: ...

    async def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        """The values of ``keys``, in their order (``None`` where missing), read at once."""
        ...

    async def set(self, key: str, value: bytes, ttl: float | None = None) -> None: ...

    async def add(self, key: str, value: bytes, ttl: float | None = None) -> bool:
        """Set ``key`` only if it is missing; whether it was set."""
        ...

    async def delete(self, *keys: str) -> int:
        """Delete ``keys``; how many there were."""
        ...

    async def close(self) -> None: ...
