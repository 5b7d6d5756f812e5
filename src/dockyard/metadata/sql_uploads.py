"""Upload sessions: offset and resumable hash state, so that any replica can continue an
upload. One writer at a time holds a session's lease, taken with one conditional ``UPDATE``;
the lease's ``lease_until`` value is the holder's token for renewing and releasing it."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import bindparam, delete, or_, select, update
from sqlalchemy.engine import Connection

from dockyard.metadata.base import OutboxEvent, UploadBusy, UploadRecord
from dockyard.metadata.schema import uploads
from dockyard.metadata.sql_blobs import tx_link_blob
from dockyard.metadata.sql_common import utc_now

if TYPE_CHECKING:
    from dockyard.metadata.sql_common import AnyRow, AnySelect

__all__ = [
    "DELETE_UPLOAD",
    "GET_UPLOAD",
    "INSERT_UPLOAD",
    "UPDATE_HELD_UPLOAD",
    "UPDATE_UPLOAD",
    "new_upload_values",
    "release_values",
    "tx_acquire_upload",
    "tx_complete_upload",
    "upload_record",
    "uploads_before_query",
]

_UPLOAD_COLUMNS = (
    uploads.c.id,
    uploads.c.repository,
    uploads.c.offset,
    uploads.c.hash_state,
    uploads.c.created_at,
    uploads.c.updated_at,
    uploads.c.lease_until,
)
GET_UPLOAD = select(*_UPLOAD_COLUMNS).where(uploads.c.id == bindparam("upload_id"))
INSERT_UPLOAD = uploads.insert()
# One conditional UPDATE: of many concurrent callers, exactly one matches the row. The
# columns to set are the parameters' keys (``lease_until``, ``updated_at``).
_ACQUIRE_UPLOAD = (
    update(uploads)
    .where(
        uploads.c.id == bindparam("upload_id"),
        or_(uploads.c.lease_until.is_(None), uploads.c.lease_until <= bindparam("now")),
    )
    .returning(*_UPLOAD_COLUMNS)
)
# The columns to set are the parameters' keys other than ``upload_id``.
UPDATE_UPLOAD = update(uploads).where(uploads.c.id == bindparam("upload_id"))
DELETE_UPLOAD = delete(uploads).where(uploads.c.id == bindparam("upload_id"))
# Fenced by the holder's token: the lease_until value its acquire (or last renew) set.
UPDATE_HELD_UPLOAD = update(uploads).where(
    uploads.c.id == bindparam("upload_id"), uploads.c.lease_until == bindparam("lease")
)


def upload_record(row: AnyRow) -> UploadRecord:
    return UploadRecord(
        id=row.id,
        repository=row.repository,
        offset=row.offset,
        hash_state=bytes(row.hash_state),
        created_at=row.created_at,
        updated_at=row.updated_at,
        lease=row.lease_until,
    )


def new_upload_values(upload: UploadRecord) -> dict[str, Any]:
    """The row of a new session (``INSERT_UPLOAD``), not leased."""
    return {
        "id": upload.id,
        "repository": upload.repository,
        "offset": upload.offset,
        "hash_state": upload.hash_state,
        "created_at": upload.created_at,
        "updated_at": upload.updated_at,
        "lease_until": None,
    }


def release_values(
    upload_id: str, offset: int | None, hash_state: bytes | None, lease: datetime | None
) -> dict[str, Any]:
    """The parameters that end a lease (``UPDATE_HELD_UPLOAD`` when ``lease`` is given, else
    ``UPDATE_UPLOAD``), saving the progress given."""
    values: dict[str, Any] = {"upload_id": upload_id, "lease_until": None}
    if offset is not None:
        values["offset"] = offset
    if hash_state is not None:
        values["hash_state"] = hash_state
    values["updated_at"] = utc_now()
    if lease is not None:
        values["lease"] = lease
    return values


def uploads_before_query(cutoff: datetime, limit: int) -> AnySelect:
    """Sessions last updated before ``cutoff``, oldest first."""
    return (
        select(*_UPLOAD_COLUMNS)
        .where(uploads.c.updated_at < cutoff)
        .order_by(uploads.c.updated_at, uploads.c.id)
        .limit(max(limit, 0))
    )


def tx_acquire_upload(
    conn: Connection, upload_id: str, lease_seconds: float
) -> UploadRecord | None:
    now = utc_now()
    parameters = {
        "upload_id": upload_id,
        "now": now,
        "lease_until": now + timedelta(seconds=lease_seconds),
        "updated_at": now,
    }
    row = conn.execute(_ACQUIRE_UPLOAD, parameters).first()
    if row is not None:
        return upload_record(row)
    if conn.execute(GET_UPLOAD, {"upload_id": upload_id}).first() is None:
        return None
    # Nothing was written: rolling back is as good as committing.
    raise UploadBusy(upload_id)


def tx_complete_upload(
    conn: Connection,
    upload_id: str,
    repository: str,
    digest: str,
    size: int,
    events: Sequence[OutboxEvent],
) -> None:
    tx_link_blob(conn, repository, digest, size, events)
    conn.execute(DELETE_UPLOAD, {"upload_id": upload_id})
