"""The collector's transaction for manifests: an untagged manifest that no index of its
repository lists, and that is no referrer of a subject still present, is removed with its
rows; what it leaves behind becomes a candidate (see ``gc_removal.py``). ``gone`` and
``chained`` (dry runs) are explained in ``gc.py``."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, delete, exists, select
from sqlalchemy.engine import Connection

from dockyard.metadata.gc_queue import DUE_AT_ONCE
from dockyard.metadata.gc_removal import Leftovers, leftovers, remove_manifest
from dockyard.metadata.schema import (
    gc_manifest_queue,
    manifest_children,
    manifests,
    repositories,
    tags,
)
from dockyard.metadata.sql_common import locked

__all__ = ["ManifestVerdict", "tx_collect_manifest"]

# Frozen, so one instance serves as every default.
_NOTHING_LEFT = Leftovers()


@dataclass(frozen=True, slots=True)
class ManifestVerdict:
    collect: bool
    repository: str = ""
    size: int = 0
    # The removed manifest's id and what its removal queued (or, in a dry run, would queue).
    manifest_id: int = 0
    left: Leftovers = _NOTHING_LEFT


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


def tx_collect_manifest(
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
        locked(conn, select(gc_manifest_queue.c.queued_at).where(key), skip_locked=True)
    ).scalar_one_or_none()
    if not chained and (queued is None or queued > cutoff):
        return ManifestVerdict(False)
    found = conn.execute(
        locked(
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
        left = leftovers(conn, repository_id, found.id, digest)
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
