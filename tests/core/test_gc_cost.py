"""Collection on a registry with many repositories touches only the candidates: counted in
storage operations (every call the collector makes through a counting driver) and in SQL
statements, which stay the same when the registry grows tenfold around the same garbage."""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Table, event
from sqlalchemy.engine import Connection, Engine

from core import test_gc
from core.test_gc import World
from dockyard.core.gc import Collector
from dockyard.core.paths import blob_path
from dockyard.digest import Digest
from dockyard.metadata.engine import AsyncDatabase
from dockyard.metadata.schema import (
    blobs,
    manifest_blobs,
    manifests,
    repositories,
    repository_blobs,
    tags,
)
from dockyard.metadata.sqlite import SqliteDatabase
from dockyard.storage.base import FileInfo, StorageDriver, StorageWriter
from e2e.registry import OCI_CONFIG, OCI_LAYER, OCI_MANIFEST, descriptor, digest_of
from e2e.registry import image_manifest as image_body

# The fixtures of the collector's other tests.
postgres_url = test_gc.postgres_url
database_url = test_gc.database_url
store = test_gc.store
world = test_gc.world


class CountingStorage:
    """Any storage driver, with every call counted by operation and path."""

    def __init__(self, inner: StorageDriver) -> None:
        self.inner = inner
        self.name = inner.name
        self.calls: list[tuple[str, str]] = []

    async def get_content(self, path: str) -> bytes:
        self.calls.append(("get_content", path))
        return await self.inner.get_content(path)

    async def put_content(self, path: str, data: bytes) -> None:
        self.calls.append(("put_content", path))
        await self.inner.put_content(path, data)

    def reader(self, path: str, offset: int = 0, length: int | None = None) -> AsyncIterator[bytes]:
        self.calls.append(("reader", path))
        return self.inner.reader(path, offset, length)

    async def writer(self, path: str, offset: int = 0) -> StorageWriter:
        self.calls.append(("writer", path))
        return await self.inner.writer(path, offset)

    async def stat(self, path: str) -> FileInfo:
        self.calls.append(("stat", path))
        return await self.inner.stat(path)

    async def list(self, path: str) -> list[str]:
        self.calls.append(("list", path))
        return await self.inner.list(path)

    async def move(self, source: str, destination: str) -> None:
        self.calls.append(("move", source))
        await self.inner.move(source, destination)

    async def delete(self, path: str) -> None:
        self.calls.append(("delete", path))
        await self.inner.delete(path)

    def walk(self, path: str) -> AsyncIterator[FileInfo]:
        self.calls.append(("walk", path))
        return self.inner.walk(path)

    async def redirect_url(self, path: str, method: str = "GET") -> str | None:
        self.calls.append(("redirect_url", path))
        return await self.inner.redirect_url(path, method)

    def local_path(self, path: str) -> str | None:
        return self.inner.local_path(path)


@contextmanager
def counted_statements(world: World) -> Iterator[Counter[str]]:
    """SQL statements executed meanwhile, by their first word and table."""
    database = world.store.database
    if isinstance(database, SqliteDatabase):
        engines: list[Engine] = [database.writer, database.reader]
    else:
        assert isinstance(database, AsyncDatabase)
        engines = [database.engine.sync_engine]
    seen: Counter[str] = Counter()

    def count(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        words = statement.split()
        seen[" ".join(words[:4])] += 1

    for engine in engines:
        event.listen(engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        for engine in engines:
            event.remove(engine, "before_cursor_execute", count)


def _insert_all(conn: Connection, rows: dict[Table, list[dict[str, Any]]]) -> None:
    for table, values in rows.items():
        conn.execute(table.insert(), values)


def _write(world: World, path: str, data: bytes) -> None:
    # Straight to the files, as thousands of driver calls would be most of the test's time.
    local = os.path.join(world.storage.inner.root, path)
    os.makedirs(os.path.dirname(local), exist_ok=True)
    with open(local, "wb") as file:
        file.write(data)


async def _fill(world: World, first: int, last: int) -> None:
    """Repositories ``first`` to ``last - 1``, each with a tagged image of a config and a
    layer: rows written in bulk (as a long-running registry whose collector has settled
    them holds them), bytes straight into storage."""
    now = datetime.now(UTC)
    rows: dict[Table, list[dict[str, Any]]] = {t: [] for t in (repositories, blobs)}
    rows |= {t: [] for t in (repository_blobs, manifests, manifest_blobs, tags)}
    for n in range(first, last):
        config = json.dumps({"repo": n}).encode()
        layer = os.urandom(64)
        payload = image_body(descriptor(OCI_CONFIG, config), [descriptor(OCI_LAYER, layer)])
        # Ids far above the ones the store hands out to the garbage pushed later.
        repository_id = manifest_id = 100_000 + n
        rows[repositories].append({"id": repository_id, "name": f"team{n % 7}/repo{n}"})
        rows[manifests].append(
            {
                "id": manifest_id,
                "repository_id": repository_id,
                "digest": digest_of(payload),
                "media_type": OCI_MANIFEST,
                "size": len(payload),
                "payload": payload,
                "created_at": now,
            }
        )
        rows[tags].append(
            {"repository_id": repository_id, "name": "v1", "manifest_id": manifest_id}
            | {"updated_at": now}
        )
        for data in (config, layer):
            digest = digest_of(data)
            _write(world, blob_path(Digest.parse(digest)), data)
            rows[blobs].append({"digest": digest, "size": len(data), "created_at": now})
            rows[repository_blobs].append(
                {"repository_id": repository_id, "digest": digest, "created_at": now}
            )
            rows[manifest_blobs].append({"manifest_id": manifest_id, "digest": digest})
    await world.store.database.transaction(_insert_all, rows)


async def _garbage(world: World, first: int) -> set[str]:
    """Three loose blobs and two untagged images (two blobs each) in distinct repositories;
    the blob paths a collection must delete."""
    paths = set()
    for n in range(first, first + 3):
        digest = await world.push_blob(f"team{n % 7}/repo{n}", os.urandom(32))
        assert await world.store.unlink_blob(f"team{n % 7}/repo{n}", digest)
        paths.add(blob_path(Digest.parse(digest)).rsplit("/", 1)[0])
    for n in range(first + 3, first + 5):
        _, blobs = await world.push_image(f"team{n % 7}/repo{n}", "tmp")
        assert await world.store.delete_tag(f"team{n % 7}/repo{n}", "tmp")
        paths |= {blob_path(Digest.parse(d)).rsplit("/", 1)[0] for d in blobs}
    return paths


async def _collect(world: World) -> tuple[list[tuple[str, str]], Counter[str]]:
    storage = CountingStorage(world.storage.inner)
    collector = Collector(world.gc, storage, 0.0, delete_untagged=True)
    with counted_statements(world) as statements:
        report = await collector.run()
    assert len(report.manifests) == 2
    assert len(report.blobs) == 7
    return storage.calls, statements


async def test_collection_touches_only_the_candidates_however_many_repositories(
    world: World,
) -> None:
    small, large = 100, 1000
    await _fill(world, 0, small)
    garbage = await _garbage(world, 0)
    calls, statements = await _collect(world)
    # Storage: one delete per garbage blob, and nothing else at all (no list, walk, stat).
    assert sorted(calls) == sorted(("delete", path) for path in garbage)

    await _fill(world, small, large)
    garbage = await _garbage(world, small)
    calls_large, statements_large = await _collect(world)
    assert sorted(calls_large) == sorted(("delete", path) for path in garbage)
    # Ten times the repositories, manifests and blobs; the same statements, one for one.
    assert statements_large == statements
    assert sum(statements.values()) < 200
