"""The Redis cache: the contract on a real server, and how it fails when Redis is gone, hung
or back again."""

from __future__ import annotations

import asyncio
import gc
import time
import warnings
from collections.abc import AsyncIterator, Iterator

import pytest
from redis.asyncio import Redis

from contracts.cache_suite import CacheContract
from dockyard.cache.base import Cache, CacheError
from dockyard.cache.factory import redis_client
from dockyard.cache.redis import RedisCache

from .redisserver import (
    RedisServer,
    delete_prefix,
    open_redis_cache,
    private_redis,
    shared_redis,
    unique_prefix,
)

# Short timeouts, so that failures come quickly: a call is bounded by their sum.
FAST = {"dialtimeout": "50ms", "readtimeout": "50ms", "writetimeout": "50ms"}
BOUND = 0.1


@pytest.fixture(scope="module")
def redis_addr() -> Iterator[str]:
    with shared_redis() as addr:
        yield addr


@pytest.fixture
def server() -> Iterator[RedisServer]:
    with private_redis() as server:
        yield server


class TestRedisCache(CacheContract):
    @pytest.fixture
    async def cache(self, redis_addr: str, prefix: str) -> AsyncIterator[Cache]:
        cache = await open_redis_cache({"addr": redis_addr})
        yield cache
        await delete_prefix(cache, prefix)
        await cache.close()


async def _fails_quickly(cache: Cache) -> None:
    for call in (
        cache.get("k"),
        cache.get_many(["k", "l"]),
        cache.set("k", b"v", ttl=1),
        cache.add("k", b"v"),
        cache.delete("k"),
    ):
        started = time.monotonic()
        with pytest.raises(CacheError):
            await call
        assert time.monotonic() - started < BOUND + 0.5


async def test_nothing_listening(server: RedisServer) -> None:
    addr = server.addr
    server.kill()
    cache = await open_redis_cache({"addr": addr, **FAST})  # opens all the same
    try:
        with pytest.raises(CacheError, match=f"redis at {addr}: GET failed"):
            await cache.get("k")
        await _fails_quickly(cache)
    finally:
        await cache.close()


async def test_hung_server_times_out(server: RedisServer) -> None:
    cache = await open_redis_cache(server.section(**FAST))
    try:
        await cache.set("k", b"v")
        server.pause()
        try:
            with pytest.raises(CacheError, match=r"timed out|Timeout"):
                await cache.get("k")
            await _fails_quickly(cache)
        finally:
            server.resume()
        assert await cache.get("k") == b"v"
    finally:
        await cache.close()


async def test_restarted_server_is_used_again(server: RedisServer) -> None:
    cache = await open_redis_cache(server.section(**FAST))
    try:
        await cache.set("k", b"before")
        server.kill()
        with pytest.raises(CacheError):
            await cache.get("k")
        server.restart()
        # Connections to the old process are gone; a call may meet one before it is noticed.
        for _ in range(3):
            try:
                assert await cache.get("k") is None  # a restarted server starts empty
                break
            except CacheError:
                continue
        else:
            pytest.fail("the cache did not reconnect")
        await cache.set("k", b"after")
        assert await cache.get("k") == b"after"
    finally:
        await cache.close()


async def test_credentials_and_database(server: RedisServer) -> None:
    setup = await open_redis_cache(server.section())
    await setup.client.acl_setuser(
        "registry", enabled=True, passwords=["+open"], keys=["*"], categories=["+@all"]
    )
    await setup.client.config_set("requirepass", "sesame")
    await setup.close()

    admin = await open_redis_cache(server.section(password="sesame", db=3))
    cache = await open_redis_cache(
        server.section(username="registry", password="open", db=3, **FAST)
    )
    refused = await open_redis_cache(server.section(password="wrong", **FAST))
    try:
        await cache.set("k", b"in db 3")
        assert await cache.get("k") == b"in db 3"
        assert await admin.get("k") == b"in db 3"
        with pytest.raises(CacheError, match="failed"):
            await refused.get("k")
    finally:
        for each in (admin, cache, refused):
            await each.close()


async def test_a_burst_beyond_the_pool_waits_for_connections(redis_addr: str) -> None:
    cache = await open_redis_cache({"addr": redis_addr, "poolsize": 2})
    prefix = unique_prefix()
    try:
        await cache.set(f"{prefix}:k", b"v")
        results = await asyncio.gather(*(cache.get(f"{prefix}:k") for _ in range(200)))
        assert results == [b"v"] * 200
        assert isinstance(cache.client, Redis)
        assert cache.client.connection_pool.max_connections == 2
    finally:
        await delete_prefix(cache, prefix)
        await cache.close()


async def test_a_call_that_waits_in_vain_for_its_turn_is_never_started(
    server: RedisServer,
) -> None:
    """With a limit on calls in flight (a Cluster's), a call still waiting for its turn when
    its time is up fails like any other, and the request it would have sent is dropped."""
    made = redis_client(server.section(readtimeout="1s"))  # the cache's bound comes first
    assert made is not None
    cache = RedisCache(made[0].client, timeout=BOUND, limit=1)
    server.pause()

    async def four_calls() -> list[type[BaseException]]:
        # One call holds the only turn until its time is up, as the others' is.
        results = await asyncio.gather(*(cache.get(key) for key in "abcd"), return_exceptions=True)
        return [type(result) for result in results]

    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            assert await four_calls() == [CacheError] * 4
            await asyncio.sleep(0)  # the finished tasks let go of their frames
            gc.collect()
    finally:
        server.resume()
        await cache.close()
    assert [str(w.message) for w in caught if "never awaited" in str(w.message)] == []
