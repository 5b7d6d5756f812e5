"""``MetadataStore`` on SQLAlchemy Core: SQLite and PostgreSQL share this code.

Each method that writes is one transaction, written once as a plain function of a sync
``Connection`` (the ``tx_*`` functions of the ``sql_*`` modules, one module per kind of
row: ``sql_repositories``, ``sql_blobs``, ``sql_manifests``, ``sql_tags``, ``sql_uploads``);
the ``Database`` runs it, on PostgreSQL through the async engine, on SQLite in one hop to a
worker thread (see ``engine.py``). Reads are single queries that the ``Database`` runs as it
runs reads best.

Races between processes and replicas are settled by the database, not by locks in Python:
rows that many writers may create at once are inserted with ``ON CONFLICT DO NOTHING`` and
then read back; references are read ``FOR KEY SHARE`` (a no-op on SQLite, whose writers are
serialised by ``BEGIN IMMEDIATE``) so a concurrent delete cannot slip between validation and
commit; upload leases are taken with one conditional ``UPDATE``. Transactions that may leave
garbage behind (an unlink, a deleted manifest, a deleted or moved tag, a new blob) enqueue the
candidates for the garbage collector themselves (see ``gc.py``). Writes that change content
record the caller's outbox events in the same transaction (see ``dockyard.events.outbox``).
The statements of the frequent calls are built once (see ``sql_common.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from dockyard.metadata.base import BlobRecord, ManifestRecord, OutboxEvent, UploadRecord
from dockyard.metadata.engine import Database
from dockyard.metadata.sql_blobs import GET_BLOB, GET_REPOSITORY_BLOB, tx_link_blob, tx_unlink_blob
from dockyard.metadata.sql_common import first, tx_execute, utc_now
from dockyard.metadata.sql_manifests import (
    GET_MANIFEST,
    GET_TAGGED_MANIFEST,
    manifest_record,
    referrers_query,
    tx_delete_manifest,
    tx_put_manifest,
)
from dockyard.metadata.sql_repositories import REPOSITORY_ID, list_repositories_query
from dockyard.metadata.sql_tags import list_tags_query, tx_delete_tag
from dockyard.metadata.sql_uploads import (
    DELETE_UPLOAD,
    GET_UPLOAD,
    INSERT_UPLOAD,
    UPDATE_HELD_UPLOAD,
    UPDATE_UPLOAD,
    new_upload_values,
    release_values,
    tx_acquire_upload,
    tx_complete_upload,
    upload_record,
    uploads_before_query,
)

if TYPE_CHECKING:
    from dockyard.metadata.sql_common import AnyRow

__all__ = ["SqlMetadataStore"]


class SqlMetadataStore:
    """A ``MetadataStore`` over a ``Database`` (SQLite or PostgreSQL), which it owns and
    closes on ``close``."""

    def __init__(self, database: Database) -> None:
        if database.dialect not in ("sqlite", "postgresql"):
            raise ValueError(f"unsupported database dialect: {database.dialect}")
        self._db = database

    @property
    def database(self) -> Database:
        return self._db

    async def close(self) -> None:
        await self._db.close()

    async def _read(self, query: Any, **parameters: Any) -> Sequence[AnyRow]:
        return await self._db.read(query, parameters)

    # -- repositories ----------------------------------------------------------------------
    async def repository_exists(self, repository: str) -> bool:
        return bool(await self._read(REPOSITORY_ID, name=repository))

    async def list_repositories(self, limit: int, last: str | None = None) -> list[str]:
        return [row[0] for row in await self._read(list_repositories_query(limit, last))]

    # -- blobs -----------------------------------------------------------------------------
    async def get_blob(self, digest: str) -> BlobRecord | None:
        row = first(await self._read(GET_BLOB, digest=digest))
        return None if row is None else BlobRecord(row.digest, row.size)

    async def get_repository_blob(self, repository: str, digest: str) -> BlobRecord | None:
        row = first(await self._read(GET_REPOSITORY_BLOB, repository=repository, digest=digest))
        return None if row is None else BlobRecord(row.digest, row.size)

    async def link_blob(
        self, repository: str, digest: str, size: int, events: Sequence[OutboxEvent] = ()
    ) -> None:
        await self._db.transaction(tx_link_blob, repository, digest, size, events)

    async def unlink_blob(
        self, repository: str, digest: str, events: Sequence[OutboxEvent] = ()
    ) -> bool:
        return await self._db.transaction(tx_unlink_blob, repository, digest, events)

    # -- manifests and tags ----------------------------------------------------------------
    async def put_manifest(
        self,
        manifest: ManifestRecord,
        tags: Sequence[str] = (),
        events: Sequence[OutboxEvent] = (),
    ) -> None:
        await self._db.transaction(tx_put_manifest, manifest, tags, events)

    async def get_manifest(self, repository: str, digest: str) -> ManifestRecord | None:
        row = first(await self._read(GET_MANIFEST, repository=repository, digest=digest))
        return None if row is None else manifest_record(repository, row)

    async def get_tagged_manifest(self, repository: str, tag: str) -> ManifestRecord | None:
        row = first(await self._read(GET_TAGGED_MANIFEST, repository=repository, tag=tag))
        return None if row is None else manifest_record(repository, row)

    async def delete_manifest(
        self, repository: str, digest: str, events: Sequence[OutboxEvent] = ()
    ) -> bool:
        return await self._db.transaction(tx_delete_manifest, repository, digest, events)

    async def delete_tag(
        self, repository: str, tag: str, events: Sequence[OutboxEvent] = ()
    ) -> bool:
        return await self._db.transaction(tx_delete_tag, repository, tag, events)

    async def list_tags(self, repository: str, limit: int, last: str | None = None) -> list[str]:
        query = list_tags_query(limit, last)
        return [row[0] for row in await self._read(query, repository=repository)]

    async def list_referrers(
        self, repository: str, subject: str, artifact_type: str | None = None
    ) -> list[ManifestRecord]:
        rows = await self._read(referrers_query(repository, subject, artifact_type))
        return [manifest_record(repository, row) for row in rows]

    # -- upload sessions -------------------------------------------------------------------
    async def create_upload(self, upload: UploadRecord) -> None:
        await self._db.transaction(tx_execute, INSERT_UPLOAD, new_upload_values(upload))

    async def get_upload(self, upload_id: str) -> UploadRecord | None:
        row = first(await self._read(GET_UPLOAD, upload_id=upload_id))
        return None if row is None else upload_record(row)

    async def acquire_upload(self, upload_id: str, lease_seconds: float) -> UploadRecord | None:
        return await self._db.transaction(tx_acquire_upload, upload_id, lease_seconds)

    async def renew_upload(
        self, upload_id: str, lease: datetime, lease_seconds: float
    ) -> datetime | None:
        now = utc_now()
        renewed = now + timedelta(seconds=lease_seconds)
        values = {"upload_id": upload_id, "lease": lease, "lease_until": renewed, "updated_at": now}
        changed = await self._db.transaction(tx_execute, UPDATE_HELD_UPLOAD, values)
        return renewed if changed else None

    async def release_upload(
        self,
        upload_id: str,
        offset: int | None = None,
        hash_state: bytes | None = None,
        lease: datetime | None = None,
    ) -> bool:
        values = release_values(upload_id, offset, hash_state, lease)
        statement = UPDATE_UPLOAD if lease is None else UPDATE_HELD_UPLOAD
        return await self._db.transaction(tx_execute, statement, values) > 0

    async def complete_upload(
        self,
        upload_id: str,
        repository: str,
        digest: str,
        size: int,
        events: Sequence[OutboxEvent] = (),
    ) -> None:
        await self._db.transaction(tx_complete_upload, upload_id, repository, digest, size, events)

    async def delete_upload(self, upload_id: str) -> bool:
        return await self._db.transaction(tx_execute, DELETE_UPLOAD, {"upload_id": upload_id}) > 0

    async def list_uploads_before(self, cutoff: datetime, limit: int) -> list[UploadRecord]:
        rows = await self._read(uploads_before_query(cutoff, limit))
        return [upload_record(row) for row in rows]
