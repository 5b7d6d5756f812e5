"""Online garbage collection: blobs nothing needs, and (optionally) untagged manifests.

What is garbage
    A blob is garbage when no manifest in any repository references it and no repository
    links it. A link protects a blob while a manifest of its repository references the blob,
    or while the link is younger than the grace period (a push whose manifest has yet to
    come); an older link that no manifest of its repository needs is removed with the blob.
    With ``delete_untagged``, a manifest is garbage when no tag points at it, no index of its
    repository lists it, and it is not a referrer whose subject is still there: referrers go
    with their subject. Removing a manifest makes its blobs candidates at once.

Cost grows with the garbage
    Nothing is scanned. The transactions that may leave garbage behind enqueue candidates in
    the database (``gc_blob_queue``, ``gc_manifest_queue``; see ``dockyard.metadata.gc``):
    unlinking a blob, deleting a manifest (its blobs, index children and referrers), deleting
    or moving a tag (the manifest it pointed at), recording a new blob, and putting bytes in
    place. The collector takes the candidates that are due (queued more than ``grace`` ago) in
    batches and decides each in a transaction of its own.

Races with pushes, and why none loses data
    1. A manifest push against the collector. ``put_manifest`` reads the links it relies on
       ``FOR KEY SHARE`` and inserts its references in the same transaction; the collector
       locks the blob row and the link rows ``FOR UPDATE`` *before* it reads the references
       (PostgreSQL; SQLite serialises writers). Whichever comes second sees the first's
       outcome: either the collector sees the new reference and keeps the blob, or the push
       finds the link gone and fails with MANIFEST_BLOB_UNKNOWN, and the client pushes the
       blob again. The same holds for untagged manifests against tag and index pushes.
    2. A blob push against the byte deletion. The collector deletes the blob's row in one
       transaction and its bytes after the commit; a push of the same digest in between moves
       fresh bytes to the same path and links them. Were the collector's delete to land after
       that move, the new row would name missing bytes. So bytes are put in place only under
       a *placement lease*: before moving bytes to ``blobs/...`` (or mounting), an upload
       sets ``placing_until`` on the digest's queue row, which it can do only while no
       ``deleting_until`` lease is live; the collector's row transaction sets
       ``deleting_until`` only while no ``placing_until`` lease is live, and clears the row
       once the bytes are gone. Both are conditional upserts of the same row, so they
       exclude each other: a push waits (briefly) for a deletion to end, and the collector
       passes over a digest being placed. The upload releases its lease once the blob is
       linked (only its own: a later lease of a concurrent push of the same digest stands);
       a lease also ends by itself, so a push that dies after the move leaves a candidate
       behind, and its bytes are collected.
    3. A collector that dies between the row transaction and the byte deletion leaves bytes
       without a row: its lease ends, the candidate is due again, and the next run deletes
       them. A mount of a blob whose source link the collector removes meanwhile finds no
       link and the client uploads instead; the mount also holds a placement lease, so the
       collector cannot remove the last row under it.
    4. Caches. The collector reports the repositories whose manifests or links it removed,
       and the caller invalidates what the Redis cache holds for them.

The bytes freed are counted from the blob rows. A dry run takes the same decisions without
writing anything, and follows the chains a real run would: it remembers the manifests it
would have removed, which then protect nothing, and takes as candidates what their removal
would have queued (an untagged index's children, a subject's referrers, their blobs), so
that it reports exactly what a real run over the same state removes.

Seeding the queues
    ``Collector.rescan`` makes every blob and manifest row a candidate once (and every blob
    whose bytes are in storage without a row), for storage adopted from elsewhere or queues
    that were lost. It pages through the tables in short transactions, never holding the
    database for long; rows already queued keep their place and leases. A row is due
    ``grace`` after its creation, bytes without a row ``grace`` after the rescan.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from dockyard.core.paths import blob_path
from dockyard.digest import Digest
from dockyard.errors import DigestInvalid, Unavailable
from dockyard.jobs import Jobs, run_periodically
from dockyard.metadata.gc import BlobKey, GcStore, ManifestKey
from dockyard.storage.base import PathNotFound, StorageDriver

__all__ = ["GC_JOB", "Collector", "GcReport", "Placements", "Rescan", "collect_forever"]

GC_JOB = "garbage-collection"

# How long a collector may take between deleting a blob's row and deleting its bytes, and
# an upload between claiming a placement and linking the blob: after that the lease ends.
LEASE_SECONDS = 600.0

BATCH = 500

# How long a push waits for a collector to finish deleting the same digest's bytes.
PLACE_WAIT_SECONDS = 30.0

log = logging.getLogger("dockyard.gc")

Changed = Callable[[str], Awaitable[None]]


@dataclass
class Rescan:
    """What a rescan queued: rows not queued before, and bytes in storage without a row."""

    blobs: int = 0
    manifests: int = 0
    stored: int = 0


@dataclass
class GcReport:
    """What a run removed (or, in a dry run, would remove)."""

    blobs: list[str] = field(default_factory=list)
    manifests: list[tuple[str, str]] = field(default_factory=list)
    bytes_freed: int = 0
    # Each removed blob's size (0 for bytes that had no row).
    sizes: dict[str, int] = field(default_factory=dict)
    # What a rescan before the run queued, if there was one.
    rescan: Rescan | None = None


@dataclass
class _Chain:
    """A dry run's memory of what it would have removed (see the module's docstring)."""

    # Ids of the manifests removed, which no longer protect blobs, children or referrers.
    gone: set[int] = field(default_factory=set)
    # Candidates only those removals would have queued: (repository id, digest), digests.
    manifests: dict[tuple[int, str], None] = field(default_factory=dict)
    blobs: dict[str, None] = field(default_factory=dict)


class Placements:
    """Placement leases for pushes (see "Races" above)."""

    def __init__(
        self, store: GcStore, lease: float = LEASE_SECONDS, wait: float = PLACE_WAIT_SECONDS
    ) -> None:
        self._store = store
        self._lease = lease
        self._wait = wait

    @contextlib.asynccontextmanager
    async def placing(self, digest: str) -> AsyncIterator[None]:
        """Hold a lease on ``digest`` while its bytes are moved in place and linked."""
        deadline = time.monotonic() + self._wait
        pause = 0.01
        while (lease := await self._store.place(digest, self._lease)) is None:
            if time.monotonic() >= deadline:
                raise Unavailable(message="blob is being garbage collected; retry the push")
            await asyncio.sleep(pause)
            pause = min(2 * pause, 0.5)
        try:
            yield
        finally:
            await self._store.release(digest, lease)


class Collector:
    def __init__(
        self,
        store: GcStore,
        storage: StorageDriver,
        grace: float,
        delete_untagged: bool = False,
        changed: Changed | None = None,
        lease: float = LEASE_SECONDS,
    ) -> None:
        self._store = store
        self._storage = storage
        self._grace = grace
        self._delete_untagged = delete_untagged
        self._changed = changed
        self._lease = lease

    async def run(self, dry_run: bool = False) -> GcReport:
        report = GcReport()
        cutoff = datetime.now(UTC) - timedelta(seconds=self._grace)
        chain = _Chain()
        if self._delete_untagged:
            await self._manifests(cutoff, dry_run, report, chain)
        await self._blobs(cutoff, dry_run, report, chain)
        return report

    async def _manifests(
        self, cutoff: datetime, dry_run: bool, report: GcReport, chain: _Chain
    ) -> None:
        removed: set[tuple[int, str]] = set()
        # Removing a manifest queues its referrers and children due at once, before the
        # position reached: another pass takes them, until a pass removes nothing new. A
        # dry run, which queues nothing, takes them from its chain.
        while True:
            found = False
            after: ManifestKey | None = None
            while batch := await self._store.due_manifests(cutoff, BATCH, after):
                after = batch[-1]
                for _, repository_id, digest in batch:
                    if (repository_id, digest) not in chain.manifests:
                        found |= await self._manifest(
                            (repository_id, digest), cutoff, dry_run, report, chain, removed
                        )
            while chain.manifests:
                key, _ = chain.manifests.popitem()
                found |= await self._manifest(key, cutoff, dry_run, report, chain, removed, True)
            if not found:
                return

    async def _manifest(
        self,
        key: tuple[int, str],
        cutoff: datetime,
        dry_run: bool,
        report: GcReport,
        chain: _Chain,
        removed: set[tuple[int, str]],
        chained: bool = False,
    ) -> bool:
        """Decide one candidate manifest; whether it was (or would be) removed."""
        if key in removed:
            return False
        repository_id, digest = key
        verdict = await self._store.collect_manifest(
            repository_id, digest, cutoff, dry_run, chain.gone, chained
        )
        if not verdict.collect:
            return False
        removed.add(key)
        report.manifests.append((verdict.repository, digest))
        if not dry_run:
            await self._notify(verdict.repository)
            return True
        # What a real run's removal would have queued (see the module's docstring).
        chain.gone.add(verdict.manifest_id)
        for child in (*verdict.left.children, *verdict.left.referrers):
            chain.manifests[repository_id, child] = None
        chain.blobs.update(dict.fromkeys(verdict.left.blobs))
        return True

    async def _blobs(
        self, cutoff: datetime, dry_run: bool, report: GcReport, chain: _Chain
    ) -> None:
        after: BlobKey | None = None
        while batch := await self._store.due_blobs(cutoff, BATCH, after):
            after = batch[-1]
            # A dry run takes the blobs of removed manifests last, as chained candidates.
            await self._decide(
                (d for _, d in batch if d not in chain.blobs), cutoff, dry_run, report, chain
            )
        await self._decide(chain.blobs, cutoff, dry_run, report, chain, chained=True)

    async def _decide(
        self,
        digests: Iterable[str],
        cutoff: datetime,
        dry_run: bool,
        report: GcReport,
        chain: _Chain,
        chained: bool = False,
    ) -> None:
        for digest in digests:
            await _uninterrupted(self._decide_one(digest, cutoff, dry_run, report, chain, chained))

    async def _decide_one(
        self,
        digest: str,
        cutoff: datetime,
        dry_run: bool,
        report: GcReport,
        chain: _Chain,
        chained: bool,
    ) -> None:
        verdict = await self._store.collect_blob(
            digest, cutoff, self._lease, dry_run, chain.gone, chained
        )
        if not dry_run:
            for repository in verdict.unlinked:
                await self._notify(repository)
        if not verdict.collect:
            return
        report.blobs.append(digest)
        report.sizes[digest] = verdict.size or 0
        report.bytes_freed += verdict.size or 0
        if not dry_run:
            await self._delete_bytes(digest)
            await self._store.finish_blob(digest)

    async def rescan(self, batch: int = BATCH) -> Rescan:
        """Make every stored blob and manifest a candidate once (see the module docstring)."""
        done = Rescan()
        at: str | None = None
        while True:
            queued, at = await self._store.rescan_blobs(at, batch)
            done.blobs += queued
            if at is None:
                break
        after: int | None = 0
        while after is not None:
            queued, after = await self._store.rescan_manifests(after, batch)
            done.manifests += queued
        found: list[str] = []
        now = datetime.now(UTC)
        async for digest in self._stored_digests():
            found.append(digest)
            if len(found) >= batch:
                done.stored += await self._store.queue_digests(found, now)
                found = []
        done.stored += await self._store.queue_digests(found, now)
        return done

    async def _stored_digests(self) -> AsyncIterator[str]:
        """Digests with bytes under ``blobs/<algorithm>/<xx>/<encoded>/data``."""
        try:
            async for info in self._storage.walk("blobs"):
                parts = info.path.split("/")
                if info.is_dir or len(parts) != 5 or parts[4] != "data":
                    continue
                try:
                    yield str(Digest.parse(f"{parts[1]}:{parts[3]}"))
                except DigestInvalid:
                    continue  # not something this registry stored
        except PathNotFound:
            return

    async def _delete_bytes(self, digest: str) -> None:
        try:
            path = blob_path(Digest.parse(digest))
        except DigestInvalid:
            return  # not a digest this registry stores bytes under
        with contextlib.suppress(PathNotFound):
            await self._storage.delete(path.rsplit("/", 1)[0])

    async def _notify(self, repository: str) -> None:
        if self._changed is not None:
            await self._changed(repository)


async def collect_forever(collector: Collector, jobs: Jobs, interval: float) -> None:
    """Every ``interval`` seconds, one replica collects garbage."""

    async def collect() -> None:
        report = await collector.run()
        if report.blobs or report.manifests:
            log.info(
                "garbage collection removed %d manifest(s), %d blob(s), %d byte(s)",
                len(report.manifests),
                len(report.blobs),
                report.bytes_freed,
            )

    await run_periodically(jobs, GC_JOB, interval, collect)


async def _uninterrupted(work: Coroutine[Any, Any, None]) -> None:
    """Run ``work`` to its end even if the caller is cancelled (then re-raise). One candidate
    blob is decided this way: once its transaction removed the rows (which may commit as a
    shutdown's cancellation arrives), its bytes must go too, or its deletion lease keeps them
    from the next run for ``LEASE_SECONDS``. What is left takes a few statements and one
    storage call."""
    task = asyncio.ensure_future(work)
    try:
        await asyncio.shield(task)
    except asyncio.CancelledError:
        await task
        raise
