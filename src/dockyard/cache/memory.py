"""A ``Cache`` in this process's memory, for tests and single-process use.

Entries are not shared with other processes: a registry running several worker processes or
replicas needs a shared cache (Redis), or each process would keep serving what another one
has since changed.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Sequence

__all__ = ["MemoryCache"]


class MemoryCache:
    """Least recently used entries beyond ``max_entries`` are evicted (``None``: no limit)."""

    def __init__(self, max_entries: int | None = 10_000) -> None:
        if max_entries is not None and max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self._max_entries = max_entries
        # key -> (value, monotonic deadline or None), least recently used first.
        self._entries: OrderedDict[str, tuple[bytes, float | None]] = OrderedDict()

    def __repr__(self) -> str:
        return f"MemoryCache(max_entries={self._max_entries})"

    def __len__(self) -> int:
        return len(self._entries)

    def _live(self, key: str, now: float) -> bytes | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        value, deadline = entry
        if deadline is not None and deadline <= now:
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return value

    def _put(self, key: str, value: bytes, ttl: float | None, now: float) -> None:
        self._entries[key] = (bytes(value), None if ttl is None else now + max(ttl, 0.001))
        self._entries.move_to_end(key)
        if self._max_entries is not None:
            while len(self._entries) > self._max_entries:
                self._entries.popitem(last=False)

    async def get(self, key: str) -> bytes | None:
        return self._live(key, time.monotonic())

    async def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        now = time.monotonic()
        return [self._live(key, now) for key in keys]

    async def set(self, key: str, value: bytes, ttl: float | None = None) -> None:
        self._put(key, value, ttl, time.monotonic())

    async def add(self, key: str, value: bytes, ttl: float | None = None) -> bool:
        now = time.monotonic()
        if self._live(key, now) is not None:
            return False
        self._put(key, value, ttl, now)
        return True

    async def delete(self, *keys: str) -> int:
        now = time.monotonic()
        found = 0
        for key in keys:
            if self._live(key, now) is not None:
                found += 1
                del self._entries[key]
        return found

    async def close(self) -> None:
        self._entries.clear()
