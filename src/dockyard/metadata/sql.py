"""``MetadataStore`` on SQLAlchemy Core (async): SQLite and PostgreSQL share this code.

Races between processes and replicas are settled by the database, not by locks in Python:
rows that many writers may create at once are inserted with ``ON CONFLICT DO NOTHING`` and
then read back; references are read ``FOR KEY SHARE`` (a no-op on SQLite, whose writers are
serialised by ``BEGIN IMMEDIATE``) so a concurrent delete cannot slip between validation and
commit; upload leases are taken with one conditional ``UPDATE``.

Manifest records read back carry ``blobs`` and ``children`` as sorted, de-duplicated tuples.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeAlias

from sqlalchemy import Row, Select, Table, delete, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import CursorResult
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from dockyard.metadata.base import (
    BlobRecord,
    ManifestRecord,
    MetadataError,
    MissingReferences,
    UploadBusy,
    UploadRecord,
)
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

__all__ = ["WRITE_OPTION", "SqlMetadataStore"]

# Execution option marking a transaction that writes. SQLite engines begin such
# transactions with BEGIN IMMEDIATE (see ``sqlite.py``); other dialects ignore it.
WRITE_OPTION = "dockyard_write"

# How often to retry an insert-or-read whose row is deleted between the two statements.
_RACE_RETRIES = 5

_UPLOAD_COLUMNS = (
    uploads.c.id,
    uploads.c.repository,
    uploads.c.offset,
    uploads.c.hash_state,
    uploads.c.created_at,
    uploads.c.updated_at,
)


if TYPE_CHECKING:
    # Rows and selects of any shape (SQLAlchemy 2.1 types them by their column tuple).
    _Row: TypeAlias = Row[*tuple[Any, ...]]
    _Select: TypeAlias = Select[*tuple[Any, ...]]


def _now() -> datetime:
    return datetime.now(UTC)


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
    )


def _first(rows: Sequence[_Row]) -> _Row | None:
    return rows[0] if rows else None


def _rowcount(result: Any) -> int:
    assert isinstance(result, CursorResult)
    return result.rowcount


class SqlMetadataStore:
    """A ``MetadataStore`` over an async SQLAlchemy engine (``sqlite+aiosqlite`` or
    ``postgresql+asyncpg``). The store owns the engine and disposes of it on ``close``."""

    def __init__(self, engine: AsyncEngine) -> None:
        dialect = engine.dialect.name
        if dialect not in ("sqlite", "postgresql"):
            raise ValueError(f"unsupported database dialect: {dialect}")
        self._engine = engine
        self._writer = engine.execution_options(**{WRITE_OPTION: True})
        self._dialect = dialect

    @property
    def engine(self) -> AsyncEngine:
        return self._engine

    async def close(self) -> None:
        await self._engine.dispose()

    async def _read(self, query: _Select) -> Sequence[_Row]:
        """Run a read-only query in a transaction of its own (subclasses may run it faster)."""
        async with self._engine.connect() as conn:
            return (await conn.execute(query)).all()

    def _insert(self, table: Table) -> sqlite.Insert | postgresql.Insert:
        if self._dialect == "sqlite":
            return sqlite.insert(table)
        return postgresql.insert(table)

    async def _ensure(
        self, conn: AsyncConnection, insert: Any, lookup: _Select, what: str
    ) -> tuple[Any, bool]:
        """Insert a row that concurrent writers may also insert, or read the winner's; the
        read locks the row against deletion until commit. Returns the first column and
        whether this call created the row."""
        lookup = lookup.with_for_update(read=True, key_share=True)
        for _ in range(_RACE_RETRIES):
            value = (await conn.execute(insert)).scalar_one_or_none()
            if value is not None:
                return value, True
            value = (await conn.execute(lookup)).scalar_one_or_none()
            if value is not None:
                return value, False
        raise MetadataError(f"{what} was deleted concurrently {_RACE_RETRIES} times")

    async def _repository_id(self, conn: AsyncConnection, name: str) -> int | None:
        found = await conn.execute(select(repositories.c.id).where(repositories.c.name == name))
        value: int | None = found.scalar_one_or_none()
        return value

    async def _create_repository(self, conn: AsyncConnection, name: str) -> int:
        existing = await self._repository_id(conn, name)
        if existing is not None:
            return existing
        insert = (
            self._insert(repositories)
            .values(name=name)
            .on_conflict_do_nothing(index_elements=["name"])
            .returning(repositories.c.id)
        )
        lookup = select(repositories.c.id).where(repositories.c.name == name)
        created, _ = await self._ensure(conn, insert, lookup, f"repository {name}")
        assert isinstance(created, int)
        return created

    # -- repositories ----------------------------------------------------------------------
    async def repository_exists(self, repository: str) -> bool:
        query = select(repositories.c.id).where(repositories.c.name == repository)
        return bool(await self._read(query))

    async def list_repositories(self, limit: int, last: str | None = None) -> list[str]:
        query = select(repositories.c.name).order_by(repositories.c.name).limit(max(limit, 0))
        if last is not None:
            query = query.where(repositories.c.name > last)
        return [row[0] for row in await self._read(query)]

    # -- blobs -----------------------------------------------------------------------------
    async def get_blob(self, digest: str) -> BlobRecord | None:
        query = select(blobs.c.digest, blobs.c.size).where(blobs.c.digest == digest)
        row = _first(await self._read(query))
        return None if row is None else BlobRecord(row.digest, row.size)

    async def get_repository_blob(self, repository: str, digest: str) -> BlobRecord | None:
        query = (
            select(blobs.c.digest, blobs.c.size)
            .select_from(
                repository_blobs.join(
                    repositories, repositories.c.id == repository_blobs.c.repository_id
                ).join(blobs, blobs.c.digest == repository_blobs.c.digest)
            )
            .where(repositories.c.name == repository, repository_blobs.c.digest == digest)
        )
        row = _first(await self._read(query))
        return None if row is None else BlobRecord(row.digest, row.size)

    async def link_blob(self, repository: str, digest: str, size: int) -> None:
        now = _now()
        async with self._writer.begin() as conn:
            repository_id = await self._create_repository(conn, repository)
            insert_blob = (
                self._insert(blobs)
                .values(digest=digest, size=size, created_at=now)
                .on_conflict_do_nothing(index_elements=["digest"])
                .returning(blobs.c.digest)
            )
            lookup = select(blobs.c.digest).where(blobs.c.digest == digest)
            await self._ensure(conn, insert_blob, lookup, f"blob {digest}")
            await conn.execute(
                self._insert(repository_blobs)
                .values(repository_id=repository_id, digest=digest, created_at=now)
                .on_conflict_do_nothing(index_elements=["repository_id", "digest"])
            )

    async def unlink_blob(self, repository: str, digest: str) -> bool:
        repository_id = (
            select(repositories.c.id).where(repositories.c.name == repository).scalar_subquery()
        )
        statement = delete(repository_blobs).where(
            repository_blobs.c.repository_id == repository_id,
            repository_blobs.c.digest == digest,
        )
        async with self._writer.begin() as conn:
            return _rowcount(await conn.execute(statement)) > 0

    # -- manifests and tags ----------------------------------------------------------------
    async def put_manifest(self, manifest: ManifestRecord, tags: Sequence[str] = ()) -> None:
        now = _now()
        needed_blobs = sorted(set(manifest.blobs))
        needed_children = sorted(set(manifest.children))
        async with self._writer.begin() as conn:
            repository_id = await self._create_repository(conn, manifest.repository)
            await self._check_references(conn, repository_id, needed_blobs, needed_children)
            insert = (
                self._insert(manifests)
                .values(
                    repository_id=repository_id,
                    digest=manifest.digest,
                    media_type=manifest.media_type,
                    artifact_type=manifest.artifact_type,
                    subject=manifest.subject,
                    size=manifest.size,
                    payload=manifest.payload,
                    created_at=manifest.created_at or now,
                )
                .on_conflict_do_nothing(index_elements=["repository_id", "digest"])
                .returning(manifests.c.id)
            )
            lookup = select(manifests.c.id).where(
                manifests.c.repository_id == repository_id,
                manifests.c.digest == manifest.digest,
            )
            manifest_id, created = await self._ensure(
                conn, insert, lookup, f"manifest {manifest.digest}"
            )
            if created:
                await self._insert_references(conn, manifest_id, needed_blobs, needed_children)
            if tags:
                await self._point_tags(conn, repository_id, manifest_id, tags, now)

    async def _check_references(
        self,
        conn: AsyncConnection,
        repository_id: int,
        needed_blobs: list[str],
        needed_children: list[str],
    ) -> None:
        present_blobs: set[str] = set()
        present_children: set[str] = set()
        if needed_blobs:
            query = (
                select(repository_blobs.c.digest)
                .where(
                    repository_blobs.c.repository_id == repository_id,
                    repository_blobs.c.digest.in_(needed_blobs),
                )
                .with_for_update(read=True, key_share=True)
            )
            present_blobs = set((await conn.execute(query)).scalars())
        if needed_children:
            query = (
                select(manifests.c.digest)
                .where(
                    manifests.c.repository_id == repository_id,
                    manifests.c.digest.in_(needed_children),
                )
                .with_for_update(read=True, key_share=True)
            )
            present_children = set((await conn.execute(query)).scalars())
        missing_blobs = [d for d in needed_blobs if d not in present_blobs]
        missing_children = [d for d in needed_children if d not in present_children]
        if missing_blobs or missing_children:
            raise MissingReferences(missing_blobs, missing_children)

    async def _insert_references(
        self,
        conn: AsyncConnection,
        manifest_id: int,
        needed_blobs: list[str],
        needed_children: list[str],
    ) -> None:
        for table, digests in (
            (manifest_blobs, needed_blobs),
            (manifest_children, needed_children),
        ):
            if digests:
                rows = [{"manifest_id": manifest_id, "digest": d} for d in digests]
                await conn.execute(table.insert(), rows)

    async def _point_tags(
        self,
        conn: AsyncConnection,
        repository_id: int,
        manifest_id: int,
        names: Sequence[str],
        now: datetime,
    ) -> None:
        # Sorted and de-duplicated: one upsert may not touch a row twice, and a fixed order
        # keeps concurrent writers of overlapping tag sets from deadlocking.
        rows = [
            {
                "repository_id": repository_id,
                "name": n,
                "manifest_id": manifest_id,
                "updated_at": now,
            }
            for n in sorted(set(names))
        ]
        insert = self._insert(tag_table).values(rows)
        upsert = insert.on_conflict_do_update(
            index_elements=["repository_id", "name"],
            set_={
                "manifest_id": insert.excluded.manifest_id,
                "updated_at": insert.excluded.updated_at,
            },
        )
        await conn.execute(upsert)

    async def get_manifest(self, repository: str, digest: str) -> ManifestRecord | None:
        query = (
            _manifest_select()
            .select_from(
                manifests.join(repositories, repositories.c.id == manifests.c.repository_id)
            )
            .where(repositories.c.name == repository, manifests.c.digest == digest)
        )
        row = _first(await self._read(query))
        return None if row is None else _manifest_record(repository, row)

    async def get_tagged_manifest(self, repository: str, tag: str) -> ManifestRecord | None:
        query = (
            _manifest_select()
            .select_from(
                tag_table.join(repositories, repositories.c.id == tag_table.c.repository_id).join(
                    manifests, manifests.c.id == tag_table.c.manifest_id
                )
            )
            .where(repositories.c.name == repository, tag_table.c.name == tag)
        )
        row = _first(await self._read(query))
        return None if row is None else _manifest_record(repository, row)

    async def delete_manifest(self, repository: str, digest: str) -> bool:
        async with self._writer.begin() as conn:
            repository_id = await self._repository_id(conn, repository)
            if repository_id is None:
                return False
            found = await conn.execute(
                select(manifests.c.id).where(
                    manifests.c.repository_id == repository_id, manifests.c.digest == digest
                )
            )
            manifest_id = found.scalar_one_or_none()
            if manifest_id is None:
                return False
            # Explicit rather than relying on ON DELETE CASCADE, which SQLite enforces only
            # when the connection enabled foreign keys.
            for table in (tag_table, manifest_blobs, manifest_children):
                await conn.execute(delete(table).where(table.c.manifest_id == manifest_id))
            await conn.execute(delete(manifests).where(manifests.c.id == manifest_id))
            return True

    async def delete_tag(self, repository: str, tag: str) -> bool:
        repository_id = (
            select(repositories.c.id).where(repositories.c.name == repository).scalar_subquery()
        )
        statement = delete(tag_table).where(
            tag_table.c.repository_id == repository_id, tag_table.c.name == tag
        )
        async with self._writer.begin() as conn:
            return _rowcount(await conn.execute(statement)) > 0

    async def list_tags(self, repository: str, limit: int, last: str | None = None) -> list[str]:
        repository_id = (
            select(repositories.c.id).where(repositories.c.name == repository).scalar_subquery()
        )
        query = (
            select(tag_table.c.name)
            .where(tag_table.c.repository_id == repository_id)
            .order_by(tag_table.c.name)
            .limit(max(limit, 0))
        )
        if last is not None:
            query = query.where(tag_table.c.name > last)
        return [row[0] for row in await self._read(query)]

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
        statement = uploads.insert().values(
            id=upload.id,
            repository=upload.repository,
            offset=upload.offset,
            hash_state=upload.hash_state,
            created_at=upload.created_at,
            updated_at=upload.updated_at,
            lease_until=None,
        )
        async with self._writer.begin() as conn:
            await conn.execute(statement)

    async def get_upload(self, upload_id: str) -> UploadRecord | None:
        query = select(*_UPLOAD_COLUMNS).where(uploads.c.id == upload_id)
        row = _first(await self._read(query))
        return None if row is None else _upload_record(row)

    async def acquire_upload(self, upload_id: str, lease_seconds: float) -> UploadRecord | None:
        now = _now()
        # One conditional UPDATE: of many concurrent callers, exactly one matches the row.
        statement = (
            update(uploads)
            .where(
                uploads.c.id == upload_id,
                or_(uploads.c.lease_until.is_(None), uploads.c.lease_until <= now),
            )
            .values(lease_until=now + timedelta(seconds=lease_seconds), updated_at=now)
            .returning(*_UPLOAD_COLUMNS)
        )
        async with self._writer.begin() as conn:
            row = (await conn.execute(statement)).first()
            if row is not None:
                return _upload_record(row)
            exists = await conn.execute(select(uploads.c.id).where(uploads.c.id == upload_id))
            if exists.first() is None:
                return None
        raise UploadBusy(upload_id)

    async def release_upload(
        self, upload_id: str, offset: int | None = None, hash_state: bytes | None = None
    ) -> None:
        values: dict[str, Any] = {"lease_until": None, "updated_at": _now()}
        if offset is not None:
            values["offset"] = offset
        if hash_state is not None:
            values["hash_state"] = hash_state
        statement = update(uploads).where(uploads.c.id == upload_id).values(**values)
        async with self._writer.begin() as conn:
            await conn.execute(statement)

    async def delete_upload(self, upload_id: str) -> bool:
        statement = delete(uploads).where(uploads.c.id == upload_id)
        async with self._writer.begin() as conn:
            return _rowcount(await conn.execute(statement)) > 0

    async def list_uploads_before(self, cutoff: datetime, limit: int) -> list[UploadRecord]:
        query = (
            select(*_UPLOAD_COLUMNS)
            .where(uploads.c.updated_at < cutoff)
            .order_by(uploads.c.updated_at, uploads.c.id)
            .limit(max(limit, 0))
        )
        rows = await self._read(query)
        return [_upload_record(row) for row in rows]
