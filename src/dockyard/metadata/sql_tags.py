"""Tags: names of a repository pointing at its manifests. A manifest a tag no longer points at
(the tag moved or was deleted) becomes a candidate for untagged collection (see
``gc_queue.py``) in the same transaction."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import bindparam, delete, select
from sqlalchemy.engine import Connection

from dockyard.events.outbox import insert_events
from dockyard.metadata.base import OutboxEvent
from dockyard.metadata.gc_queue import enqueue_manifests
from dockyard.metadata.schema import manifests, tags
from dockyard.metadata.sql_common import dialect_insert, utc_now
from dockyard.metadata.sql_repositories import REPOSITORY_ID_OF, lookup_repository

if TYPE_CHECKING:
    from dockyard.metadata.sql_common import AnySelect

__all__ = ["list_tags_query", "point_tags", "tx_delete_tag"]

_TAGGED_MANIFEST_ID = select(tags.c.manifest_id).where(
    tags.c.repository_id == bindparam("repository_id"), tags.c.name == bindparam("tag")
)
_DELETE_TAG = delete(tags).where(
    tags.c.repository_id == bindparam("repository_id"), tags.c.name == bindparam("tag")
)
# The manifests that tags point at before they are moved (garbage candidates once untagged).
_RETAGGED = select(manifests.c.digest).where(
    manifests.c.id.in_(
        select(tags.c.manifest_id).where(
            tags.c.repository_id == bindparam("repository_id"),
            tags.c.name.in_(bindparam("names", expanding=True)),
            tags.c.manifest_id != bindparam("manifest_id"),
        )
    )
)


def point_tags(
    conn: Connection, repository_id: int, manifest_id: int, names: Sequence[str], now: datetime
) -> None:
    # Sorted and de-duplicated: one upsert may not touch a row twice, and a fixed order
    # keeps concurrent writers of overlapping tag sets from deadlocking.
    names = sorted(set(names))
    parameters = {"repository_id": repository_id, "names": names, "manifest_id": manifest_id}
    retagged = list(conn.execute(_RETAGGED, parameters).scalars())
    rows = [
        {"repository_id": repository_id, "name": n, "manifest_id": manifest_id, "updated_at": now}
        for n in names
    ]
    insert = dialect_insert(conn)(tags)
    insert = insert.values(rows)
    upsert = insert.on_conflict_do_update(
        index_elements=["repository_id", "name"],
        set_={
            "manifest_id": insert.excluded.manifest_id,
            "updated_at": insert.excluded.updated_at,
        },
    )
    conn.execute(upsert)
    enqueue_manifests(conn, repository_id, retagged, now)


def tx_delete_tag(
    conn: Connection, repository: str, tag: str, events: Sequence[OutboxEvent]
) -> bool:
    repository_id = lookup_repository(conn, repository)
    if repository_id is None:
        return False
    key = {"repository_id": repository_id, "tag": tag}
    manifest_id = conn.execute(_TAGGED_MANIFEST_ID, key).scalar_one_or_none()
    if manifest_id is None:
        return False
    conn.execute(_DELETE_TAG, key)
    digest = conn.execute(
        select(manifests.c.digest).where(manifests.c.id == manifest_id)
    ).scalar_one()
    now = utc_now()
    enqueue_manifests(conn, repository_id, [digest], now)
    insert_events(conn, events, now)
    return True


def list_tags_query(limit: int, last: str | None) -> AnySelect:
    """A page of a repository's tag names (bound parameter ``repository``), after ``last``."""
    query = (
        select(tags.c.name)
        .where(tags.c.repository_id == REPOSITORY_ID_OF)
        .order_by(tags.c.name)
        .limit(max(limit, 0))
    )
    if last is not None:
        query = query.where(tags.c.name > last)
    return query
