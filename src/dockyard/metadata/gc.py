"""The database side of garbage collection: candidate queues and the collector's transactions.

Writers enqueue candidates inside their own transactions (``enqueue_blobs``,
``enqueue_manifests``, ``remove_manifest``); ``GcStore`` gives the collector its batches and
runs, for each candidate, the transaction that re-checks it and removes its rows. Why this is
safe against concurrent pushes is told in ``dockyard.core.gc``. ``GcStore.rescan_blobs`` and
``rescan_manifests`` make every stored row a candidate once, page by page, for queues that
were lost or never filled (metadata written by something other than this registry).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import and_, bindparam, delete, exists, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from dockyard.metadata.engine import Database
from dockyard.metadata.schema import (
    blobs,
    gc_blob_queue,
    gc_manifest_queue,
    manifest_blobs,
    manifest_children,
    manifests,
    repositories,
    repository_blobs,
    tags,
)

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

# A ``queued_at`` that is due whatever the grace: for candidates whose protection is checked
# otherwise (a referrer whose subject is gone, the blobs of a manifest the collector removed:
# their links protect them while younger than the grace).
DUE_AT_ONCE = datetime(1970, 1, 1, tzinfo=UTC)


# Positions in the queues: (queued_at, digest) and (queued_at, repository_id, digest).
BlobKey = tuple[datetime, str]
ManifestKey = tuple[datetime, int, str]


def _insert(conn: Connection) -> Any:
    return sqlite.insert if conn.dialect.name == "sqlite" else postgresql.insert


def enqueue_blobs(conn: Connection, digests: Iterable[str], at: datetime) -> None:
    """Make the blobs candidates, due ``grace`` after ``at``."""
    rows = [{"digest": d, "queued_at": at} for d in sorted(set(digests))]
    if not rows:
        return
    insert = _insert(conn)(gc_blob_queue).values(rows)
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
    insert = _insert(conn)(gc_manifest_queue).values(rows)
    conn.execute(
        insert.on_conflict_do_update(
            index_elements=["repository_id", "digest"],
            set_={"queued_at": insert.excluded.queued_at},
        )
    )


# Explicit rather than relying on ON DELETE CASCADE, which SQLite enforces only when the
# connection enabled foreign keys.
_DELETE_MANIFEST = (
    *(
        delete(table).where(table.c.manifest_id == bindparam("manifest_id"))
        for table in (tags, manifest_blobs, manifest_children)
    ),
    delete(manifests).where(manifests.c.id == bindparam("manifest_id")),
)
# What removing a manifest leaves behind: its blobs, its index children, its referrers.
_MANIFEST_BLOBS = select(manifest_blobs.c.digest).where(
    manifest_blobs.c.manifest_id == bindparam("manifest_id")
)
_MANIFEST_CHILDREN = select(manifest_children.c.digest).where(
    manifest_children.c.manifest_id == bindparam("manifest_id")
)
_REFERRERS = select(manifests.c.digest).where(
    manifests.c.repository_id == bindparam("repository_id"),
    manifests.c.subject == bindparam("digest"),
)


@dataclass(frozen=True, slots=True)
class Leftovers:
    """What a manifest's removal makes candidates."""

    blobs: tuple[str, ...] = ()
    children: tuple[str, ...] = ()
    referrers: tuple[str, ...] = ()


def _leftovers(conn: Connection, repository_id: int, manifest_id: int, digest: str) -> Leftovers:
    key = {"manifest_id": manifest_id}
    referrers = conn.execute(_REFERRERS, {"repository_id": repository_id, "digest": digest})
    return Leftovers(
        tuple(conn.execute(_MANIFEST_BLOBS, key).scalars()),
        tuple(conn.execute(_MANIFEST_CHILDREN, key).scalars()),
        tuple(referrers.scalars()),
    )


def remove_manifest(
    conn: Connection,
    repository_id: int,
    manifest_id: int,
    digest: str,
    blobs_at: datetime,
) -> Leftovers:
    """Delete a manifest with its tags and references, and enqueue what it leaves behind:
    its blobs (due ``grace`` after ``blobs_at``), its index children, and its referrers,
    which go with their subject (due at once)."""
    left = _leftovers(conn, repository_id, manifest_id, digest)
    for statement in _DELETE_MANIFEST:
        conn.execute(statement, {"manifest_id": manifest_id})
    enqueue_blobs(conn, left.blobs, blobs_at)
    enqueue_manifests(conn, repository_id, left.children, blobs_at)
    enqueue_manifests(conn, repository_id, left.referrers, DUE_AT_ONCE)
    return left


