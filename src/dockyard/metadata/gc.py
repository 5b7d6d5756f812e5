"""The database side of garbage collection: candidate queues and the collector's transactions.

Writers enqueue candidates inside their own transactions (``enqueue_blobs``,
``enqueue_manifests``, ``remove_manifest``: ``gc_queue.py``, ``gc_removal.py``); ``GcStore``
gives the collector its batches and runs, for each candidate, the transaction that re-checks
it and removes its rows (``gc_blobs.py``, ``gc_manifests.py``). Why this is safe against
concurrent pushes is told in ``dockyard.core.gc``. ``GcStore.rescan_blobs`` and
``rescan_manifests`` make every stored row a candidate once, page by page, for queues that
were lost or never filled (metadata written by something other than this registry;
``gc_rescan.py``).

A dry run takes the same decisions without writing. To follow chains (an untagged index
frees its children, which free their blobs) it passes ``gone``: the ids of the manifests it
would have removed so far, whose references, index entries and subjects then no longer
protect anything; and ``chained`` for candidates that only such a removal would have queued
(due at once, as ``remove_manifest`` queues them in a real run).
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import UTC, datetime, timedelta

from dockyard.metadata.engine import Database
from dockyard.metadata.gc_blobs import (
    BlobVerdict,
    tx_collect_blob,
    tx_finish_blob,
    tx_place,
    tx_release,
)
from dockyard.metadata.gc_manifests import ManifestVerdict, tx_collect_manifest
from dockyard.metadata.gc_queue import (
    DUE_AT_ONCE,
    BlobKey,
    ManifestKey,
    due_blobs_query,
    due_manifests_query,
    enqueue_blobs,
    enqueue_manifests,
)
from dockyard.metadata.gc_removal import Leftovers, remove_manifest
from dockyard.metadata.gc_rescan import tx_queue_digests, tx_rescan_blobs, tx_rescan_manifests

__all__ = [
    "DUE_AT_ONCE",
    "BlobKey",
    "BlobVerdict",
    "GcStore",
    "Leftovers",
    "ManifestKey",
    "ManifestVerdict",
    "enqueue_blobs",
    "enqueue_manifests",
    "remove_manifest",
]


class GcStore:
    """The collector's view of the metadata database."""

    def __init__(self, database: Database) -> None:
        self._db = database

    async def place(self, digest: str, lease: float) -> datetime | None:
        """Claim the right to put the blob's bytes in place for ``lease`` seconds (and make
        it a candidate once the lease ends, for bytes whose push fails after the move). The
        lease, to give to ``release``; None while a collector is deleting the bytes."""
        now = datetime.now(UTC)
        until = now + timedelta(seconds=lease)
        return until if await self._db.transaction(tx_place, digest, until, now) else None

    async def release(self, digest: str, lease: datetime) -> None:
        """End a placement lease (if still this one): the blob is linked, or was not placed.
        The blob stays a candidate, due after the grace."""
        await self._db.transaction(tx_release, digest, lease, datetime.now(UTC))

    async def due_blobs(
        self, cutoff: datetime, limit: int, after: BlobKey | None = None
    ) -> list[BlobKey]:
        """Candidates queued by ``cutoff``, in queue order, after ``after``."""
        query = due_blobs_query(cutoff, limit, after)
        return [(row.queued_at, row.digest) for row in await self._db.read(query)]

    async def collect_blob(
        self,
        digest: str,
        cutoff: datetime,
        lease: float,
        dry_run: bool = False,
        gone: Collection[int] = (),
        chained: bool = False,
    ) -> BlobVerdict:
        """Decide one candidate (and, unless ``dry_run``, remove its rows). ``gone`` and
        ``chained`` are for dry runs: see the module docstring."""
        return await self._db.transaction(
            tx_collect_blob, digest, cutoff, datetime.now(UTC), lease, dry_run, gone, chained
        )

    async def finish_blob(self, digest: str) -> None:
        """The bytes are gone: drop the candidate (and let pushes of the digest in)."""
        await self._db.transaction(tx_finish_blob, digest)

    async def due_manifests(
        self, cutoff: datetime, limit: int, after: ManifestKey | None = None
    ) -> list[ManifestKey]:
        """Candidates queued by ``cutoff``, in queue order, after ``after``."""
        rows = await self._db.read(due_manifests_query(cutoff, limit, after))
        return [(row.queued_at, row.repository_id, row.digest) for row in rows]

    async def collect_manifest(
        self,
        repository_id: int,
        digest: str,
        cutoff: datetime,
        dry_run: bool = False,
        gone: Collection[int] = (),
        chained: bool = False,
    ) -> ManifestVerdict:
        """Decide one candidate, like ``collect_blob``."""
        return await self._db.transaction(
            tx_collect_manifest, repository_id, digest, cutoff, dry_run, gone, chained
        )

    async def rescan_blobs(self, after: str | None, limit: int) -> tuple[int, str | None]:
        """Queue the next ``limit`` blob rows after digest ``after`` that are not queued yet,
        in a short transaction of their own: (how many were queued, where to go on from, or
        None at the end)."""
        return await self._db.transaction(tx_rescan_blobs, after, limit)

    async def rescan_manifests(self, after: int, limit: int) -> tuple[int, int | None]:
        """Like ``rescan_blobs``, for manifests by id (start at 0)."""
        return await self._db.transaction(tx_rescan_manifests, after, limit)

    async def queue_digests(self, digests: list[str], at: datetime) -> int:
        """Queue digests whose bytes were found in storage (none queued already is
        touched); how many were queued."""
        if not digests:
            return 0
        return await self._db.transaction(tx_queue_digests, digests, at)
