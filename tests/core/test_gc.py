"""Garbage collection in process: the candidate queues, the collector's decisions, dry runs,
placement leases and cost, on SQLite and PostgreSQL with a real filesystem driver."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update
from sqlalchemy.engine import Connection

from dockyard.cache.memory import MemoryCache
from dockyard.core.gc import Collector, GcReport, Placements
from dockyard.core.manifests import Reference
from dockyard.core.paths import blob_path
from dockyard.core.policy import Policy
from dockyard.core.registry import Registry
from dockyard.digest import Digest
from dockyard.metadata.cached import CachedMetadataStore
from dockyard.metadata.engine import Database
from dockyard.metadata.factory import open_store
from dockyard.metadata.gc import GcStore
from dockyard.metadata.gc_blobs import BlobVerdict
from dockyard.metadata.migrate import upgrade
from dockyard.metadata.schema import gc_blob_queue, gc_manifest_queue, metadata
from dockyard.metadata.sql import SqlMetadataStore
from dockyard.storage.base import FileInfo, PathNotFound, StorageDriver, StorageWriter
from dockyard.storage.filesystem import FilesystemDriver
from e2e.registry import OCI_CONFIG, OCI_INDEX, OCI_LAYER, descriptor, digest_of
from e2e.registry import image_manifest as image_body
from e2e.registry import index_manifest as index_body


class CountingDriver:
    """A filesystem driver that counts what the collector asks of storage."""

    def __init__(self, inner: FilesystemDriver) -> None:
        self.inner = inner
        self.name = inner.name
        self.deletes: list[str] = []
        self.listings = 0

    async def get_content(self, path: str) -> bytes:
        return await self.inner.get_content(path)

    async def put_content(self, path: str, data: bytes) -> None:
        await self.inner.put_content(path, data)

    def reader(self, path: str, offset: int = 0, length: int | None = None) -> AsyncIterator[bytes]:
        return self.inner.reader(path, offset, length)

    async def writer(self, path: str, offset: int = 0) -> StorageWriter:
        return await self.inner.writer(path, offset)

    async def stat(self, path: str) -> FileInfo:
        return await self.inner.stat(path)

    async def list(self, path: str) -> list[str]:
        self.listings += 1
        return await self.inner.list(path)

    async def move(self, source: str, destination: str) -> None:
        await self.inner.move(source, destination)

    async def delete(self, path: str) -> None:
        if path.startswith("blobs/"):
            self.deletes.append(path)
        await self.inner.delete(path)

    def walk(self, path: str) -> AsyncIterator[FileInfo]:
        self.listings += 1
        return self.inner.walk(path)

    async def redirect_url(self, path: str, method: str = "GET") -> str | None:
        return None

    def local_path(self, path: str) -> str | None:
        return self.inner.local_path(path)


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    from metadata.test_postgres import fresh_database

    with fresh_database() as url:
        asyncio.run(upgrade(url))
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'metadata.db'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[SqlMetadataStore]:
    opened = await open_store(database_url)
    if opened.database.dialect == "postgresql":
        tables = ", ".join(f'"{table.name}"' for table in metadata.sorted_tables)
        await opened.database.transaction(
            Connection.exec_driver_sql, f"TRUNCATE {tables} RESTART IDENTITY"
        )
    yield opened
    await opened.close()


@dataclass
class World:
    store: SqlMetadataStore
    storage: CountingDriver
    registry: Registry
    gc: GcStore

    def collector(self, grace: float = 0.0, delete_untagged: bool = False) -> Collector:
        return Collector(self.gc, self.storage, grace, delete_untagged)

    async def push_blob(self, repository: str, data: bytes) -> str:
        digest = digest_of(data)

        async def body() -> AsyncIterator[bytes]:
            yield data

        await self.registry.uploads.monolithic(repository, Digest.parse(digest), body(), len(data))
        return digest

    async def push_image(
        self, repository: str, tag: str | None, layers: list[bytes] | None = None, **fields: Any
    ) -> tuple[str, list[str]]:
        """An image with a fresh config (and the given or one fresh layer): its digest and
        blob digests."""
        config = json.dumps({"nonce": os.urandom(8).hex()}).encode()
        layers = layers if layers is not None else [os.urandom(300)]
        blobs = [await self.push_blob(repository, config)]
        blobs += [await self.push_blob(repository, layer) for layer in layers]
        payload = image_body(
            descriptor(OCI_CONFIG, config), [descriptor(OCI_LAYER, la) for la in layers], **fields
        )
        return await self.push_manifest(repository, tag, payload), blobs

    async def push_manifest(
        self, repository: str, tag: str | None, payload: bytes, media_type: str = ""
    ) -> str:
        reference = Reference.parse(tag or digest_of(payload))
        pushed = await self.registry.manifests.put(
            repository, reference, payload, media_type or json.loads(payload)["mediaType"]
        )
        return pushed.digest

    async def has_bytes(self, digest: str) -> bool:
        try:
            await self.storage.stat(blob_path(Digest.parse(digest)))
        except PathNotFound:
            return False
        return True

    async def stored_blobs(self) -> set[str]:
        found = set()
        try:
            async for info in self.storage.inner.walk("blobs"):
                if not info.is_dir and info.path.endswith("/data"):
                    parts = info.path.split("/")
                    found.add(f"{parts[1]}:{parts[3]}")
        except PathNotFound:
            pass
        return found

    async def queued_blobs(self) -> set[str]:
        rows = await self.store.database.read(select(gc_blob_queue.c.digest))
        return {row.digest for row in rows}

    async def queued_manifests(self) -> set[str]:
        rows = await self.store.database.read(select(gc_manifest_queue.c.digest))
        return {row.digest for row in rows}


@pytest.fixture
def world(store: SqlMetadataStore, tmp_path: Path) -> World:
    storage = CountingDriver(FilesystemDriver(str(tmp_path / "data")))
    gc = GcStore(store.database)
    driver: StorageDriver = storage
    registry = Registry(driver, store, Policy(delete_enabled=True), placements=Placements(gc))
    return World(store, storage, registry, gc)


async def test_unlinked_blob_is_queued_and_collected_after_the_grace(world: World) -> None:
    digest = await world.push_blob("repo", b"loose bytes")
    assert await world.store.unlink_blob("repo", digest)
    assert digest in await world.queued_blobs()
    kept = await world.collector(grace=3600).run()
    assert kept == GcReport()
    assert await world.has_bytes(digest)

    report = await world.collector(grace=0).run()
    assert report.blobs == [digest]
    assert report.bytes_freed == len(b"loose bytes")
    assert not await world.has_bytes(digest)
    assert await world.store.get_blob(digest) is None
    assert await world.queued_blobs() == set()


async def test_a_linked_blob_is_kept_through_the_grace_then_goes(world: World) -> None:
    digest = await world.push_blob("repo", b"pushed, never used")
    assert await world.collector(grace=3600).run() == GcReport()
    assert await world.store.get_repository_blob("repo", digest) is not None
    report = await world.collector(grace=0).run()
    assert report.blobs == [digest]
    assert await world.store.get_repository_blob("repo", digest) is None


async def test_a_referenced_blob_is_never_collected(world: World) -> None:
    image, blobs = await world.push_image("app", "v1")
    # Unlinked in the repository, but its manifest still references it.
    for digest in blobs:
        assert await world.store.unlink_blob("app", digest)
    # And linked, unreferenced, in another repository.
    await world.registry.uploads.mount("other", Digest.parse(blobs[1]), "app")
    report = await world.collector(grace=0, delete_untagged=True).run()
    assert report == GcReport()
    for digest in blobs:
        assert await world.has_bytes(digest)
        assert await world.store.get_blob(digest) is not None
    assert await world.store.get_manifest("app", image) is not None


async def test_deleting_a_manifest_frees_its_blobs_but_not_shared_ones(world: World) -> None:
    shared = os.urandom(100)
    image, blobs = await world.push_image("one", "v1", [shared])
    _, other_blobs = await world.push_image("two", "v1", [shared])
    assert await world.store.delete_manifest("one", image)
    assert set(blobs) <= await world.queued_blobs()
    report = await world.collector(grace=0).run()
    shared_digest = digest_of(shared)
    assert sorted(report.blobs) == sorted(d for d in blobs if d != shared_digest)
    assert await world.has_bytes(shared_digest)
    # The layer's link in "one" went with the manifest that needed it; "two" still serves it.
    assert await world.store.get_repository_blob("one", shared_digest) is None
    assert await world.store.get_repository_blob("two", shared_digest) is not None
    for digest in other_blobs:
        assert await world.has_bytes(digest)


async def test_untagged_manifests_go_only_with_the_flag(world: World) -> None:
    old, old_blobs = await world.push_image("app", "latest")
    _, new_blobs = await world.push_image("app", "latest")  # moves the tag
    assert old in await world.queued_manifests()
    assert await world.collector(grace=0).run() == GcReport()
    assert await world.store.get_manifest("app", old) is not None
    assert old in await world.queued_manifests()

    report = await world.collector(grace=0, delete_untagged=True).run()
    assert report.manifests == [("app", old)]
    assert sorted(report.blobs) == sorted(old_blobs)
    assert await world.store.get_manifest("app", old) is None
    assert await world.store.get_tagged_manifest("app", "latest") is not None
    for digest in new_blobs:
        assert await world.has_bytes(digest)
    for digest in old_blobs:
        assert not await world.has_bytes(digest)


async def test_deleted_tag_and_grace_for_untagged(world: World) -> None:
    image, _ = await world.push_image("app", "v1")
    assert await world.store.delete_tag("app", "v1")
    assert await world.collector(grace=3600, delete_untagged=True).run() == GcReport()
    report = await world.collector(grace=0, delete_untagged=True).run()
    assert report.manifests == [("app", image)]


async def test_an_index_keeps_its_children(world: World) -> None:
    child, child_blobs = await world.push_image("multi", "tmp")
    index = index_body(
        [
            {
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": child,
                "size": len((await world.store.get_manifest("multi", child)).payload),  # type: ignore[union-attr]
            }
        ]
    )
    index_digest = await world.push_manifest("multi", "latest", index, OCI_INDEX)
    assert await world.store.delete_tag("multi", "tmp")
    assert await world.collector(grace=0, delete_untagged=True).run() == GcReport()
    assert await world.store.get_manifest("multi", child) is not None

    # Untagging the index lets both go in one run: the child is queued as the index goes.
    assert await world.store.delete_tag("multi", "latest")
    report = await world.collector(grace=0, delete_untagged=True).run()
    assert report.manifests == [("multi", index_digest), ("multi", child)]
    assert sorted(report.blobs) == sorted(child_blobs)


async def test_referrers_go_with_their_subject(world: World) -> None:
    subject, _ = await world.push_image("app", "v1")
    payload = (await world.store.get_manifest("app", subject)).payload  # type: ignore[union-attr]
    referrer, referrer_blobs = await world.push_image(
        "app",
        None,
        artifact_type="application/example.signature",
        subject={
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": subject,
            "size": len(payload),
        },
    )
    # An untagged referrer of a tagged subject stays.
    assert await world.collector(grace=0, delete_untagged=True).run() == GcReport()
    assert await world.store.get_manifest("app", referrer) is not None

    assert await world.store.delete_tag("app", "v1")
    report = await world.collector(grace=0, delete_untagged=True).run()
    assert {digest for _, digest in report.manifests} == {subject, referrer}
    assert set(referrer_blobs) <= set(report.blobs)
    assert await world.store.list_referrers("app", subject) == []


async def test_a_dry_run_changes_nothing(world: World) -> None:
    old, old_blobs = await world.push_image("app", "latest")
    await world.push_image("app", "latest")
    loose = await world.push_blob("app", b"x" * 1000)
    assert await world.store.unlink_blob("app", loose)
    before = (
        await world.stored_blobs(),
        await world.queued_blobs(),
        await world.queued_manifests(),
    )

    report = await world.collector(grace=0, delete_untagged=True).run(dry_run=True)
    assert report.manifests == [("app", old)]
    # The untagged manifest's blobs are counted too: its removal would free them.
    assert sorted(report.blobs) == sorted([loose, *old_blobs])
    sizes = [(await world.store.get_blob(d)).size for d in old_blobs]  # type: ignore[union-attr]
    assert report.bytes_freed == 1000 + sum(sizes)
    queues = (await world.queued_blobs(), await world.queued_manifests())
    after = (await world.stored_blobs(), *queues)
    assert after == before
    assert world.storage.deletes == []
    assert await world.store.get_manifest("app", old) is not None

    real = await world.collector(grace=0, delete_untagged=True).run()
    assert real.manifests == [("app", old)]
    assert sorted(real.blobs) == sorted([loose, *old_blobs])


async def test_the_collector_touches_only_candidates(world: World) -> None:
    kept: set[str] = set()
    for n in range(25):
        _, blobs = await world.push_image(f"team/repo{n}", "v1")
        kept.update(blobs)
    # Everything pushed is a candidate once; a first run settles them all.
    assert await world.collector(grace=0).run() == GcReport()
    assert await world.queued_blobs() == set()
    world.storage.deletes.clear()

    garbage = [await world.push_blob(f"team/repo{n}", os.urandom(64)) for n in range(3)]
    for n, digest in enumerate(garbage):
        assert await world.store.unlink_blob(f"team/repo{n}", digest)
    listings = world.storage.listings
    report = await world.collector(grace=0).run()
    assert sorted(report.blobs) == sorted(garbage)
    assert len(world.storage.deletes) == len(garbage)
    assert world.storage.listings == listings  # nothing scanned
    assert await world.stored_blobs() == kept


async def test_placement_and_deletion_exclude_each_other(world: World) -> None:
    digest = await world.push_blob("repo", b"contended")
    assert await world.store.unlink_blob("repo", digest)
    lease = await world.gc.place(digest, 600)
    assert lease is not None
    # A push holds the digest: the collector passes over it.
    assert await world.collector(grace=0).run() == GcReport()
    assert await world.has_bytes(digest)
    await world.gc.release(digest, lease)
    verdict = await world.gc.collect_blob(digest, datetime.now(UTC), 600)
    assert verdict.collect
    # Between the row and the bytes, no push may place the digest.
    assert await world.gc.place(digest, 600) is None
    await world.gc.finish_blob(digest)
    assert await world.gc.place(digest, 600) is not None


async def test_a_push_waits_for_a_deletion_in_progress(world: World) -> None:
    data = b"pushed again"
    digest = await world.push_blob("repo", data)
    assert await world.store.unlink_blob("repo", digest)
    assert (await world.gc.collect_blob(digest, datetime.now(UTC), 600)).collect
    push = asyncio.create_task(world.push_blob("repo", data))
    await asyncio.sleep(0.3)
    assert not push.done()
    # The collector deletes the bytes, then lets pushes in: the push's bytes survive.
    await world.storage.delete(blob_path(Digest.parse(digest)).rsplit("/", 1)[0])
    await world.gc.finish_blob(digest)
    assert await asyncio.wait_for(push, 10) == digest
    assert await world.has_bytes(digest)
    assert await world.store.get_repository_blob("repo", digest) is not None


class SlowDeletes(CountingDriver):
    """Blob deletions wait until ``go`` is set; ``started`` is set when one begins."""

    def __init__(self, inner: FilesystemDriver) -> None:
        super().__init__(inner)
        self.started = asyncio.Event()
        self.go = asyncio.Event()

    async def delete(self, path: str) -> None:
        if path.startswith("blobs/"):
            self.started.set()
            await self.go.wait()
        await super().delete(path)


async def test_a_collector_stopped_between_row_and_bytes_finishes_the_blob(
    world: World, tmp_path: Path
) -> None:
    digest = await world.push_blob("repo", b"stopped mid-way")
    assert await world.store.unlink_blob("repo", digest)
    slow = SlowDeletes(world.storage.inner)
    # A shutdown cancels the run after the blob's row went and before its bytes did.
    await _stopped_midway(world, Collector(world.gc, slow, 0.0, False), slow.started, slow.go)
    # The bytes went, and so did the deletion lease: nothing waits for LEASE_SECONDS.
    assert not await world.has_bytes(digest)
    assert digest not in await world.queued_blobs()


async def _stopped_midway(
    world: World, collector: Collector, reached: asyncio.Event, go: asyncio.Event
) -> None:
    """Run ``collector``, cancel it once ``reached`` is set (as a shutdown does), check that
    it goes on, then let it finish: it re-raises the cancellation."""
    run = asyncio.create_task(collector.run())
    await asyncio.wait_for(reached.wait(), 10)
    run.cancel()
    await asyncio.sleep(0.1)
    assert not run.done()
    go.set()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(run, 10)


class SlowVerdicts(GcStore):
    """A blob's verdict is returned only once ``go`` is set, after its transaction committed
    (``committed`` is set then): as when a cancellation arrives while the commit completes."""

    def __init__(self, database: Database) -> None:
        super().__init__(database)
        self.committed = asyncio.Event()
        self.go = asyncio.Event()

    async def collect_blob(self, *args: Any, **kwargs: Any) -> BlobVerdict:
        verdict = await super().collect_blob(*args, **kwargs)
        self.committed.set()
        await self.go.wait()
        return verdict


async def test_a_collector_stopped_as_a_blobs_rows_go_finishes_the_blob(world: World) -> None:
    digest = await world.push_blob("repo", b"stopped at the commit")
    assert await world.store.unlink_blob("repo", digest)
    slow = SlowVerdicts(world.store.database)
    # A shutdown cancels the run once the transaction removed the blob's row.
    await _stopped_midway(
        world, Collector(slow, world.storage, 0.0, False), slow.committed, slow.go
    )
    # The bytes went, and so did the deletion lease: nothing waits for LEASE_SECONDS.
    assert not await world.has_bytes(digest)
    assert digest not in await world.queued_blobs()


async def test_what_the_collector_removes_leaves_the_cache(world: World) -> None:
    cached = CachedMetadataStore(world.store, MemoryCache())
    old, old_blobs = await world.push_image("app", "latest")
    await world.push_image("app", "latest")
    # Cached answers: the untagged manifest, and one of its blobs in the repository.
    assert await cached.get_manifest("app", old) is not None
    assert await cached.get_repository_blob("app", old_blobs[0]) is not None
    collector = Collector(world.gc, world.storage, 0.0, True, cached.invalidate)
    report = await collector.run()
    assert report.manifests == [("app", old)]
    assert await cached.get_manifest("app", old) is None
    assert await cached.get_repository_blob("app", old_blobs[0]) is None


async def test_candidates_passed_over_do_not_stall_later_ones(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("dockyard.core.gc.BATCH", 2)
    # Three deletions a dead collector left in progress (their leases still live) ...
    stuck = [await world.push_blob("repo", os.urandom(10)) for _ in range(3)]
    for digest in stuck:
        assert await world.store.unlink_blob("repo", digest)
        assert (await world.gc.collect_blob(digest, datetime.now(UTC), 600)).collect
    # ... queued before the garbage of this run.
    garbage = [await world.push_blob("repo", os.urandom(10)) for _ in range(3)]
    for digest in garbage:
        assert await world.store.unlink_blob("repo", digest)
    report = await world.collector(grace=0).run()
    assert sorted(report.blobs) == sorted(garbage)
    assert await world.queued_blobs() == set(stuck)
    assert [await world.has_bytes(d) for d in stuck] == [True] * 3
    # Once their leases end, the next run finishes what the dead collector began.
    ended = update(gc_blob_queue).values(deleting_until=datetime(2000, 1, 1, tzinfo=UTC))
    await world.store.database.transaction(Connection.execute, ended)
    report = await world.collector(grace=0).run()
    assert sorted(report.blobs) == sorted(stuck)
    assert [await world.has_bytes(d) for d in stuck] == [False] * 3
    assert await world.queued_blobs() == set()
