"""The one-off seeding scan: with the candidate queues lost (or never filled), a rescan makes
every stored blob and manifest a candidate once, page by page, and the next collection
finds the garbage the queues forgot."""

from __future__ import annotations

import os
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.engine import Connection

from core import test_gc
from core.test_gc import World
from dockyard.core.gc import GcReport, Rescan
from dockyard.core.paths import blob_path
from dockyard.digest import Digest
from dockyard.metadata.schema import blobs, gc_blob_queue, gc_manifest_queue
from e2e.registry import digest_of

# The fixtures of the collector's other tests.
postgres_url = test_gc.postgres_url
database_url = test_gc.database_url
store = test_gc.store
world = test_gc.world


async def _forget_queues(world: World) -> None:
    for table in (gc_blob_queue, gc_manifest_queue):
        await world.store.database.transaction(Connection.execute, delete(table))


async def test_a_rescan_finds_what_lost_queues_forgot(world: World) -> None:
    tagged, tagged_blobs = await world.push_image("app", "v1")
    untagged, untagged_blobs = await world.push_image("app", "v2")
    assert await world.store.delete_tag("app", "v2")
    loose = await world.push_blob("other", b"loose" * 20)
    assert await world.store.unlink_blob("other", loose)
    # Bytes in storage that no row names (adopted storage, or a push that died).
    orphan_bytes = os.urandom(50)
    orphan = digest_of(orphan_bytes)
    await world.storage.put_content(blob_path(Digest.parse(orphan)), orphan_bytes)
    await _forget_queues(world)
    collector = world.collector(grace=0, delete_untagged=True)
    assert await collector.run() == GcReport()  # nothing is scanned without a rescan

    pages: list[Any] = []
    rescan_blobs = world.gc.rescan_blobs

    async def counted(after: str | None, limit: int) -> tuple[int, str | None]:
        done = await rescan_blobs(after, limit)
        pages.append(done)
        return done

    world.gc.rescan_blobs = counted  # type: ignore[method-assign]
    rows = (await world.store.database.read(select(func.count()).select_from(blobs)))[0][0]
    assert rows == len(tagged_blobs) + len(untagged_blobs) + 1
    done = await collector.rescan(batch=2)
    assert done == Rescan(blobs=rows, manifests=2, stored=1)
    # Short transactions: one per page of two, and one that finds the end.
    assert [queued for queued, _ in pages] == [2] * (rows // 2) + [rows % 2] * (rows % 2) + [0]
    assert await collector.rescan(batch=2) == Rescan()  # already queued: queued once

    report = await collector.run()
    assert report.manifests == [("app", untagged)]
    assert set(report.blobs) == {*untagged_blobs, loose, orphan}
    assert report.sizes[orphan] == 0  # bytes without a row have no recorded size
    for digest in tagged_blobs:
        assert await world.has_bytes(digest)
    assert await world.store.get_tagged_manifest("app", "v1") is not None
    assert await world.store.get_manifest("app", tagged) is not None
    assert not await world.has_bytes(orphan)
    assert await collector.run() == GcReport()


async def test_a_rescan_keeps_leases_and_times_already_queued(world: World) -> None:
    digest = await world.push_blob("repo", b"being pushed again")
    assert await world.store.unlink_blob("repo", digest)
    lease = await world.gc.place(digest, 600)
    assert lease is not None
    before = await world.store.database.read(select(gc_blob_queue))
    assert (await world.collector(grace=0).rescan()).blobs == 0
    assert await world.store.database.read(select(gc_blob_queue)) == before
    # The placement still holds the collector off.
    assert await world.collector(grace=0).run() == GcReport()
    assert await world.has_bytes(digest)


async def test_rescanned_rows_are_due_a_grace_after_their_creation(world: World) -> None:
    _, blobs_pushed = await world.push_image("app", "v1")
    assert await world.store.delete_tag("app", "v1")
    await _forget_queues(world)
    collector = world.collector(grace=3600, delete_untagged=True)
    assert (await collector.rescan()).manifests == 1
    # Created just now: within the grace, so nothing goes yet.
    assert await collector.run() == GcReport()
    assert await world.collector(grace=0, delete_untagged=True).run() != GcReport()
    for digest in blobs_pushed:
        assert not await world.has_bytes(digest)
