"""The collector's transactions for blobs: placing a blob's bytes under a lease, deciding
one candidate (its rows removed unless something still protects it), and dropping it once its
bytes are gone. Why this is safe against concurrent pushes is told in ``dockyard.core.gc``;
``gone`` and ``chained`` (dry runs) are explained in ``gc.py``."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, or_, select, update
from sqlalchemy.engine import Connection

from dockyard.metadata.schema import (
    blobs,
    gc_blob_queue,
    manifest_blobs,
    manifests,
    repositories,
    repository_blobs,
)
from dockyard.metadata.sql_common import dialect_insert, locked

__all__ = ["BlobVerdict", "tx_collect_blob", "tx_finish_blob", "tx_place", "tx_release"]


@dataclass(frozen=True, slots=True)
class BlobVerdict:
    """What one candidate blob's transaction decided."""

    # True: the rows are gone (or would be, in a dry run) and the bytes may be deleted.
    collect: bool
    # The blob's size when it had a row (None for bytes a failed push left without one).
    size: int | None = None
    # Repositories whose links were removed (their cached answers changed).
    unlinked: tuple[str, ...] = ()


_SKIPPED = BlobVerdict(False)


def tx_place(conn: Connection, digest: str, until: datetime, now: datetime) -> bool:
    insert = dialect_insert(conn)(gc_blob_queue).values(
        digest=digest, queued_at=until, placing_until=until, deleting_until=None
    )
    upsert = insert.on_conflict_do_update(
        index_elements=["digest"],
        set_={"queued_at": until, "placing_until": until},
        where=or_(gc_blob_queue.c.deleting_until.is_(None), gc_blob_queue.c.deleting_until < now),
    ).returning(gc_blob_queue.c.digest)
    return conn.execute(upsert).first() is not None


def tx_release(conn: Connection, digest: str, until: datetime, now: datetime) -> None:
    conn.execute(
        update(gc_blob_queue)
        .where(gc_blob_queue.c.digest == digest, gc_blob_queue.c.placing_until == until)
        .values(placing_until=None, queued_at=now)
    )


def _referenced_in(conn: Connection, digest: str, gone: Collection[int]) -> set[int]:
    """The repositories with a manifest (not among ``gone``) that references the blob."""
    joined = manifests.join(manifest_blobs, manifest_blobs.c.manifest_id == manifests.c.id)
    if not gone:
        query = select(manifests.c.repository_id).select_from(joined)
        return set(
            conn.execute(query.where(manifest_blobs.c.digest == digest).distinct()).scalars()
        )
    query = select(manifests.c.id, manifests.c.repository_id).select_from(joined)
    rows = conn.execute(query.where(manifest_blobs.c.digest == digest))
    return {row.repository_id for row in rows if row.id not in gone}


def tx_collect_blob(
    conn: Connection,
    digest: str,
    cutoff: datetime,
    now: datetime,
    lease: float,
    dry_run: bool,
    gone: Collection[int] = (),
    chained: bool = False,
) -> BlobVerdict:
    queued = conn.execute(
        locked(
            conn,
            select(
                gc_blob_queue.c.queued_at,
                gc_blob_queue.c.placing_until,
                gc_blob_queue.c.deleting_until,
            ).where(gc_blob_queue.c.digest == digest),
            skip_locked=True,
        )
    ).first()
    if not chained and (queued is None or queued.queued_at > cutoff):
        return _SKIPPED  # another collector has it, or it was queued again meanwhile
    if queued is not None:
        for until in (queued.placing_until, queued.deleting_until):
            if until is not None and until > now:
                return _SKIPPED  # bytes being placed, or being deleted by another collector
    # Locked first: a link or a manifest's reference check that comes later waits for us.
    size = conn.execute(
        locked(conn, select(blobs.c.size).where(blobs.c.digest == digest))
    ).scalar_one_or_none()
    links = conn.execute(
        locked(
            conn,
            select(repository_blobs.c.repository_id, repository_blobs.c.created_at).where(
                repository_blobs.c.digest == digest
            ),
        )
    ).all()
    referenced_in = _referenced_in(conn, digest, gone)
    # A link protects the blob while a manifest of its repository references it, or while
    # it is younger than the grace (a push whose manifest is still to come).
    stale = [
        link.repository_id
        for link in links
        if link.repository_id not in referenced_in and link.created_at <= cutoff
    ]
    young = [
        link.created_at
        for link in links
        if link.repository_id not in referenced_in and link.created_at > cutoff
    ]
    unlinked: tuple[str, ...] = ()
    if stale:
        unlinked = tuple(
            conn.execute(select(repositories.c.name).where(repositories.c.id.in_(stale))).scalars()
        )
    if referenced_in or young or len(stale) < len(links):
        if not dry_run:
            _unlink(conn, digest, stale)
            if young:
                # Look again once the youngest link is past the grace.
                conn.execute(
                    update(gc_blob_queue)
                    .where(gc_blob_queue.c.digest == digest)
                    .values(queued_at=max(young) + (now - cutoff))
                )
            else:
                conn.execute(delete(gc_blob_queue).where(gc_blob_queue.c.digest == digest))
        return BlobVerdict(False, size, unlinked)
    if not dry_run:
        _unlink(conn, digest, stale)
        conn.execute(delete(blobs).where(blobs.c.digest == digest))
        conn.execute(
            update(gc_blob_queue)
            .where(gc_blob_queue.c.digest == digest)
            .values(deleting_until=now + timedelta(seconds=lease))
        )
    return BlobVerdict(True, size, unlinked)


def _unlink(conn: Connection, digest: str, repository_ids: list[int]) -> None:
    if repository_ids:
        conn.execute(
            delete(repository_blobs).where(
                repository_blobs.c.digest == digest,
                repository_blobs.c.repository_id.in_(repository_ids),
            )
        )


def tx_finish_blob(conn: Connection, digest: str) -> None:
    conn.execute(
        delete(gc_blob_queue).where(
            gc_blob_queue.c.digest == digest, gc_blob_queue.c.deleting_until.is_not(None)
        )
    )
