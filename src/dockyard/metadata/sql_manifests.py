"""Manifest rows with their references (blobs, index children) and subject.

A manifest is stored only once everything it references is present in its repository; the
references are read ``FOR KEY SHARE`` so that a concurrent delete cannot slip between that
check and the commit. Deleting a manifest enqueues what it leaves behind (see
``gc_removal.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import Table, bindparam, func, select
from sqlalchemy.engine import Connection

from dockyard.events.outbox import insert_events
from dockyard.metadata.base import ManifestRecord, MissingReferences, OutboxEvent
from dockyard.metadata.gc_removal import remove_manifest
from dockyard.metadata.schema import (
    manifest_blobs,
    manifest_children,
    manifests,
    repositories,
    repository_blobs,
)
from dockyard.metadata.schema import tags as tag_table  # `tags` is a parameter name below
from dockyard.metadata.sql_common import ensure, key_share, per_dialect, utc_now
from dockyard.metadata.sql_repositories import create_repository, lookup_repository
from dockyard.metadata.sql_tags import point_tags

if TYPE_CHECKING:
    from dockyard.metadata.sql_common import AnyRow, AnySelect

__all__ = [
    "GET_MANIFEST",
    "GET_TAGGED_MANIFEST",
    "manifest_record",
    "referrers_query",
    "tx_delete_manifest",
    "tx_put_manifest",
]


def _references(table: Table) -> Any:
    """A manifest's references as one space-separated string, correlated to ``manifests``."""
    return (
        select(func.aggregate_strings(table.c.digest, " "))
        .where(table.c.manifest_id == manifests.c.id)
        .scalar_subquery()
    )


def _manifest_select() -> AnySelect:
    return select(
        manifests.c.digest,
        manifests.c.media_type,
        manifests.c.size,
        manifests.c.payload,
        manifests.c.artifact_type,
        manifests.c.subject,
        manifests.c.created_at,
        _references(manifest_blobs).label("blobs"),
        _references(manifest_children).label("children"),
    )


GET_MANIFEST = (
    _manifest_select()
    .select_from(manifests.join(repositories, repositories.c.id == manifests.c.repository_id))
    .where(
        repositories.c.name == bindparam("repository"),
        manifests.c.digest == bindparam("digest"),
    )
)
GET_TAGGED_MANIFEST = (
    _manifest_select()
    .select_from(
        tag_table.join(repositories, repositories.c.id == tag_table.c.repository_id).join(
            manifests, manifests.c.id == tag_table.c.manifest_id
        )
    )
    .where(repositories.c.name == bindparam("repository"), tag_table.c.name == bindparam("tag"))
)
_INSERT_MANIFEST = per_dialect(
    lambda insert: (
        insert(manifests)
        .on_conflict_do_nothing(index_elements=["repository_id", "digest"])
        .returning(manifests.c.id)
    )
)
_MANIFEST_ID = select(manifests.c.id).where(
    manifests.c.repository_id == bindparam("repository_id"),
    manifests.c.digest == bindparam("digest"),
)
_MANIFEST_ID_KEY_SHARE = key_share(_MANIFEST_ID)
_PRESENT_BLOBS = key_share(
    select(repository_blobs.c.digest).where(
        repository_blobs.c.repository_id == bindparam("repository_id"),
        repository_blobs.c.digest.in_(bindparam("digests", expanding=True)),
    )
)
_PRESENT_CHILDREN = key_share(
    select(manifests.c.digest).where(
        manifests.c.repository_id == bindparam("repository_id"),
        manifests.c.digest.in_(bindparam("digests", expanding=True)),
    )
)


def referrers_query(repository: str, subject: str, artifact_type: str | None) -> AnySelect:
    """The manifests of a repository whose subject is ``subject``, by digest."""
    query = (
        _manifest_select()
        .select_from(manifests.join(repositories, repositories.c.id == manifests.c.repository_id))
        .where(repositories.c.name == repository, manifests.c.subject == subject)
        .order_by(manifests.c.digest)
    )
    if artifact_type is not None:
        query = query.where(manifests.c.artifact_type == artifact_type)
    return query


def _split(references: str | None) -> tuple[str, ...]:
    return tuple(sorted(set(references.split()))) if references else ()


def manifest_record(repository: str, row: AnyRow) -> ManifestRecord:
    return ManifestRecord(
        repository=repository,
        digest=row.digest,
        media_type=row.media_type,
        size=row.size,
        payload=bytes(row.payload),
        artifact_type=row.artifact_type,
        subject=row.subject,
        blobs=_split(row.blobs),
        children=_split(row.children),
        created_at=row.created_at,
    )


def _check_references(
    conn: Connection, repository_id: int, needed_blobs: list[str], needed_children: list[str]
) -> None:
    present_blobs: set[str] = set()
    present_children: set[str] = set()
    if needed_blobs:
        parameters = {"repository_id": repository_id, "digests": needed_blobs}
        present_blobs = set(conn.execute(_PRESENT_BLOBS, parameters).scalars())
    if needed_children:
        parameters = {"repository_id": repository_id, "digests": needed_children}
        present_children = set(conn.execute(_PRESENT_CHILDREN, parameters).scalars())
    missing_blobs = [d for d in needed_blobs if d not in present_blobs]
    missing_children = [d for d in needed_children if d not in present_children]
    if missing_blobs or missing_children:
        raise MissingReferences(missing_blobs, missing_children)


def _insert_references(
    conn: Connection, manifest_id: int, needed_blobs: list[str], needed_children: list[str]
) -> None:
    for table, digests in ((manifest_blobs, needed_blobs), (manifest_children, needed_children)):
        if digests:
            rows = [{"manifest_id": manifest_id, "digest": d} for d in digests]
            conn.execute(table.insert(), rows)


def tx_put_manifest(
    conn: Connection,
    manifest: ManifestRecord,
    tags: Sequence[str],
    events: Sequence[OutboxEvent],
) -> None:
    now = utc_now()
    needed_blobs = sorted(set(manifest.blobs))
    needed_children = sorted(set(manifest.children))
    repository_id = create_repository(conn, manifest.repository)
    _check_references(conn, repository_id, needed_blobs, needed_children)
    values = {
        "repository_id": repository_id,
        "digest": manifest.digest,
        "media_type": manifest.media_type,
        "artifact_type": manifest.artifact_type,
        "subject": manifest.subject,
        "size": manifest.size,
        "payload": manifest.payload,
        "created_at": manifest.created_at or now,
    }
    key = {"repository_id": repository_id, "digest": manifest.digest}
    manifest_id, created = ensure(
        conn, _INSERT_MANIFEST, values, _MANIFEST_ID_KEY_SHARE, key, f"manifest {manifest.digest}"
    )
    if created:
        _insert_references(conn, manifest_id, needed_blobs, needed_children)
    if tags:
        point_tags(conn, repository_id, manifest_id, tags, now)
    insert_events(conn, events, now)


def tx_delete_manifest(
    conn: Connection, repository: str, digest: str, events: Sequence[OutboxEvent]
) -> bool:
    repository_id = lookup_repository(conn, repository)
    if repository_id is None:
        return False
    key = {"repository_id": repository_id, "digest": digest}
    manifest_id = conn.execute(_MANIFEST_ID, key).scalar_one_or_none()
    if manifest_id is None:
        return False
    now = utc_now()
    remove_manifest(conn, repository_id, manifest_id, digest, now)
    insert_events(conn, events, now)
    return True
