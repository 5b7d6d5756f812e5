"""A dry run follows chains: an untagged index frees its children (and an index of indexes
its indexes), a removed subject its referrers, and each of them its blobs. What the dry run
reports, bytes included, is what a real run over the same state then removes."""

from __future__ import annotations

import os
from datetime import UTC, datetime

from sqlalchemy import text, update
from sqlalchemy.engine import Connection

from core import test_gc
from core.test_gc import World
from dockyard.core.gc import GcReport
from dockyard.metadata.schema import gc_manifest_queue
from e2e.registry import OCI_INDEX, OCI_MANIFEST, digest_of
from e2e.registry import index_manifest as index_body

# The fixtures of the collector's other tests.
postgres_url = test_gc.postgres_url
database_url = test_gc.database_url
store = test_gc.store
world = test_gc.world


async def _entry(world: World, repository: str, digest: str, media_type: str) -> dict[str, object]:
    record = await world.store.get_manifest(repository, digest)
    assert record is not None
    return {"mediaType": media_type, "digest": digest, "size": len(record.payload)}


async def _index(world: World, repository: str, tag: str, children: list[tuple[str, str]]) -> str:
    entries = [await _entry(world, repository, d, t) for d, t in children]
    return await world.push_manifest(repository, tag, index_body(entries), OCI_INDEX)


async def _state(world: World) -> tuple[object, ...]:
    """Everything a run could change: bytes, queues, and the rows of every table."""
    tables = ("blobs", "repository_blobs", "manifests", "tags", "manifest_blobs")
    counts = []
    for table in tables:
        rows = await world.store.database.read(text(f"SELECT COUNT(*) AS n FROM {table}"))
        counts.append(rows[0].n)
    return (
        await world.stored_blobs(),
        await world.queued_blobs(),
        await world.queued_manifests(),
        tuple(counts),
    )


def _summary(report: GcReport) -> tuple[object, ...]:
    return (
        sorted(report.manifests),
        sorted(report.blobs),
        report.bytes_freed,
        report.sizes,
    )


async def test_a_dry_run_reports_the_whole_chain_a_real_run_removes(world: World) -> None:
    shared = os.urandom(700)  # a layer that a tagged image keeps
    keeper, keeper_blobs = await world.push_image("app", "keep", [shared])
    # Children tagged at first, so that they sit in the queue ahead of their index.
    amd, amd_blobs = await world.push_image("app", "amd", [shared, os.urandom(500)])
    arm, arm_blobs = await world.push_image("app", "arm", [os.urandom(400)])
    lone, lone_blobs = await world.push_image("app", "lone")  # in a second, tagged index too
    inner = await _index(world, "app", "inner", [(amd, OCI_MANIFEST), (arm, OCI_MANIFEST)])
    outer = await _index(world, "app", "latest", [(inner, OCI_INDEX), (lone, OCI_MANIFEST)])
    await _index(world, "app", "pinned", [(lone, OCI_MANIFEST)])
    # A signature of the inner index, with a blob of its own, goes with it.
    inner_entry = await _entry(world, "app", inner, OCI_INDEX)
    signature, signature_blobs = await world.push_image(
        "app", None, artifact_type="application/example.signature", subject=inner_entry
    )
    # A loose blob, and the same bytes linked (unreferenced) in another repository.
    loose = await world.push_blob("app", b"l" * 300)
    await world.push_blob("other", b"l" * 300)
    assert await world.store.unlink_blob("app", loose)
    for tag in ("amd", "arm", "lone", "inner", "latest"):
        assert await world.store.delete_tag("app", tag)
    before = await _state(world)

    dry = await world.collector(grace=0, delete_untagged=True).run(dry_run=True)
    assert await _state(world) == before
    assert world.storage.deletes == []

    expected_manifests = {outer, inner, amd, arm, signature}
    assert {digest for _, digest in dry.manifests} == expected_manifests
    freed = {*amd_blobs, *arm_blobs, *signature_blobs, loose} - {digest_of(shared)}
    assert set(dry.blobs) == freed
    assert dry.bytes_freed == sum(dry.sizes.values()) > 0
    # The index goes before what only it kept.
    order = [digest for _, digest in dry.manifests]
    assert order.index(outer) < order.index(inner) < order.index(amd)

    real = await world.collector(grace=0, delete_untagged=True).run()
    assert _summary(real) == _summary(dry)
    assert sorted(world.storage.deletes) == sorted(
        f"blobs/sha256/{d[7:9]}/{d[7:]}" for d in real.blobs
    )
    # Nothing the chain did not reach was touched, and nothing is left to collect.
    for digest in (*keeper_blobs, *lone_blobs):
        assert await world.has_bytes(digest)
    assert await world.store.get_manifest("app", keeper) is not None
    assert await world.store.get_manifest("app", lone) is not None
    assert await world.collector(grace=0, delete_untagged=True).run() == GcReport()


async def test_a_dry_run_respects_the_grace_along_the_chain(world: World) -> None:
    child, child_blobs = await world.push_image("app", None)
    index = await _index(world, "app", "latest", [(child, OCI_MANIFEST)])
    assert await world.store.delete_tag("app", "latest")
    assert await world.collector(grace=3600, delete_untagged=True).run(dry_run=True) == GcReport()
    # The index was untagged long ago, but the child's blobs were linked just now: the chain
    # takes both manifests, and the young links keep the blobs, in the dry run as in the
    # real one.
    long_ago = datetime(2000, 1, 1, tzinfo=UTC)
    await world.store.database.transaction(
        Connection.execute, update(gc_manifest_queue).values(queued_at=long_ago)
    )
    dry = await world.collector(grace=3600, delete_untagged=True).run(dry_run=True)
    assert {d for _, d in dry.manifests} == {index, child}
    assert dry.blobs == []
    real = await world.collector(grace=3600, delete_untagged=True).run()
    assert _summary(real) == _summary(dry)
    for digest in child_blobs:
        assert await world.has_bytes(digest)
    # Queued again, for when their links are past the grace.
    assert set(child_blobs) <= await world.queued_blobs()
