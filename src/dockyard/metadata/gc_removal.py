"""Removing a manifest: its rows go, and what it leaves behind becomes a candidate (its blobs,
its index children, and its referrers, which go with their subject)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam, delete, select
from sqlalchemy.engine import Connection

from dockyard.metadata.gc_queue import DUE_AT_ONCE, enqueue_blobs, enqueue_manifests
from dockyard.metadata.schema import manifest_blobs, manifest_children, manifests, tags

__all__ = ["Leftovers", "leftovers", "remove_manifest"]

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


def leftovers(conn: Connection, repository_id: int, manifest_id: int, digest: str) -> Leftovers:
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
    left = leftovers(conn, repository_id, manifest_id, digest)
    for statement in _DELETE_MANIFEST:
        conn.execute(statement, {"manifest_id": manifest_id})
    enqueue_blobs(conn, left.blobs, blobs_at)
    enqueue_manifests(conn, repository_id, left.children, blobs_at)
    enqueue_manifests(conn, repository_id, left.referrers, DUE_AT_ONCE)
    return left
