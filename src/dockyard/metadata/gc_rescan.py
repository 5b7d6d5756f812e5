"""Seeding the collector's queues from what is stored: every blob and manifest row made a
candidate once, page by page, for queues that were lost or never filled (metadata written by
something other than this registry), and digests whose bytes were found in storage."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Connection

from dockyard.metadata.schema import blobs, gc_blob_queue, gc_manifest_queue, manifests
from dockyard.metadata.sql_common import dialect_insert

__all__ = ["tx_queue_digests", "tx_rescan_blobs", "tx_rescan_manifests"]


def tx_rescan_blobs(conn: Connection, after: str | None, limit: int) -> tuple[int, str | None]:
    """Queue one page of blob rows (due ``grace`` after each blob's creation), leaving rows
    already queued as they are: their leases and times stand. How many were queued, and the
    last digest of the page (None past the end)."""
    query = select(blobs.c.digest, blobs.c.created_at).order_by(blobs.c.digest).limit(limit)
    if after is not None:
        query = query.where(blobs.c.digest > after)
    page = conn.execute(query).all()
    if not page:
        return 0, None
    rows = [{"digest": row.digest, "queued_at": row.created_at} for row in page]
    return _queue_new(conn, rows), page[-1].digest


def tx_rescan_manifests(conn: Connection, after: int, limit: int) -> tuple[int, int | None]:
    """Queue one page of manifests, by id after ``after``, like ``tx_rescan_blobs``."""
    m = manifests.c
    query = select(m.id, m.repository_id, m.digest, m.created_at).where(m.id > after)
    page = conn.execute(query.order_by(m.id).limit(limit)).all()
    if not page:
        return 0, None
    rows = [
        {"repository_id": row.repository_id, "digest": row.digest, "queued_at": row.created_at}
        for row in page
    ]
    insert = dialect_insert(conn)(gc_manifest_queue).values(rows)
    done = conn.execute(
        insert.on_conflict_do_nothing(index_elements=["repository_id", "digest"]).returning(
            gc_manifest_queue.c.digest
        )
    )
    return len(done.all()), page[-1].id


def tx_queue_digests(conn: Connection, digests: list[str], at: datetime) -> int:
    return _queue_new(conn, [{"digest": d, "queued_at": at} for d in sorted(set(digests))])


def _queue_new(conn: Connection, rows: list[dict[str, Any]]) -> int:
    insert = dialect_insert(conn)(gc_blob_queue).values(rows)
    done = conn.execute(
        insert.on_conflict_do_nothing(index_elements=["digest"]).returning(gc_blob_queue.c.digest)
    )
    return len(done.all())
