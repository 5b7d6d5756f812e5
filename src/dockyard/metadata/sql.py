"""``MetadataStore`` on SQLAlchemy Core: SQLite and PostgreSQL share this code.

Each method that writes is one transaction, written once as a plain function of a sync
``Connection`` (the ``_tx_*`` functions below); the ``Database`` runs it, on PostgreSQL
through the async engine, on SQLite in one hop to a worker thread (see ``engine.py``). Reads
are single queries that the ``Database`` runs as it runs reads best.

Races between processes and replicas are settled by the database, not by locks in Python:
rows that many writers may create at once are inserted with ``ON CONFLICT DO NOTHING`` and
then read back; references are read ``FOR KEY SHARE`` (a no-op on SQLite, whose writers are
serialised by ``BEGIN IMMEDIATE``) so a concurrent delete cannot slip between validation and
commit; upload leases are taken with one conditional ``UPDATE``. Transactions that may leave
garbage behind (an unlink, a deleted manifest, a deleted or moved tag, a new blob) enqueue the
candidates for the garbage collector themselves (see ``gc.py``). Writes that change content
record the caller's outbox events in the same transaction (see ``dockyard.events.outbox``).

The statements of the frequent calls are built once, with bound parameters: building a
SQLAlchemy expression takes several times longer than running a point query on SQLite.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeAlias

from sqlalchemy import Row, Select, Table, bindparam, delete, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, CursorResult

from dockyard.events.outbox import insert_events
from dockyard.metadata.base import (
    BlobRecord,
    ManifestRecord,
    MetadataError,
    MissingReferences,
    OutboxEvent,
    UploadBusy,
    UploadRecord,
)
from dockyard.metadata.engine import Database
from dockyard.metadata.gc import enqueue_blobs, enqueue_manifests, remove_manifest
from dockyard.metadata.schema import (
    blobs,
    manifest_blobs,
    manifest_children,
    manifests,
    repositories,
    repository_blobs,
    uploads,
)
from dockyard.metadata.schema import tags as tag_table  # `tags` is a parameter name below

__all__ = ["SqlMetadataStore"]

# How often to retry an insert-or-read whose row is deleted between the two statements.
_RACE_RETRIES = 5

if TYPE_CHECKING:
    # Rows and selects of any shape (SQLAlchemy 2.1 types them by their column tuple).
    _Row: TypeAlias = Row[*tuple[Any, ...]]
    _Select: TypeAlias = Select[*tuple[Any, ...]]
    _Insert: TypeAlias = sqlite.Insert | postgresql.Insert


def _now() -> datetime:
    return datetime.now(UTC)


def _per_dialect(build: Callable[[Callable[[Table], _Insert]], Any]) -> dict[str, Any]:
    """An insert (``ON CONFLICT`` is dialect-specific) built for each supported dialect."""
    return {"sqlite": build(sqlite.insert), "postgresql": build(postgresql.insert)}


def _key_share(query: _Select) -> _Select:
    """Lock the rows read against deletion until commit (PostgreSQL; a no-op on SQLite)."""
    return query.with_for_update(read=True, key_share=True)


# -- statements -----------------------------------------------------------------------------

_REPOSITORY_ID = select(repositories.c.id).where(repositories.c.name == bindparam("name"))
_INSERT_REPOSITORY = _per_dialect(
    lambda insert: (
        insert(repositories)
        .on_conflict_do_nothing(index_elements=["name"])
        .returning(repositories.c.id)
    )
)
_REPOSITORY_ID_KEY_SHARE = _key_share(_REPOSITORY_ID)
# A repository's id where a statement needs it, by name.
_REPOSITORY_ID_OF = (
    select(repositories.c.id).where(repositories.c.name == bindparam("repository"))
).scalar_subquery()

_GET_BLOB = select(blobs.c.digest, blobs.c.size).where(blobs.c.digest == bindparam("digest"))
_GET_REPOSITORY_BLOB = (
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
_INSERT_BLOB = _per_dialect(
    lambda insert: (
        insert(blobs).on_conflict_do_nothing(index_elements=["digest"]).returning(blobs.c.digest)
    )
)
_BLOB_KEY_SHARE = _key_share(select(blobs.c.digest).where(blobs.c.digest == bindparam("digest")))
_INSERT_REPOSITORY_BLOB = _per_dialect(
    lambda insert: insert(repository_blobs).on_conflict_do_nothing(
        index_elements=["repository_id", "digest"]
    )
)
_UNLINK_BLOB = delete(repository_blobs).where(
    repository_blobs.c.repository_id == _REPOSITORY_ID_OF,
    repository_blobs.c.digest == bindparam("digest"),
)


def _references(table: Table) -> Any:
    """A manifest's references as one space-separated string, correlated to ``manifests``."""
    return (
        select(func.aggregate_strings(table.c.digest, " "))
        .where(table.c.manifest_id == manifests.c.id)
        .scalar_subquery()
    )


