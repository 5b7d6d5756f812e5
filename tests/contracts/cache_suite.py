"""The contract every ``Cache`` keeps.

A cache's test module plugs it in with a subclass that provides a ``cache`` fixture; keys
are made with the ``key`` fixture, so that a shared server's other users are never touched::

    class TestMyCache(CacheContract):
        @pytest.fixture
        async def cache(self, prefix: str) -> AsyncIterator[Cache]:
            cache = open_my_cache(...)
            yield cache
            ...  # delete the keys under ``prefix``
            await cache.close()
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable

import pytest

from dockyard.cache.base import Cache

CONCURRENCY = 20
# Long enough that a loaded machine does not expire an entry before it is first read back.
SHORT_TTL = 0.2


KeyMaker = Callable[[str], str]


class CacheContract:
    """Tests any ``Cache`` through its public surface only."""

    @pytest.fixture
    async def cache(self) -> Cache:
        raise NotImplementedError("a cache's test class provides the `cache` fixture")

    @pytest.fixture
    def prefix(self) -> str:
        return f"dockyard-test-{secrets.token_hex(6)}:"

    @pytest.fixture
    def key(self, prefix: str) -> KeyMaker:
        return lambda name: prefix + name

    def test_satisfies_the_protocol(self, cache: Cache) -> None:
        assert isinstance(cache, Cache)

    async def test_missing(self, cache: Cache, key: KeyMaker) -> None:
        assert await cache.get(key("a")) is None
        assert await cache.get_many([key("a"), key("b")]) == [None, None]
        assert await cache.get_many([]) == []
        assert await cache.delete(key("a")) == 0
        assert await cache.delete() == 0

    async def test_set_and_get(self, cache: Cache, key: KeyMaker) -> None:
        await cache.set(key("a"), b"one")
        assert await cache.get(key("a")) == b"one"
        await cache.set(key("a"), b"two")
        assert await cache.get(key("a")) == b"two"

    async def test_every_byte_value_and_the_empty_value(self, cache: Cache, key: KeyMaker) -> None:
        everything = bytes(range(256)) * 4
        await cache.set(key("bytes"), everything)
        await cache.set(key("empty"), b"")
        assert await cache.get(key("bytes")) == everything
        # Empty is a value, not a miss.
        assert await cache.get(key("empty")) == b""
        assert await cache.get_many([key("empty")]) == [b""]

    async def test_large_value(self, cache: Cache, key: KeyMaker) -> None:
        value = secrets.token_bytes((4 << 20) + 1)
        await cache.set(key("large"), value)
        assert await cache.get(key("large")) == value

    async def test_keys_of_any_text(self, cache: Cache, key: KeyMaker) -> None:
        names = ["a:b", "a/b", "a b", "sha256:" + "0" * 64, "ü\u2603", "a*", "[x]"]
        for n, name in enumerate(names):
            await cache.set(key(name), str(n).encode())
        assert await cache.get_many([key(name) for name in names]) == [
            str(n).encode() for n in range(len(names))
        ]
        assert await cache.get(key("a?")) is None

    async def test_get_many_keeps_the_order(self, cache: Cache, key: KeyMaker) -> None:
        await cache.set(key("a"), b"A")
        await cache.set(key("c"), b"C")
        assert await cache.get_many([key("c"), key("b"), key("a"), key("c")]) == [
            b"C",
            None,
            b"A",
            b"C",
        ]

    async def test_ttl(self, cache: Cache, key: KeyMaker) -> None:
        await cache.set(key("brief"), b"x", ttl=SHORT_TTL)
        await cache.set(key("lasting"), b"y", ttl=60)
        assert await cache.get(key("brief")) == b"x"
        await asyncio.sleep(SHORT_TTL + 0.1)
        assert await cache.get(key("brief")) is None
        assert await cache.get_many([key("brief"), key("lasting")]) == [None, b"y"]
        assert await cache.delete(key("brief")) == 0

    async def test_set_without_ttl_keeps_the_entry(self, cache: Cache, key: KeyMaker) -> None:
        await cache.set(key("a"), b"first", ttl=SHORT_TTL)
        await cache.set(key("a"), b"second")
        await asyncio.sleep(SHORT_TTL + 0.1)
        assert await cache.get(key("a")) == b"second"

    async def test_set_with_ttl_replaces_a_lasting_entry(self, cache: Cache, key: KeyMaker) -> None:
        await cache.set(key("a"), b"first")
        await cache.set(key("a"), b"second", ttl=SHORT_TTL)
        await asyncio.sleep(SHORT_TTL + 0.1)
        assert await cache.get(key("a")) is None

    async def test_add(self, cache: Cache, key: KeyMaker) -> None:
        assert await cache.add(key("a"), b"first") is True
        assert await cache.add(key("a"), b"second") is False
        assert await cache.get(key("a")) == b"first"
        await cache.set(key("a"), b"third")
        assert await cache.add(key("a"), b"fourth") is False
        assert await cache.get(key("a")) == b"third"

    async def test_add_with_ttl_and_after_expiry(self, cache: Cache, key: KeyMaker) -> None:
        assert await cache.add(key("a"), b"first", ttl=SHORT_TTL) is True
        await asyncio.sleep(SHORT_TTL + 0.1)
        assert await cache.get(key("a")) is None
        assert await cache.add(key("a"), b"second") is True
        assert await cache.get(key("a")) == b"second"

    async def test_one_of_many_concurrent_adds_wins(self, cache: Cache, key: KeyMaker) -> None:
        results = await asyncio.gather(
            *(cache.add(key("a"), str(n).encode()) for n in range(CONCURRENCY))
        )
        assert results.count(True) == 1
        winner = results.index(True)
        assert await cache.get(key("a")) == str(winner).encode()

    async def test_delete(self, cache: Cache, key: KeyMaker) -> None:
        await cache.set(key("a"), b"1")
        await cache.set(key("b"), b"2")
        await cache.set(key("c"), b"3")
        assert await cache.delete(key("a"), key("b"), key("missing")) == 2
        assert await cache.get_many([key("a"), key("b"), key("c")]) == [None, None, b"3"]
        assert await cache.delete(key("a")) == 0
        assert await cache.add(key("a"), b"again") is True
