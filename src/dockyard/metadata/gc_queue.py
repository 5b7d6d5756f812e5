"""The garbage collector's candidate queues (``gc_blob_queue``, ``gc_manifest_queue``).

Writers enqueue candidates inside their own transactions; the collector reads them back in
queue order, those due by its cutoff first.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from sqlalchemy import and_, or_, select
from sqlalchemy.engine import Connection

from dockyard.metadata.schema import gc_blob_queue, gc_manifest_queue
from dockyard.metadata.sql_common import dialect_insert

if TYPE_CHECKING:
    from dockyard.metadata.sql_common import AnySelect

__all__ = [
    "DUE_AT_ONCE",
    "BlobKey",
    "ManifestKey",
    "due_blobs_query",
    "due_manifests_query",
    "enqueue_blobs",
    "enqueue_manifests",
]

# A ``queued_at`` that is due whatever the grace: for candidates whose protection is checked
# otherwise (a referrer whose subject is gone, the blobs of a manifest the collector removed:
# their links protect them while younger than the grace).
DUE_AT_ONCE = datetime(1970, 1, 1, tzinfo=UTC)


# Positions in the queues: (queued_at, digest) and (queued_at, repository_id, digest).
BlobKey = tuple[datetime, str]
ManifestKey = tuple[datetime, int, str]


def enqueue_blobs(conn: Connection, digests: Iterable[str], at: datetime) -> None:
    """Make the blobs candidates, due ``grace`` after ``at``."""
    rows = [{"digest": d, "queued_at": at} for d in sorted(set(digests))]
    if not rows:
        return
    insert = dialect_insert(conn)(gc_blob_queue).values(rows)
    conn.execute(
        insert.on_conflict_do_update(
            index_elements=["digest"], set_={"queued_at": insert.excluded.queued_at}
        )
    )


def enqueue_manifests(
    conn: Connection, repository_id: int, digests: Iterable[str], at: datetime
) -> None:
    """Make the repository's manifests candidates for untagged collection."""
    rows = [
        {"repository_id": repository_id, "digest": d, "queued_at": at} for d in sorted(set(digests))
    ]
    if not rows:
        return
    insert = dialect_insert(conn)(gc_manifest_queue).values(rows)
    conn.execute(
        insert.on_conflict_do_update(
            index_elements=["repository_id", "digest"],
            set_={"queued_at": insert.excluded.queued_at},
        )
    )


def due_blobs_query(cutoff: datetime, limit: int, after: BlobKey | None) -> AnySelect:
    """Blob candidates queued by ``cutoff``, in queue order, after ``after``."""
    q = gc_blob_queue.c
    query = select(q.queued_at, q.digest).where(q.queued_at <= cutoff)
    if after is not None:
        query = query.where(
            or_(q.queued_at > after[0], and_(q.queued_at == after[0], q.digest > after[1]))
        )
    return query.order_by(q.queued_at, q.digest).limit(limit)


def due_manifests_query(cutoff: datetime, limit: int, after: ManifestKey | None) -> AnySelect:
    """Manifest candidates queued by ``cutoff``, in queue order, after ``after``."""
    q = gc_manifest_queue.c
    query = select(q.queued_at, q.repository_id, q.digest).where(q.queued_at <= cutoff)
    if after is not None:
        at, repository_id, digest = after
        query = query.where(
            or_(
                q.queued_at > at,
                and_(q.queued_at == at, q.repository_id > repository_id),
                and_(q.queued_at == at, q.repository_id == repository_id, q.digest > digest),
            )
        )
    return query.order_by(q.queued_at, q.repository_id, q.digest).limit(limit)