def _manifest_select() -> _Select:
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


_GET_MANIFEST = (
    _manifest_select()
    .select_from(manifests.join(repositories, repositories.c.id == manifests.c.repository_id))
    .where(
        repositories.c.name == bindparam("repository"),
        manifests.c.digest == bindparam("digest"),
    )
)
_GET_TAGGED_MANIFEST = (
    _manifest_select()
    .select_from(
        tag_table.join(repositories, repositories.c.id == tag_table.c.repository_id).join(
            manifests, manifests.c.id == tag_table.c.manifest_id
        )
    )
    .where(repositories.c.name == bindparam("repository"), tag_table.c.name == bindparam("tag"))
)
_INSERT_MANIFEST = _per_dialect(
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
_MANIFEST_ID_KEY_SHARE = _key_share(_MANIFEST_ID)
_PRESENT_BLOBS = _key_share(
    select(repository_blobs.c.digest).where(
        repository_blobs.c.repository_id == bindparam("repository_id"),
        repository_blobs.c.digest.in_(bindparam("digests", expanding=True)),
    )
)
_PRESENT_CHILDREN = _key_share(
    select(manifests.c.digest).where(
        manifests.c.repository_id == bindparam("repository_id"),
        manifests.c.digest.in_(bindparam("digests", expanding=True)),
    )
)
_TAGGED_MANIFEST_ID = select(tag_table.c.manifest_id).where(
    tag_table.c.repository_id == bindparam("repository_id"), tag_table.c.name == bindparam("tag")
)
_DELETE_TAG = delete(tag_table).where(
    tag_table.c.repository_id == bindparam("repository_id"), tag_table.c.name == bindparam("tag")
)
# The manifests that tags point at before they are moved (garbage candidates once untagged).
_RETAGGED = select(manifests.c.digest).where(
    manifests.c.id.in_(
        select(tag_table.c.manifest_id).where(
            tag_table.c.repository_id == bindparam("repository_id"),
            tag_table.c.name.in_(bindparam("names", expanding=True)),
            tag_table.c.manifest_id != bindparam("manifest_id"),
        )
    )
)

_UPLOAD_COLUMNS = (
    uploads.c.id,
    uploads.c.repository,
    uploads.c.offset,
    uploads.c.hash_state,
    uploads.c.created_at,
    uploads.c.updated_at,
    uploads.c.lease_until,
)
_GET_UPLOAD = select(*_UPLOAD_COLUMNS).where(uploads.c.id == bindparam("upload_id"))
_INSERT_UPLOAD = uploads.insert()
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
_UPDATE_UPLOAD = update(uploads).where(uploads.c.id == bindparam("upload_id"))
_DELETE_UPLOAD = delete(uploads).where(uploads.c.id == bindparam("upload_id"))
# Fenced by the holder's token: the lease_until value its acquire (or last renew) set.
_UPDATE_HELD_UPLOAD = update(uploads).where(
    uploads.c.id == bindparam("upload_id"), uploads.c.lease_until == bindparam("lease")
)


# -- records --------------------------------------------------------------------------------


def _split(references: str | None) -> tuple[str, ...]:
    return tuple(sorted(set(references.split()))) if references else ()


def _manifest_record(repository: str, row: _Row) -> ManifestRecord:
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


def _upload_record(row: _Row) -> UploadRecord:
    return UploadRecord(
        id=row.id,
        repository=row.repository,
        offset=row.offset,
        hash_state=bytes(row.hash_state),
        created_at=row.created_at,
        updated_at=row.updated_at,
        lease=row.lease_until,
    )


def _first(rows: Sequence[_Row]) -> _Row | None:
    return rows[0] if rows else None


def _rowcount(result: Any) -> int:
    assert isinstance(result, CursorResult)
    return result.rowcount


# -- transactions ---------------------------------------------------------------------------


def _ensure(
    conn: Connection,
    inserts: Mapping[str, Any],
    values: Mapping[str, Any],
    lookup: _Select,
    key: Mapping[str, Any],
    what: str,
) -> tuple[Any, bool]:
    """Insert a row that concurrent writers may also insert, or read the winner's; the read
    locks the row against deletion until commit. Returns the first column and whether this
    call created the row."""
    insert = inserts[conn.dialect.name]
    for _ in range(_RACE_RETRIES):
        value = conn.execute(insert, values).scalar_one_or_none()
        if value is not None:
            return value, True
        value = conn.execute(lookup, key).scalar_one_or_none()
        if value is not None:
            return value, False
    raise MetadataError(f"{what} was deleted concurrently {_RACE_RETRIES} times")


def _repository_id(conn: Connection, name: str) -> int | None:
    value: int | None = conn.execute(_REPOSITORY_ID, {"name": name}).scalar_one_or_none()
    return value


def _create_repository(conn: Connection, name: str) -> int:
    existing = _repository_id(conn, name)
    if existing is not None:
        return existing
    key = {"name": name}
    created, _ = _ensure(
        conn, _INSERT_REPOSITORY, key, _REPOSITORY_ID_KEY_SHARE, key, f"repository {name}"
    )
    assert isinstance(created, int)
    return created


def _tx_link_blob(
    conn: Connection,
    repository: str,
    digest: str,
    size: int,
    events: Sequence[OutboxEvent] = (),
) -> None:
    now = _now()
    repository_id = _create_repository(conn, repository)
    values = {"digest": digest, "size": size, "created_at": now}
    _, created = _ensure(
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


def _tx_unlink_blob(
    conn: Connection, repository: str, digest: str, events: Sequence[OutboxEvent]
) -> bool:
    parameters = {"repository": repository, "digest": digest}
    if _rowcount(conn.execute(_UNLINK_BLOB, parameters)) == 0:
        return False
    now = _now()
    enqueue_blobs(conn, [digest], now)
    insert_events(conn, events, now)
    return True


def _tx_complete_upload(
    conn: Connection,
    upload_id: str,
    repository: str,
    digest: str,
    size: int,
    events: Sequence[OutboxEvent],
) -> None:
    _tx_link_blob(conn, repository, digest, size, events)
    conn.execute(_DELETE_UPLOAD, {"upload_id": upload_id})


def _tx_execute(conn: Connection, statement: Any, parameters: Mapping[str, Any]) -> int:
    """A transaction of one statement; the number of rows it changed."""
    return _rowcount(conn.execute(statement, parameters))


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


def _point_tags(
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
    insert = (sqlite.insert if conn.dialect.name == "sqlite" else postgresql.insert)(tag_table)
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


def _tx_put_manifest(
    conn: Connection,
    manifest: ManifestRecord,
    tags: Sequence[str],
    events: Sequence[OutboxEvent],
) -> None:
    now = _now()
    needed_blobs = sorted(set(manifest.blobs))
    needed_children = sorted(set(manifest.children))
    repository_id = _create_repository(conn, manifest.repository)
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
    manifest_id, created = _ensure(
        conn, _INSERT_MANIFEST, values, _MANIFEST_ID_KEY_SHARE, key, f"manifest {manifest.digest}"
    )
    if created:
        _insert_references(conn, manifest_id, needed_blobs, needed_children)
    if tags:
        _point_tags(conn, repository_id, manifest_id, tags, now)
    insert_events(conn, events, now)


def _tx_delete_manifest(
    conn: Connection, repository: str, digest: str, events: Sequence[OutboxEvent]
) -> bool:
    repository_id = _repository_id(conn, repository)
    if repository_id is None:
        return False
    key = {"repository_id": repository_id, "digest": digest}
    manifest_id = conn.execute(_MANIFEST_ID, key).scalar_one_or_none()
    if manifest_id is None:
        return False
    now = _now()
    remove_manifest(conn, repository_id, manifest_id, digest, now)
    insert_events(conn, events, now)
    return True


def _tx_delete_tag(
    conn: Connection, repository: str, tag: str, events: Sequence[OutboxEvent]
) -> bool:
    repository_id = _repository_id(conn, repository)
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
    now = _now()
    enqueue_manifests(conn, repository_id, [digest], now)
    insert_events(conn, events, now)
    return True


def _tx_acquire_upload(
    conn: Connection, upload_id: str, lease_seconds: float
) -> UploadRecord | None:
    now = _now()
    parameters = {
        "upload_id": upload_id,
        "now": now,
        "lease_until": now + timedelta(seconds=lease_seconds),
        "updated_at": now,
    }
    row = conn.execute(_ACQUIRE_UPLOAD, parameters).first()
    if row is not None:
        return _upload_record(row)
    if conn.execute(_GET_UPLOAD, {"upload_id": upload_id}).first() is None:
        return None
    # Nothing was written: rolling back is as good as committing.
    raise UploadBusy(upload_id)


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

    async def _read(self, query: Any, **parameters: Any) -> Sequence[_Row]:
        return await self._db.read(query, parameters)

    # -- repositories ----------------------------------------------------------------------
    async def repository_exists(self, repository: str) -> bool:
        return bool(await self._read(_REPOSITORY_ID, name=repository))

    async def list_repositories(self, limit: int, last: str | None = None) -> list[str]:
        query = select(repositories.c.name).order_by(repositories.c.name).limit(max(limit, 0))
        if last is not None:
            query = query.where(repositories.c.name > last)
        return [row[0] for row in await self._read(query)]

    # -- blobs -----------------------------------------------------------------------------
    async def get_blob(self, digest: str) -> BlobRecord | None:
        row = _first(await self._read(_GET_BLOB, digest=digest))
        return None if row is None else BlobRecord(row.digest, row.size)

    async def get_repository_blob(self, repository: str, digest: str) -> BlobRecord | None:
        row = _first(await self._read(_GET_REPOSITORY_BLOB, repository=repository, digest=digest))
        return None if row is None else BlobRecord(row.digest, row.size)

    async def link_blob(
        self, repository: str, digest: str, size: int, events: Sequence[OutboxEvent] = ()
    ) -> None:
        await self._db.transaction(_tx_link_blob, repository, digest, size, events)

    async def unlink_blob(
        self, repository: str, digest: str, events: Sequence[OutboxEvent] = ()
    ) -> bool:
        return await self._db.transaction(_tx_unlink_blob, repository, digest, events)

    # -- manifests and tags ----------------------------------------------------------------
    async def put_manifest(
        self,
        manifest: ManifestRecord,
        tags: Sequence[str] = (),
        events: Sequence[OutboxEvent] = (),
    ) -> None:
        await self._db.transaction(_tx_put_manifest, manifest, tags, events)

    async def get_manifest(self, repository: str, digest: str) -> ManifestRecord | None:
        row = _first(await self._read(_GET_MANIFEST, repository=repository, digest=digest))
        return None if row is None else _manifest_record(repository, row)

    async def get_tagged_manifest(self, repository: str, tag: str) -> ManifestRecord | None:
        row = _first(await self._read(_GET_TAGGED_MANIFEST, repository=repository, tag=tag))
        return None if row is None else _manifest_record(repository, row)

    async def delete_manifest(
        self, repository: str, digest: str, events: Sequence[OutboxEvent] = ()
    ) -> bool:
        return await self._db.transaction(_tx_delete_manifest, repository, digest, events)

    async def delete_tag(
        self, repository: str, tag: str, events: Sequence[OutboxEvent] = ()
    ) -> bool:
        return await self._db.transaction(_tx_delete_tag, repository, tag, events)

    async def list_tags(self, repository: str, limit: int, last: str | None = None) -> list[str]:
        query = (
            select(tag_table.c.name)
            .where(tag_table.c.repository_id == _REPOSITORY_ID_OF)
            .order_by(tag_table.c.name)
            .limit(max(limit, 0))
        )
        if last is not None:
            query = query.where(tag_table.c.name > last)
        return [row[0] for row in await self._read(query, repository=repository)]

    async def list_referrers(
        self, repository: str, subject: str, artifact_type: str | None = None
    ) -> list[ManifestRecord]:
        query = (
            _manifest_select()
            .select_from(
                manifests.join(repositories, repositories.c.id == manifests.c.repository_id)
            )
            .where(repositories.c.name == repository, manifests.c.subject == subject)
            .order_by(manifests.c.digest)
        )
        if artifact_type is not None:
            query = query.where(manifests.c.artifact_type == artifact_type)
        rows = await self._read(query)
        return [_manifest_record(repository, row) for row in rows]

    # -- upload sessions -------------------------------------------------------------------
    async def create_upload(self, upload: UploadRecord) -> None:
        values = {
            "id": upload.id,
            "repository": upload.repository,
            "offset": upload.offset,
            "hash_state": upload.hash_state,
            "created_at": upload.created_at,
            "updated_at": upload.updated_at,
            "lease_until": None,
        }
        await self._db.transaction(_tx_execute, _INSERT_UPLOAD, values)

    async def get_upload(self, upload_id: str) -> UploadRecord | None:
        row = _first(await self._read(_GET_UPLOAD, upload_id=upload_id))
        return None if row is None else _upload_record(row)

    async def acquire_upload(self, upload_id: str, lease_seconds: float) -> UploadRecord | None:
        return await self._db.transaction(_tx_acquire_upload, upload_id, lease_seconds)

    async def renew_upload(
        self, upload_id: str, lease: datetime, lease_seconds: float
    ) -> datetime | None:
        now = _now()
        renewed = now + timedelta(seconds=lease_seconds)
        values = {"upload_id": upload_id, "lease": lease, "lease_until": renewed, "updated_at": now}
        changed = await self._db.transaction(_tx_execute, _UPDATE_HELD_UPLOAD, values)
        return renewed if changed else None

    async def release_upload(
        self,
        upload_id: str,
        offset: int | None = None,
        hash_state: bytes | None = None,
        lease: datetime | None = None,
    ) -> bool:
        values: dict[str, Any] = {"upload_id": upload_id, "lease_until": None}
        if offset is not None:
            values["offset"] = offset
        if hash_state is not None:
            values["hash_state"] = hash_state
        values["updated_at"] = _now()
        statement = _UPDATE_UPLOAD
        if lease is not None:
            values["lease"] = lease
            statement = _UPDATE_HELD_UPLOAD
        return await self._db.transaction(_tx_execute, statement, values) > 0

    async def complete_upload(
        self,
        upload_id: str,
        repository: str,
        digest: str,
        size: int,
        events: Sequence[OutboxEvent] = (),
    ) -> None:
        await self._db.transaction(_tx_complete_upload, upload_id, repository, digest, size, events)

    async def delete_upload(self, upload_id: str) -> bool:
        return await self._db.transaction(_tx_execute, _DELETE_UPLOAD, {"upload_id": upload_id}) > 0

    async def list_uploads_before(self, cutoff: datetime, limit: int) -> list[UploadRecord]:
        query = (
            select(*_UPLOAD_COLUMNS)
            .where(uploads.c.updated_at < cutoff)
            .order_by(uploads.c.updated_at, uploads.c.id)
            .limit(max(limit, 0))
        )
        rows = await self._read(query)
        return [_upload_record(row) for row in rows]
