"""Manifest lookups by tag: straight from SQLite and PostgreSQL, and through the cache.

    python tests/cache/bench_cached_reads.py [--seconds 2] [--tasks 16]

Needs Redis (``DOCKYARD_TEST_REDIS``, default 127.0.0.1:6379) and PostgreSQL
(``DOCKYARD_TEST_POSTGRES``, default postgresql://postgres@127.0.0.1:5432/test, where a
scratch database is made and dropped). Prints microseconds per lookup for one task reading
in a loop, and lookups per second for ``--tasks`` tasks reading at once.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import secrets
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import asyncpg
from sqlalchemy.engine import make_url

from dockyard.cache.factory import open_cache
from dockyard.cache.memory import MemoryCache
from dockyard.cache.redis import RedisCache
from dockyard.metadata.base import ManifestRecord, MetadataStore
from dockyard.metadata.cached import CachedMetadataStore
from dockyard.metadata.factory import open_store

REDIS = os.environ.get("DOCKYARD_TEST_REDIS", "127.0.0.1:6379")
POSTGRES = os.environ.get("DOCKYARD_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
REPOSITORY = "library/app"


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


async def _push(store: MetadataStore) -> ManifestRecord:
    """A typical image: a config and five layers, a manifest of about 1.2 KB, tagged."""
    blobs = [_digest(f"blob-{n}".encode()) for n in range(6)]
    for digest in blobs:
        await store.link_blob(REPOSITORY, digest, 1 << 20)
    payload = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": blobs[0],
                "size": 1 << 20,
            },
            "layers": [
                {
                    "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                    "digest": d,
                    "size": 1 << 20,
                }
                for d in blobs[1:]
            ],
        }
    ).encode()
    record = ManifestRecord(
        repository=REPOSITORY,
        digest=_digest(payload),
        media_type="application/vnd.oci.image.manifest.v1+json",
        size=len(payload),
        payload=payload,
        blobs=tuple(sorted(blobs)),
    )
    await store.put_manifest(record, ["latest"])
    return record


async def _sequential(lookup: Callable[[], Awaitable[object]], seconds: float) -> float:
    """Microseconds per lookup, one after another."""
    for _ in range(200):
        await lookup()
    count, started = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - started) < seconds:
        for _ in range(100):
            await lookup()
        count += 100
    return elapsed / count * 1e6


async def _concurrent(lookup: Callable[[], Awaitable[object]], seconds: float, tasks: int) -> float:
    """Lookups per second, ``tasks`` at once."""
    deadline = time.perf_counter() + seconds
    counts = [0] * tasks

    async def worker(n: int) -> None:
        while time.perf_counter() < deadline:
            await lookup()
            counts[n] += 1

    started = time.perf_counter()
    await asyncio.gather(*(worker(n) for n in range(tasks)))
    return sum(counts) / (time.perf_counter() - started)


@asynccontextmanager
async def _postgres_url() -> AsyncIterator[str]:
    name = f"dockyard_bench_{secrets.token_hex(4)}"
    admin = make_url(POSTGRES).render_as_string(hide_password=False)
    connection = await asyncpg.connect(admin)
    await connection.execute(f'CREATE DATABASE "{name}"')
    try:
        yield make_url(POSTGRES).set(database=name).render_as_string(hide_password=False)
    finally:
        await connection.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        await connection.close()


async def main(seconds: float, tasks: int) -> None:
    prefix = f"dockyard-bench-{secrets.token_hex(4)}"
    redis = await open_cache({"addr": REDIS})
    assert isinstance(redis, RedisCache)
    with tempfile.TemporaryDirectory() as directory:
        async with _postgres_url() as postgres_url:
            sqlite = await open_store(f"sqlite:///{directory}/metadata.db")
            postgres = await open_store(postgres_url)
            await _push(sqlite)
            expected = await _push(postgres)
            stores: list[tuple[str, MetadataStore]] = [
                ("SQLite", sqlite),
                ("PostgreSQL", postgres),
                ("Redis over SQLite", CachedMetadataStore(sqlite, redis, prefix=prefix)),
                ("Redis over PostgreSQL", CachedMetadataStore(postgres, redis, prefix=prefix)),
                ("in-process over PostgreSQL", CachedMetadataStore(postgres, MemoryCache())),
            ]
            print(f"get_tagged_manifest, {len(expected.payload)} B manifest, {seconds} s each")
            print(f"| store | us per lookup (1 task) | lookups/s ({tasks} tasks) |")
            print("|---|---|---|")
            for name, store in stores:

                async def lookup(store: MetadataStore = store) -> object:
                    record = await store.get_tagged_manifest(REPOSITORY, "latest")
                    assert record == expected
                    return record

                latency = await _sequential(lookup, seconds)
                rate = await _concurrent(lookup, seconds, tasks)
                print(f"| {name} | {latency:,.0f} | {rate:,.0f} |")
            await sqlite.close()
            await postgres.close()
    client = redis.client
    keys = [key async for key in client.scan_iter(match=f"{prefix}*")]
    if keys:
        await client.delete(*keys)
    await redis.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--tasks", type=int, default=16)
    arguments = parser.parse_args()
    asyncio.run(main(arguments.seconds, arguments.tasks))