# -- the collector's transactions ----------------------------------------------------------
#
# A dry run takes the same decisions without writing. To follow chains (an untagged index
# frees its children, which free their blobs) it passes ``gone``: the ids of the manifests it
# would have removed so far, whose references, index entries and subjects then no longer
# protect anything; and ``chained`` for candidates that only such a removal would have queued
# (due at once, as ``remove_manifest`` queues them in a real run).


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


def _locked(conn: Connection, query: Any, skip_locked: bool = False) -> Any:
    """Lock the rows read until commit (PostgreSQL; SQLite's writers are serialised)."""
    if conn.dialect.name != "postgresql":
        return query
    return query.with_for_update(skip_locked=skip_locked)


def _tx_place(conn: Connection, digest: str, until: datetime, now: datetime) -> bool:
    insert = _insert(conn)(gc_blob_queue).values(
        digest=digest, queued_at=until, placing_until=until, deleting_until=None
    )
    upsert = insert.on_conflict_do_update(
        index_elements=["digest"],
        set_={"queued_at": until, "placing_until": until},
        where=or_(gc_blob_queue.c.deleting_until.is_(None), gc_blob_queue.c.deleting_until < now),
    ).returning(gc_blob_queue.c.digest)
    return conn.execute(upsert).first() is not None


def _tx_release(conn: Connection, digest: str, until: datetime, now: datetime) -> None:
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


