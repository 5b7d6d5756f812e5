"""The in-process cache: the contract, and its bound on entries."""

from __future__ import annotations

import pytest

from contracts.cache_suite import CacheContract
from dockyard.cache.base import Cache
from dockyard.cache.memory import MemoryCache


class TestMemoryCache(CacheContract):
    @pytest.fixture
    async def cache(self) -> Cache:
        return MemoryCache()


async def test_least_recently_used_entries_go_first() -> None:
    cache = MemoryCache(max_entries=3)
    for name in "abc":
        await cache.set(name, name.encode())
    assert await cache.get("a") == b"a"  # now the most recently used
    await cache.set("d", b"d")
    assert len(cache) == 3
    assert await cache.get_many(["a", "b", "c", "d"]) == [b"a", None, b"c", b"d"]
    # Reading touched a, then c, then d: a is now the least recently used.
    assert await cache.add("e", b"e") is True
    assert await cache.get_many(["c", "d", "e", "a"]) == [b"c", b"d", b"e", None]


async def test_unbounded() -> None:
    cache = MemoryCache(max_entries=None)
    for n in range(20_000):
        await cache.set(str(n), b"")
    assert len(cache) == 20_000
    assert await cache.get("0") == b""


async def test_stored_values_are_copies() -> None:
    cache = MemoryCache()
    value = bytearray(b"abc")
    await cache.set("k", bytes(value))
    await cache.set("m", value)  # type: ignore[arg-type]  # what a careless caller might pass
    value[0] = ord("x")
    assert await cache.get("m") == b"abc"


def test_max_entries_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_entries"):
        MemoryCache(max_entries=0)


async def test_close_forgets_everything() -> None:
    cache = MemoryCache()
    await cache.set("k", b"v")
    await cache.close()
    assert await cache.get("k") is None
