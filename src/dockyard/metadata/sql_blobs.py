"""Blob rows and their links to repositories: a blob is readable from a repository only while
linked there. A new blob and an unlinked one become garbage candidates (see ``gc_queue.py``)
in the transaction that made them so."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import bindparam, delete, select
from sqlalchemy.engine import Connection

from dockyard.events.outbox import insert_events
from dockyard.metadata.base import OutboxEvent
from dockyard.metadata.gc_queue import enqueue_blobs
from dockyard.metadata.schema import blobs, repositories, repository_blobs
from dockyard.metadata.sql_common import ensure, key_share, per_dialect, rowcount, utc_now
from dockyard.metadata.sql_repositories import REPOSITORY_ID_OF, create_repository

__all__ = ["GET_BLOB", "GET_REPOSITORY_BLOB", "tx_link_blob", "tx_unlink_blob"]

GET_BLOB = select(blobs.c.digest, blobs.c.size).where(blobs.c.digest == bindparam("digest"))
GET_REPOSITORY_BLOB = (
    select(blobs.c.digest, blobs.c.size)
    .select_from(
        repository_blobs.join(
            repositories, repositories.c.id == repository_blobs.c.repository_id
        ).join(blobs, blobs.c.digest == repository_blobs.c.digest)
    )
    .where(
        repositories.c.name == bindparam("repository"),
        repository_blobs.c.digest == bindparam("digest"),
    )
)
_INSERT_BLOB = per_dialect(
    lambda insert: (
        insert(blobs).on_conflict_do_nothing(index_elements=["digest"]).returning(blobs.c.digest)
    )
)
_BLOB_KEY_SHARE = key_share(select(blobs.c.digest).where(blobs.c.digest == bindparam("digest")))
_INSERT_REPOSITORY_BLOB = per_dialect(
    lambda insert: insert(repository_blobs).on_conflict_do_nothing(
        index_elements=["repository_id", "digest"]
    )
)
_UNLINK_BLOB = delete(repository_blobs).where(
    repository_blobs.c.repository_id == REPOSITORY_ID_OF,
    repository_blobs.c.digest == bindparam("digest"),
)


def tx_link_blob(
    conn: Connection,
    repository: str,
    digest: str,
    size: int,
    events: Sequence[OutboxEvent] = (),
) -> None:
    now = utc_now()
    repository_id = create_repository(conn, repository)
    values = {"digest": digest, "size": size, "created_at": now}
    _, created = ensure(
        conn, _INSERT_BLOB, values, _BLOB_KEY_SHARE, {"digest": digest}, f"blob {digest}"
    )
    conn.execute(
        _INSERT_REPOSITORY_BLOB[conn.dialect.name],
        {"repository_id": repository_id, "digest": digest, "created_at": now},
    )
    if created:
        # A new blob that no manifest may ever reference.
        enqueue_blobs(conn, [digest], now)
    insert_events(conn, events, now)


def tx_unlink_blob(
    conn: Connection, repository: str, digest: str, events: Sequence[OutboxEvent]
) -> bool:
    parameters = {"repository": repository, "digest": digest}
    if rowcount(conn.execute(_UNLINK_BLOB, parameters)) == 0:
        return False
    now = utc_now()
    enqueue_blobs(conn, [digest], now)
    insert_events(conn, events, now)
    return True