def _tx_collect_blob(
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
        _locked(
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
        _locked(conn, select(blobs.c.size).where(blobs.c.digest == digest))
    ).scalar_one_or_none()
    links = conn.execute(
        _locked(
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


def _tx_finish_blob(conn: Connection, digest: str) -> None:
    conn.execute(
        delete(gc_blob_queue).where(
            gc_blob_queue.c.digest == digest, gc_blob_queue.c.deleting_until.is_not(None)
        )
    )


@dataclass(frozen=True, slots=True)
class ManifestVerdict:
    collect: bool
    repository: str = ""
    size: int = 0
    # The removed manifest's id and what its removal queued (or, in a dry run, would queue).
    manifest_id: int = 0
    left: Leftovers = Leftovers()


def _kept(
    conn: Connection,
    repository_id: int,
    digest: str,
    manifest_id: int,
    subject: str | None,
    gone: Collection[int],
) -> bool:
    """Whether a tag, an index of the repository or a subject still present keeps the
    manifest (indexes and subjects among ``gone`` do not)."""
    if conn.execute(select(exists().where(tags.c.manifest_id == manifest_id))).scalar():
        return True
    # The indexes that list the digest, found through the children's digest index and
    # filtered here: given the repository too, SQLite (without statistics) would rather walk
    # all of that repository's manifests.
    parents = select(manifests.c.id, manifests.c.repository_id).where(
        manifests.c.id.in_(
            select(manifest_children.c.manifest_id).where(manifest_children.c.digest == digest)
        )
    )
    for row in conn.execute(parents):
        if row.repository_id == repository_id and row.id not in gone:
            return True
    if subject is None:
        return False
    holder = conn.execute(
        select(manifests.c.id).where(
            manifests.c.repository_id == repository_id, manifests.c.digest == subject
        )
    ).scalar_one_or_none()
    return holder is not None and holder not in gone


def _tx_collect_manifest(
    conn: Connection,
    repository_id: int,
    digest: str,
    cutoff: datetime,
    dry_run: bool,
    gone: Collection[int] = (),
    chained: bool = False,
) -> ManifestVerdict:
    key = and_(
        gc_manifest_queue.c.repository_id == repository_id, gc_manifest_queue.c.digest == digest
    )
    queued = conn.execute(
        _locked(conn, select(gc_manifest_queue.c.queued_at).where(key), skip_locked=True)
    ).scalar_one_or_none()
    if not chained and (queued is None or queued > cutoff):
        return ManifestVerdict(False)
    found = conn.execute(
        _locked(
            conn,
            select(manifests.c.id, manifests.c.subject, manifests.c.size).where(
                manifests.c.repository_id == repository_id, manifests.c.digest == digest
            ),
        )
    ).first()
    if found is None:
        if not dry_run:
            conn.execute(delete(gc_manifest_queue).where(key))
        return ManifestVerdict(False)
    # Kept while tagged, a child of an index, or a referrer whose subject is still there.
    keep = _kept(conn, repository_id, digest, found.id, found.subject, gone)
    if dry_run:
        if keep:
            return ManifestVerdict(False)
        left = _leftovers(conn, repository_id, found.id, digest)
        return _verdict(conn, repository_id, found.size, found.id, left)
    conn.execute(delete(gc_manifest_queue).where(key))
    if keep:
        return ManifestVerdict(False)
    # Its blobs are due at once: their links protect them while younger than the grace.
    left = remove_manifest(conn, repository_id, found.id, digest, DUE_AT_ONCE)
    return _verdict(conn, repository_id, found.size, found.id, left)


def _verdict(
    conn: Connection, repository_id: int, size: int, manifest_id: int, left: Leftovers
) -> ManifestVerdict:
    name = conn.execute(
        select(repositories.c.name).where(repositories.c.id == repository_id)
    ).scalar_one()
    return ManifestVerdict(True, name, size, manifest_id, left)


# -- seeding the queues from what is stored -------------------------------------------------


def _tx_rescan_blobs(conn: Connection, after: str | None, limit: int) -> tuple[int, str | None]:
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


def _tx_rescan_manifests(conn: Connection, after: int, limit: int) -> tuple[int, int | None]:
    """Queue one page of manifests, by id after ``after``, like ``_tx_rescan_blobs``."""
    m = manifests.c
    query = select(m.id, m.repository_id, m.digest, m.created_at).where(m.id > after)
    page = conn.execute(query.order_by(m.id).limit(limit)).all()
    if not page:
        return 0, None
    rows = [
        {"repository_id": row.repository_id, "digest": row.digest, "queued_at": row.created_at}
        for row in page
    ]
    insert = _insert(conn)(gc_manifest_queue).values(rows)
    done = conn.execute(
        insert.on_conflict_do_nothing(index_elements=["repository_id", "digest"]).returning(
            gc_manifest_queue.c.digest
        )
    )
    return len(done.all()), page[-1].id


def _tx_queue_digests(conn: Connection, digests: list[str], at: datetime) -> int:
    return _queue_new(conn, [{"digest": d, "queued_at": at} for d in sorted(set(digests))])


def _queue_new(conn: Connection, rows: list[dict[str, Any]]) -> int:
    insert = _insert(conn)(gc_blob_queue).values(rows)
    done = conn.execute(
        insert.on_conflict_do_nothing(index_elements=["digest"]).returning(gc_blob_queue.c.digest)
    )
    return len(done.all())


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
        return until if await self._db.transaction(_tx_place, digest, until, now) else None

    async def release(self, digest: str, lease: datetime) -> None:
        """End a placement lease (if still this one): the blob is linked, or was not placed.
        The blob stays a candidate, due after the grace."""
        await self._db.transaction(_tx_release, digest, lease, datetime.now(UTC))

    async def due_blobs(
        self, cutoff: datetime, limit: int, after: BlobKey | None = None
    ) -> list[BlobKey]:
        """Candidates queued by ``cutoff``, in queue order, after ``after``."""
        q = gc_blob_queue.c
        query = select(q.queued_at, q.digest).where(q.queued_at <= cutoff)
        if after is not None:
            query = query.where(
                or_(q.queued_at > after[0], and_(q.queued_at == after[0], q.digest > after[1]))
            )
        query = query.order_by(q.queued_at, q.digest).limit(limit)
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
        ``chained`` are for dry runs: see the note above ``BlobVerdict``."""
        return await self._db.transaction(
            _tx_collect_blob, digest, cutoff, datetime.now(UTC), lease, dry_run, gone, chained
        )

    async def finish_blob(self, digest: str) -> None:
        """The bytes are gone: drop the candidate (and let pushes of the digest in)."""
        await self._db.transaction(_tx_finish_blob, digest)

    async def due_manifests(
        self, cutoff: datetime, limit: int, after: ManifestKey | None = None
    ) -> list[ManifestKey]:
        """Candidates queued by ``cutoff``, in queue order, after ``after``."""
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
        query = query.order_by(q.queued_at, q.repository_id, q.digest).limit(limit)
        rows = await self._db.read(query)
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
            _tx_collect_manifest, repository_id, digest, cutoff, dry_run, gone, chained
        )

    async def rescan_blobs(self, after: str | None, limit: int) -> tuple[int, str | None]:
        """Queue the next ``limit`` blob rows after digest ``after`` that are not queued yet,
        in a short transaction of their own: (how many were queued, where to go on from, or
        None at the end)."""
        return await self._db.transaction(_tx_rescan_blobs, after, limit)

    async def rescan_manifests(self, after: int, limit: int) -> tuple[int, int | None]:
        """Like ``rescan_blobs``, for manifests by id (start at 0)."""
        return await self._db.transaction(_tx_rescan_manifests, after, limit)

    async def queue_digests(self, digests: list[str], at: datetime) -> int:
        """Queue digests whose bytes were found in storage (none queued already is
        touched); how many were queued."""
        if not digests:
            return 0
        return await self._db.transaction(_tx_queue_digests, digests, at)
