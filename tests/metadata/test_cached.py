"""The cached store: the contract on SQLite behind Redis (and behind the in-process cache),
invalidation across two replicas sharing one database and one Redis, and what happens while
Redis is dead or hung.

A third, uncached store on the same database (the *backdoor*) changes facts behind the
caches' backs: what a replica then still answers shows that it answered from its cache.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import pytest
from redis.exceptions import RedisError

from cache.redisserver import (
    RedisServer,
    delete_prefix,
    open_redis_cache,
    private_redis,
    shared_redis,
    unique_prefix,
)
from cache.redistopologies import fail_over, private_sentinel
from contracts.metadata_suite import (
    MetadataStoreContract,
    blob,
    linked_image,
    manifest,
)
from dockyard.cache.breaker import CircuitBreaker
from dockyard.cache.memory import MemoryCache
from dockyard.cache.redis import RedisCache
from dockyard.metadata.base import BlobRecord, ManifestRecord, MetadataStore
from dockyard.metadata.cached import CachedMetadataStore
from dockyard.metadata.engine import open_database
from dockyard.metadata.factory import open_store
from dockyard.metadata.migrate import upgrade
from dockyard.metadata.sql import SqlMetadataStore

# Short timeouts and cooldown, so that an outage is noticed and over quickly.
FAST = {"dialtimeout": "50ms", "readtimeout": "50ms", "writetimeout": "50ms"}
BOUND = 0.1
COOLDOWN = 0.3


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path.resolve()}"


@pytest.fixture(scope="module")
def redis_addr() -> Iterator[str]:
    with shared_redis() as addr:
        yield addr


# -- the contract ---------------------------------------------------------------------------


class TestCachedOnSqliteAndRedis(MetadataStoreContract):
    @pytest.fixture
    async def store(self, tmp_path: Path, redis_addr: str) -> AsyncIterator[MetadataStore]:
        prefix = unique_prefix()
        cache = await open_redis_cache({"addr": redis_addr})
        inner = await open_store(sqlite_url(tmp_path / "metadata.db"))
        store = CachedMetadataStore(inner, cache, prefix=prefix)
        yield store
        await store.close()
        await delete_prefix(cache, prefix)
        await cache.close()


class TestCachedOnSqliteAndMemory(MetadataStoreContract):
    @pytest.fixture
    async def store(self, tmp_path: Path) -> AsyncIterator[MetadataStore]:
        inner = await open_store(sqlite_url(tmp_path / "metadata.db"))
        store = CachedMetadataStore(inner, MemoryCache())
        yield store
        await store.close()


# -- two replicas ---------------------------------------------------------------------------


class PausingStore(SqlMetadataStore):
    """A real store that can hold a tag lookup, or a manifest push, after the database has
    answered or committed: the moment a race needs."""

    def __init__(self, url: str) -> None:
        super().__init__(open_database(url))
        self.pause_reads = False
        self.pause_writes = False
        self.paused = asyncio.Event()
        self.proceed = asyncio.Event()

    async def _pause(self) -> None:
        self.paused.set()
        await self.proceed.wait()

    async def get_tagged_manifest(self, repository: str, tag: str) -> ManifestRecord | None:
        record = await super().get_tagged_manifest(repository, tag)
        if self.pause_reads:
            await self._pause()
        return record

    async def put_manifest(
        self, manifest: ManifestRecord, tags: Any = (), events: Any = ()
    ) -> None:
        await super().put_manifest(manifest, tags, events)
        if self.pause_writes:
            await self._pause()


@dataclass
class Replicas:
    a: CachedMetadataStore
    b: CachedMetadataStore
    backdoor: MetadataStore
    a_inner: PausingStore
    b_inner: PausingStore
    prefix: str


@contextlib.asynccontextmanager
async def replicas(tmp_path: Path, section: dict[str, Any]) -> AsyncIterator[Replicas]:
    """Two replicas and a backdoor on one SQLite database and one Redis."""
    url = sqlite_url(tmp_path / "metadata.db")
    await upgrade(url)
    prefix = unique_prefix()
    caches = [await open_redis_cache(section) for _ in range(2)]
    inners = [PausingStore(url) for _ in range(2)]
    a, b = (
        CachedMetadataStore(
            inner,
            cache,
            prefix=prefix,
            breaker=CircuitBreaker(f"replica {name}'s cache", cooldown=COOLDOWN),
        )
        for name, inner, cache in zip("ab", inners, caches, strict=True)
    )
    backdoor = SqlMetadataStore(open_database(url))
    try:
        yield Replicas(a, b, backdoor, inners[0], inners[1], prefix)
    finally:
        for store in (a, b, backdoor):
            await store.close()
        with contextlib.suppress(RedisError, OSError):
            await delete_prefix(caches[0], prefix)
        for cache in caches:
            await cache.close()


@pytest.fixture
async def pair(tmp_path: Path, redis_addr: str) -> AsyncIterator[Replicas]:
    async with replicas(tmp_path, {"addr": redis_addr}) as made:
        yield made


async def cached_values(cache: RedisCache, prefix: str) -> list[bytes]:
    keys = [key.decode() async for key in cache.client.scan_iter(match=f"{prefix}*")]
    return [value for value in await cache.get_many(keys) if value is not None]


async def test_reads_are_answered_from_the_cache(pair: Replicas) -> None:
    image = await linked_image(pair.a, "repo", "one", ["latest"])
    layer = image.blobs[0]
    descriptor = await pair.backdoor.get_blob(layer)
    assert descriptor is not None
    for _ in range(2):  # the first read of a fresh cache only sets it up
        assert await pair.b.get_tagged_manifest("repo", "latest") == image
        assert await pair.b.get_manifest("repo", image.digest) == image
        assert await pair.b.get_repository_blob("repo", layer) == descriptor
        assert await pair.b.get_blob(layer) == descriptor

    await pair.backdoor.put_manifest(manifest("repo", "decoy"), ["latest"])
    await pair.backdoor.unlink_blob("repo", layer)
    await pair.backdoor.delete_manifest("repo", image.digest)

    for replica in (pair.a, pair.b):
        got = await replica.get_tagged_manifest("repo", "latest")
        assert got == image
        assert got is not None
        assert (got.payload, got.created_at) == (image.payload, got.created_at)
        assert await replica.get_manifest("repo", image.digest) == image
        assert await replica.get_repository_blob("repo", layer) == descriptor


async def test_a_tag_moved_through_one_replica_is_seen_at_once_through_the_other(
    pair: Replicas,
) -> None:
    first = await linked_image(pair.a, "repo", "first", ["latest"])
    for _ in range(2):
        assert await pair.b.get_tagged_manifest("repo", "latest") == first
    await pair.backdoor.put_manifest(manifest("repo", "decoy"), ["latest"])
    assert await pair.b.get_tagged_manifest("repo", "latest") == first  # cached

    second = await linked_image(pair.a, "repo", "second", ["latest"])
    assert await pair.b.get_tagged_manifest("repo", "latest") == second
    assert await pair.a.get_tagged_manifest("repo", "latest") == second

    # Back and forth, each move read through the other replica at once.
    for n in range(6):
        writer, reader = (pair.a, pair.b) if n % 2 else (pair.b, pair.a)
        record = manifest("repo", f"move-{n}")
        await writer.put_manifest(record, ["latest"])
        assert await reader.get_tagged_manifest("repo", "latest") == record
        assert await reader.get_tagged_manifest("repo", "latest") == record


async def test_a_manifest_deleted_through_one_replica_is_gone_at_once_through_the_other(
    pair: Replicas,
) -> None:
    image = await linked_image(pair.a, "repo", "doomed", ["latest", "v1"])
    kept = await linked_image(pair.a, "repo", "kept", ["stable"])
    for _ in range(2):
        for record, tag in ((image, "latest"), (image, "v1"), (kept, "stable")):
            assert await pair.b.get_tagged_manifest("repo", tag) == record
            assert await pair.b.get_manifest("repo", record.digest) == record

    assert await pair.a.delete_manifest("repo", image.digest) is True
    assert await pair.b.get_manifest("repo", image.digest) is None
    assert await pair.b.get_tagged_manifest("repo", "latest") is None
    assert await pair.b.get_tagged_manifest("repo", "v1") is None
    assert await pair.b.get_tagged_manifest("repo", "stable") == kept
    assert await pair.b.get_manifest("repo", kept.digest) == kept


async def test_a_tag_deleted_through_one_replica_is_gone_at_once_through_the_other(
    pair: Replicas,
) -> None:
    image = await linked_image(pair.a, "repo", "m", ["latest", "v1"])
    for _ in range(2):
        assert await pair.b.get_tagged_manifest("repo", "latest") == image
        assert await pair.b.get_tagged_manifest("repo", "v1") == image
    assert await pair.a.delete_tag("repo", "latest") is True
    assert await pair.b.get_tagged_manifest("repo", "latest") is None
    assert await pair.b.get_tagged_manifest("repo", "v1") == image
    assert await pair.b.get_manifest("repo", image.digest) == image


async def test_a_blob_unlinked_through_one_replica_is_gone_at_once_through_the_other(
    pair: Replicas,
) -> None:
    await pair.a.link_blob("repo", blob("a"), 5)
    await pair.a.link_blob("other", blob("a"), 5)
    for _ in range(2):
        for repository in ("repo", "other"):
            assert await pair.b.get_repository_blob(repository, blob("a")) == BlobRecord(
                blob("a"), 5
            )
    assert await pair.a.unlink_blob("repo", blob("a")) is True
    assert await pair.b.get_repository_blob("repo", blob("a")) is None
    assert await pair.b.get_repository_blob("other", blob("a")) == BlobRecord(blob("a"), 5)
    assert await pair.b.get_blob(blob("a")) == BlobRecord(blob("a"), 5)
    # Linked again: absent links were never cached, so it is seen at once.
    await pair.a.link_blob("repo", blob("a"), 5)
    assert await pair.b.get_repository_blob("repo", blob("a")) == BlobRecord(blob("a"), 5)


async def test_an_absent_tag_is_cached_until_one_is_pushed(pair: Replicas) -> None:
    for _ in range(2):
        assert await pair.b.get_tagged_manifest("repo", "latest") is None
    await pair.backdoor.put_manifest(manifest("repo", "decoy"), ["latest"])
    assert await pair.b.get_tagged_manifest("repo", "latest") is None  # cached

    pushed = manifest("repo", "pushed")
    await pair.a.put_manifest(pushed, ["latest"])
    assert await pair.b.get_tagged_manifest("repo", "latest") == pushed


async def test_large_manifests_are_not_cached(pair: Replicas) -> None:
    payload = b"{" + b" " * (1 << 20) + b"}"
    large = ManifestRecord(
        repository="repo",
        digest="sha256:" + hashlib.sha256(payload).hexdigest(),
        media_type="application/vnd.oci.image.manifest.v1+json",
        size=len(payload),
        payload=payload,
    )
    await pair.a.put_manifest(large, ["latest"])
    for _ in range(2):
        assert await pair.b.get_tagged_manifest("repo", "latest") == large
    decoy = manifest("repo", "decoy")
    await pair.backdoor.put_manifest(decoy, ["latest"])
    assert await pair.b.get_tagged_manifest("repo", "latest") == decoy


async def test_a_stale_fill_is_never_served(pair: Replicas) -> None:
    """B reads the old tag from the database; A moves the tag and returns; only then does B
    store what it read. The entry lands in Redis, and is never served."""
    first = await linked_image(pair.a, "repo", "first", ["latest"])
    assert await pair.b.get_tagged_manifest("repo", "latest") == first  # sets up the stamps
    assert await pair.a.delete_tag("repo", "unrelated") is False

    pair.b_inner.pause_reads = True
    slow_read = asyncio.create_task(pair.b.get_tagged_manifest("repo", "latest"))
    await pair.b_inner.paused.wait()
    second = await linked_image(pair.a, "repo", "second", ["latest"])
    pair.b_inner.pause_reads = False
    pair.b_inner.proceed.set()
    assert await slow_read == first  # it began before the move: either answer is right

    cache = pair.a.cache
    assert isinstance(cache, RedisCache)
    stale = [v for v in await cached_values(cache, pair.prefix) if v.endswith(first.payload)]
    assert stale, "the late fill should have reached Redis"
    for _ in range(3):
        assert await pair.b.get_tagged_manifest("repo", "latest") == second
        assert await pair.a.get_tagged_manifest("repo", "latest") == second


async def test_a_write_cancelled_after_its_commit_is_not_hidden(pair: Replicas) -> None:
    first = await linked_image(pair.a, "repo", "first", ["latest"])
    for _ in range(2):
        assert await pair.b.get_tagged_manifest("repo", "latest") == first

    second = manifest("repo", "second")
    pair.a_inner.pause_writes = True
    async with anyio.create_task_group() as group:
        group.start_soon(pair.a.put_manifest, second, ["latest"])
        await pair.a_inner.paused.wait()  # committed, not yet returned
        group.cancel_scope.cancel()
    pair.a_inner.pause_writes = False
    assert await pair.backdoor.get_tagged_manifest("repo", "latest") == second

    # The token was replaced, or the replica owes a flush that its next call pays.
    await pair.a.get_manifest("repo", second.digest)
    assert not pair.a.flush_owed
    assert await pair.b.get_tagged_manifest("repo", "latest") == second


async def test_malformed_entries_are_misses(pair: Replicas) -> None:
    image = await linked_image(pair.a, "repo", "m", ["latest"])
    layer = image.blobs[0]
    for _ in range(2):
        assert await pair.b.get_tagged_manifest("repo", "latest") == image
        assert await pair.b.get_manifest("repo", image.digest) == image
        assert await pair.b.get_repository_blob("repo", layer) is not None
    cache = pair.b.cache
    assert isinstance(cache, RedisCache)
    entries = 0
    async for raw_key in cache.client.scan_iter(match=f"{pair.prefix}*"):
        key = raw_key.decode()
        value = await cache.get(key)
        assert value is not None
        header, nul, payload = value.partition(b"\0")
        if not nul:
            continue  # an epoch or a token
        entries += 1
        # Keep the stamp (so it would be served), spoil the rest in a different way each.
        stamp = json.loads(header)[:2]
        spoilt = [[*stamp, "x"], [*stamp, "12", None], [*stamp, *(["?"] * 8)], [*stamp]]
        body = json.dumps(spoilt[entries % len(spoilt)]).encode()
        await cache.set(key, body + b"\0" + payload)
    assert entries >= 3
    for _ in range(2):
        assert await pair.b.get_tagged_manifest("repo", "latest") == image
        assert await pair.b.get_manifest("repo", image.digest) == image
        assert await pair.b.get_repository_blob("repo", layer) is not None


# -- Redis going away -----------------------------------------------------------------------


@pytest.fixture
def server() -> Iterator[RedisServer]:
    with private_redis() as server:
        yield server


def outage_messages(caplog: pytest.LogCaptureFixture, what: str) -> list[str]:
    return [
        record.getMessage()
        for record in caplog.records
        if record.name == "dockyard.cache" and what in record.getMessage()
    ]


async def until_breaker_closes(store: CachedMetadataStore, read: Any) -> None:
    """Read through ``store`` until its breaker has closed (a restarted server may refuse
    the first call on a connection made before it went away)."""
    for _ in range(5):
        await read()
        if not store.breaker.is_open:
            return
        await asyncio.sleep(COOLDOWN)
    pytest.fail("the cache did not come back")


async def test_redis_killed_mid_test(
    tmp_path: Path, server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="dockyard.cache")
    async with replicas(tmp_path, server.section(**FAST)) as pair:
        first = await linked_image(pair.a, "repo", "first", ["latest"])
        for _ in range(2):
            assert await pair.b.get_tagged_manifest("repo", "latest") == first

        server.kill()
        # Writes and reads go on, and answer fresh.
        second = await linked_image(pair.a, "repo", "second", ["latest"])
        assert pair.a.flush_owed
        assert await pair.b.get_tagged_manifest("repo", "latest") == second
        assert pair.a.breaker.is_open
        assert pair.b.breaker.is_open

        # The open breakers keep Redis out of the way: no call waits for it.
        started = time.monotonic()
        for n in range(100):
            assert await pair.b.get_tagged_manifest("repo", "latest") == second
            assert await pair.a.get_manifest("repo", second.digest) == second
            if n % 10 == 0:
                await pair.a.put_manifest(second, ["latest"])
        assert time.monotonic() - started < 3.0
        assert len(outage_messages(caplog, "is unavailable")) == 2  # once per replica

        server.restart()  # empty
        await asyncio.sleep(COOLDOWN)
        for replica in (pair.a, pair.b):
            await until_breaker_closes(
                replica, lambda r=replica: r.get_tagged_manifest("repo", "latest")
            )
        assert not pair.a.flush_owed
        assert len(outage_messages(caplog, "is available again")) == 2

        # Caching has resumed: a change behind its back is not seen...
        for _ in range(2):
            assert await pair.b.get_tagged_manifest("repo", "latest") == second
        await pair.backdoor.put_manifest(manifest("repo", "decoy"), ["latest"])
        assert await pair.b.get_tagged_manifest("repo", "latest") == second
        # ...and a change through a replica is.
        third = manifest("repo", "third")
        await pair.a.put_manifest(third, ["latest"])
        assert await pair.b.get_tagged_manifest("repo", "latest") == third


async def test_a_write_during_an_outage_is_flushed_when_the_writer_is_back(
    tmp_path: Path, server: RedisServer
) -> None:
    """Redis hangs but keeps its data. A tag moved meanwhile leaves a stale entry behind,
    stamped as current; the writer replaces the epoch as soon as it reaches Redis again."""
    async with replicas(tmp_path, server.section(**FAST)) as pair:
        # A third replica that sees no traffic during the outage.
        c = CachedMetadataStore(
            await open_store(sqlite_url(tmp_path / "metadata.db")),
            await open_redis_cache(server.section(**FAST)),
            prefix=pair.prefix,
            breaker=CircuitBreaker("replica c's cache", cooldown=COOLDOWN),
        )
        try:
            first = await linked_image(pair.a, "repo", "first", ["latest"])
            for _ in range(2):
                assert await c.get_tagged_manifest("repo", "latest") == first

            server.pause()
            started = time.monotonic()
            assert await pair.a.get_tagged_manifest("repo", "latest") == first
            assert time.monotonic() - started < BOUND + 0.5  # one timeout, then the database
            assert pair.a.breaker.is_open

            second = await linked_image(pair.a, "repo", "second", ["latest"])
            assert pair.a.flush_owed  # its breaker is open: the token was not replaced
            # B waits for Redis once, then not again until the cooldown is over.
            started = time.monotonic()
            for _ in range(60):
                assert await pair.b.get_tagged_manifest("repo", "latest") == second
            # Waiting for every call would take 60 timeouts; a sixth of that is generous.
            assert time.monotonic() - started < BOUND + 60 * BOUND / 6
            assert pair.b.breaker.is_open
            server.resume()

            # The documented window: a replica that never saw the outage still finds the
            # stale entry current, until the writer is back.
            assert await c.get_tagged_manifest("repo", "latest") == first

            await asyncio.sleep(COOLDOWN)
            await until_breaker_closes(pair.a, lambda: pair.a.get_manifest("repo", first.digest))
            assert not pair.a.flush_owed
            for replica in (c, pair.b, pair.a, c):
                assert await replica.get_tagged_manifest("repo", "latest") == second
        finally:
            await c.close()
            await c.cache.close()


async def test_a_failover_of_the_cache_flushes_what_it_may_have_lost(tmp_path: Path) -> None:
    """A Redis failover can drop a token replacement the old primary acknowledged but had not
    passed on, and keep the entries it should have invalidated. Replicas that learn of the
    failover replace the epoch before using the cache again."""
    with private_sentinel() as setup:
        async with replicas(tmp_path, setup.section()) as pair:
            first = await linked_image(pair.a, "repo", "first", ["latest"])
            for _ in range(2):
                assert await pair.b.get_tagged_manifest("repo", "latest") == first
            # The tag moved, and its token replacement is what the failover lost: the new
            # primary holds the entry, stamped as current.
            second = manifest("repo", "second")
            await pair.backdoor.put_manifest(second, ["latest"])
            assert await pair.b.get_tagged_manifest("repo", "latest") == first
            await asyncio.to_thread(fail_over, setup)

            deadline = time.monotonic() + 10
            while await pair.b.get_tagged_manifest("repo", "latest") != second:
                assert time.monotonic() < deadline, "the stale entry is still served"
                await asyncio.sleep(0.05)
            for replica in (pair.a, pair.b):
                for _ in range(2):
                    assert await replica.get_tagged_manifest("repo", "latest") == second
            assert not pair.b.flush_owed  # paid by its next call to the cache
