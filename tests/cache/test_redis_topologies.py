"""The Redis cache on a primary that Sentinel watches (Distribution 3.x's ``mastername``) and
on a Redis Cluster (several ``addrs``): the contract on real servers, where the keys land, a
failover of each, and the sections that choose them."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from redis import Redis as SyncRedis
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster

from contracts.cache_suite import CacheContract
from dockyard.cache.base import Cache, CacheError, CacheLost
from dockyard.cache.factory import open_cache

from .redisserver import delete_prefix, open_redis_cache
from .redistopologies import (
    MASTER,
    ClusterSetup,
    SentinelSetup,
    fail_over,
    private_cluster,
    private_sentinel,
)


@pytest.fixture(scope="module")
def sentinel() -> Iterator[SentinelSetup]:
    with private_sentinel() as setup:
        yield setup


@pytest.fixture(scope="module")
def cluster() -> Iterator[ClusterSetup]:
    with private_cluster() as setup:
        yield setup


async def set_until_the_move_is_reported(
    cache: Cache, key: str, value: bytes, seconds: float = 15.0
) -> list[CacheLost]:
    """Set ``key`` again and again until a call has reported a failover (``CacheLost``) and a
    later one has succeeded; the reports. Calls may also fail while the roles change."""
    lost: list[CacheLost] = []
    deadline = time.monotonic() + seconds
    while True:
        assert time.monotonic() < deadline, "no failover reported, then the new primary used"
        try:
            await cache.set(key, value)
            if lost:
                return lost
        except CacheLost as error:
            lost.append(error)
        except CacheError:
            pass
        await asyncio.sleep(0.05)


class TestClusterCache(CacheContract):
    @pytest.fixture
    async def cache(self, cluster: ClusterSetup, prefix: str) -> AsyncIterator[Cache]:
        cache = await open_redis_cache({"addrs": cluster.addrs})
        yield cache
        await delete_prefix(cache, prefix)
        await cache.close()


class TestSentinelCache(CacheContract):
    @pytest.fixture
    async def cache(self, sentinel: SentinelSetup, prefix: str) -> AsyncIterator[Cache]:
        cache = await open_redis_cache(sentinel.section())
        yield cache
        await delete_prefix(cache, prefix)
        await cache.close()


async def test_the_keys_land_on_the_primary_the_sentinel_names(sentinel: SentinelSetup) -> None:
    cache = await open_redis_cache(sentinel.section())
    try:
        await cache.set("dockyard-topology:k", b"v")
        with SyncRedis(port=sentinel.current_primary()) as primary:
            assert primary.get("dockyard-topology:k") == b"v"
            primary.delete("dockyard-topology:k")
        assert repr(cache) == f"RedisCache(redis {MASTER} (sentinels at {sentinel.sentinel.addr}))"
    finally:
        await cache.close()


async def test_a_failover_is_reported_then_the_new_primary_is_used() -> None:
    # A setup of its own: the failover swaps the roles of its servers.
    with private_sentinel() as setup:
        cache = await open_redis_cache(setup.section())
        try:
            await cache.set("k", b"before")
            new = await asyncio.to_thread(fail_over, setup)
            assert new == setup.replica.port
            lost = await set_until_the_move_is_reported(cache, "k", b"after")
            assert len(lost) == 1
            assert f"the primary moved from {setup.primary.addr} to {setup.replica.addr}" in str(
                lost[0]
            )
            with SyncRedis(port=new) as primary:
                assert primary.get("k") == b"after"
            assert await cache.get("k") == b"after"
        finally:
            await cache.close()


async def test_a_write_in_flight_to_the_old_primary_when_the_move_is_seen_is_reported() -> None:
    """A write that went out to the old primary before anyone saw the failover, and came back
    after another call saw it, may be lost like the writes before: it says so too."""
    with private_sentinel() as setup:
        cache = await open_redis_cache(setup.section(readtimeout="5s"))
        try:
            await cache.set("k", b"before")  # a connection to the old primary, now idle
            await asyncio.to_thread(fail_over, setup)
            setup.primary.pause()
            try:
                # Within the watch's second: out on the idle connection, held by the pause.
                in_flight = asyncio.ensure_future(cache.set("k", b"in flight"))
                await asyncio.sleep(1.1)
                with pytest.raises(CacheLost, match="moved from"):
                    await cache.get("other")  # a new connection asks the Sentinels
            finally:
                setup.primary.resume()
            with pytest.raises(CacheLost, match="moved while the call was in flight"):
                await in_flight
        finally:
            await cache.close()


async def test_the_section_chooses_sentinel() -> None:
    cache = await open_redis_cache(
        {"addrs": ["127.0.0.1:1", "127.0.0.1:2"], "mastername": "primary", "poolsize": 8}
    )
    try:
        client = cache.client
        assert type(client) is not Redis  # the primary's client, closing the Sentinels' too
        pool = client.connection_pool
        assert pool.service_name == "primary"  # type: ignore[attr-defined]
        assert pool.max_connections == 8
        assert repr(cache) == "RedisCache(redis primary (sentinels at 127.0.0.1:1,127.0.0.1:2))"
        with pytest.raises(CacheError):  # nothing listens there
            await cache.get("k")
    finally:
        await cache.close()


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"addr": "h:1", "sentinelpassword": "x"}, r"redis\.sentinelpassword: only with"),
        ({"addr": "h:1", "sentinelusername": "x"}, r"redis\.sentinelusername: only with"),
        ({"addrs": ["h:1", "h:99999"], "mastername": "m"}, r"redis\.addrs\[1\]: invalid"),
        ({"addrs": ["h:1"], "mastername": ["m"]}, r"redis\.mastername: expected text"),
    ],
)
async def test_malformed_sentinel_sections_name_the_key(
    section: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        await open_cache(section)


async def test_a_cluster_spreads_keys_over_its_nodes(cluster: ClusterSetup) -> None:
    cache = await open_redis_cache({"addrs": cluster.addrs})
    keys = [f"dockyard-topology:{n}" for n in range(30)]
    try:
        for n, key in enumerate(keys):
            await cache.set(key, str(n).encode())
        # One read of keys in many slots (a plain MGET would refuse them: CROSSSLOT).
        assert await cache.get_many(keys) == [str(n).encode() for n in range(30)]
        held = []
        for server in cluster.primaries:
            with SyncRedis(port=server.port) as node:  # a node scans its own keys only
                held.append(sum(1 for _ in node.scan_iter(match="dockyard-topology:*")))
        assert sum(held) == len(keys)
        assert all(held), f"keys per node: {held}"
        assert await cache.delete(*keys) == len(keys)
        assert await cache.get_many(keys) == [None] * len(keys)
        assert repr(cache) == f"RedisCache(redis cluster at {','.join(cluster.addrs)})"
    finally:
        await cache.close()


async def test_a_cluster_failover_is_reported_then_the_new_primary_is_used() -> None:
    with private_cluster(replica=True) as setup:
        assert setup.replica is not None
        cache = await open_redis_cache({"addrs": setup.addrs})
        try:
            # A key of the first primary, the one whose replica takes over.
            key = next(f"k{n}" for n in range(1000) if _slot_of_first(setup, f"k{n}"))
            await cache.set(key, b"before")
            with SyncRedis(port=setup.replica.port) as replica:
                replica.execute_command("CLUSTER FAILOVER")
                deadline = time.monotonic() + 30
                while replica.info("replication")["role"] != "master":
                    assert time.monotonic() < deadline, "the replica was not promoted"
                    await asyncio.sleep(0.05)
            lost = await set_until_the_move_is_reported(cache, key, b"after")
            assert len(lost) == 1
            assert "changed: writes they acknowledged may be lost" in str(lost[0])
            with SyncRedis(port=setup.replica.port) as promoted:
                assert promoted.get(key) == b"after"
            assert await cache.get_many([key]) == [b"after"]
        finally:
            await cache.close()


def _slot_of_first(setup: ClusterSetup, key: str) -> bool:
    """Whether the first primary serves ``key``."""
    with SyncRedis(port=setup.primaries[0].port) as node:
        slot = int(node.execute_command("CLUSTER KEYSLOT", key))
        share = 16384 // len(setup.primaries)
    return slot < share


async def test_the_section_chooses_a_cluster() -> None:
    cache = await open_redis_cache({"addrs": ["127.0.0.1:1", "127.0.0.1:2"], "poolsize": 8})
    try:
        assert isinstance(cache.client, RedisCluster)
        with pytest.raises(CacheError):  # nothing listens there
            await cache.get("k")
    finally:
        await cache.close()
