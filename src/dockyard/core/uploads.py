"""Upload sessions: chunked and monolithic blob pushes, cancellation and mounts.

A session's bytes go to ``uploads/<id>/data``; its offset and running SHA-256 state live in the
metadata store, so any worker or replica can continue it. A blob is moved under its digest only
after the digest is verified, so a crash never leaves a half blob under a digest.
"""

from __future__ import annotations

import contextlib
import hashlib
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from dockyard import hashing
from dockyard.core.gc import Placements
from dockyard.core.lease import LEASE_SECONDS, held
from dockyard.core.paths import blob_path, upload_dir, upload_path
from dockyard.core.policy import Policy
from dockyard.core.pump import pump
from dockyard.core.seams import QuotaGate
from dockyard.digest import Digest
from dockyard.errors import (
    BlobUploadInvalid,
    BlobUploadUnknown,
    DigestInvalid,
    QuotaExceeded,
    RangeInvalid,
    SizeInvalid,
)
from dockyard.events.sink import BLOB_MEDIA_TYPE, NO_EVENTS, EventSink, Target
from dockyard.metadata.base import (
    BlobRecord,
    MetadataStore,
    OutboxEvent,
    UploadBusy,
    UploadRecord,
)
from dockyard.storage.base import PathNotFound, StorageDriver

__all__ = ["UploadState", "Uploads"]

# Uploads always hash with sha256 as they go; other algorithms are checked by a re-read.
_RUNNING_ALGORITHM = "sha256"
_READ_CHUNK = 4 << 20


@dataclass(frozen=True, slots=True)
class UploadState:
    id: str
    repository: str
    offset: int


def _now() -> datetime:
    return datetime.now(UTC)


class Uploads:
    def __init__(
        self,
        storage: StorageDriver,
        metadata: MetadataStore,
        policy: Policy,
        lease_seconds: float = LEASE_SECONDS,
        placements: Placements | None = None,
        events: EventSink = NO_EVENTS,
        quotas: QuotaGate | None = None,
    ) -> None:
        self._storage = storage
        self._metadata = metadata
        self._policy = policy
        self._events = events
        self._lease = lease_seconds
        # Without it, nothing collects garbage concurrently (see dockyard.core.gc).
        self._placements = placements
        # Without it, no storage quota applies (see dockyard.core.seams).
        self._quotas = quotas

    async def start(self, repository: str) -> UploadState:
        self._policy.check_write()
        now = _now()
        record = UploadRecord(
            id=str(uuid.uuid4()),
            repository=repository,
            offset=0,
            hash_state=hashing.new(_RUNNING_ALGORITHM).state(),
            created_at=now,
            updated_at=now,
        )
        await self._metadata.create_upload(record)
        return UploadState(record.id, repository, 0)

    async def status(self, repository: str, upload_id: str) -> UploadState:
        record = await self._metadata.get_upload(upload_id)
        if record is None or record.repository != repository:
            raise BlobUploadUnknown(detail={"uuid": upload_id})
        return UploadState(record.id, repository, record.offset)

    async def append(
        self,
        repository: str,
        upload_id: str,
        chunks: AsyncIterator[bytes],
        start: int | None = None,
        length: int | None = None,
    ) -> UploadState:
        """Append a chunk. ``start`` (from Content-Range) must equal the current offset;
        ``length`` (from Content-Length) must equal the bytes received."""
        self._policy.check_write()
        record = await self._acquire(repository, upload_id)
        async with held(self._metadata, record, self._lease) as lease:
            try:
                if start is not None and start != record.offset:
                    raise _range_error(record)
                offset, state = await self._write(record, chunks, length)
            except BaseException:
                await self._metadata.release_upload(upload_id, lease=lease.token)
                raise
            if not await self._metadata.release_upload(upload_id, offset, state, lease.token):
                raise BlobUploadInvalid(message="upload session was taken over by another request")
        return UploadState(upload_id, repository, offset)

    async def finish(
        self,
        repository: str,
        upload_id: str,
        digest: Digest,
        chunks: AsyncIterator[bytes],
        start: int | None = None,
        length: int | None = None,
    ) -> BlobRecord:
        """Append a final chunk (possibly empty), verify the digest and store the blob."""
        self._policy.check_write()
        record = await self._acquire(repository, upload_id)
        # The placement lease spans the move and the link (see dockyard.core.gc).
        async with contextlib.AsyncExitStack() as placement:
            async with held(self._metadata, record, self._lease) as lease:
                try:
                    if start is not None and start != record.offset:
                        raise _range_error(record)
                    offset, state = await self._write(record, chunks, length, final=True)
                    hasher = hashing.new(_RUNNING_ALGORITHM, state or None)
                    if not state:
                        hasher = await self._rehash_running(upload_id, offset)
                    actual = f"{_RUNNING_ALGORITHM}:{hasher.hexdigest()}"
                    if digest.algorithm != _RUNNING_ALGORITHM:
                        path = upload_path(upload_id)
                        actual = await self._rehash(path, digest.algorithm, offset)
                    if actual != str(digest):
                        await self._discard(upload_id)
                        raise DigestInvalid(detail={"expected": str(digest), "actual": actual})
                    # The hash covers what this session recorded; the file must hold exactly
                    # that.
                    if (await self._storage.stat(upload_path(upload_id))).size != offset:
                        raise BlobUploadInvalid(message="upload data does not match the session")
                    try:
                        # Room under the quota is held until the blob is linked.
                        admit = self._admit(repository, digest, offset)
                        await placement.enter_async_context(admit)
                    except QuotaExceeded:
                        await self._discard(upload_id)
                        raise
                    await placement.enter_async_context(self._placing(digest))
                    await self._store(upload_path(upload_id), digest)
                except BaseException:
                    await self._metadata.release_upload(upload_id, lease=lease.token)
                    raise
            # Link the blob and end the session in one transaction; a directory left behind
            # by a crash between this and the removal below is removed by upload purging.
            pushed = self._blob_events("push", repository, str(digest), offset)
            await self._metadata.complete_upload(upload_id, repository, str(digest), offset, pushed)
        await self._remove_dir(upload_id)
        return BlobRecord(str(digest), offset)

    async def cancel(self, repository: str, upload_id: str) -> None:
        self._policy.check_write()
        record = await self._metadata.get_upload(upload_id)
        if record is None or record.repository != repository:
            raise BlobUploadUnknown(detail={"uuid": upload_id})
        await self._discard(upload_id)

    async def monolithic(
        self,
        repository: str,
        digest: Digest,
        chunks: AsyncIterator[bytes],
        length: int | None = None,
    ) -> BlobRecord:
        """``POST ?digest=``: the whole blob in one request, with no session record."""
        self._policy.check_write()
        upload_id = str(uuid.uuid4())
        path = upload_path(upload_id)
        writer = await self._storage.writer(path)
        hasher = hashlib.new(digest.algorithm)
        try:
            size = await pump(chunks, hasher, writer)
            if length is not None and size != length:
                raise SizeInvalid(detail={"expected": length, "received": size})
            actual = f"{digest.algorithm}:{hasher.hexdigest()}"
            if actual != str(digest):
                raise DigestInvalid(detail={"expected": str(digest), "actual": actual})
            await writer.commit()
            async with self._admit(repository, digest, size), self._placing(digest):
                await self._store(path, digest)
                pushed = self._blob_events("push", repository, str(digest), size)
                await self._metadata.link_blob(repository, str(digest), size, pushed)
        except BaseException:
            await writer.cancel()
            await self._remove_dir(upload_id)
            raise
        await self._remove_dir(upload_id)
        return BlobRecord(str(digest), size)

    async def mount(self, repository: str, digest: Digest, source: str) -> BlobRecord | None:
        """Link a blob the source repository serves; None when it does not serve it."""
        self._policy.check_write()
        async with self._placing(digest):
            blob = await self._metadata.get_repository_blob(source, str(digest))
            if blob is None:
                return None
            mounted = self._blob_events("mount", repository, blob.digest, blob.size, source)
            async with self._admit(repository, digest, blob.size):
                await self._metadata.link_blob(repository, blob.digest, blob.size, mounted)
        return blob

    def _blob_events(
        self,
        action: Literal["push", "mount"],
        repository: str,
        digest: str,
        size: int,
        source: str | None = None,
    ) -> Sequence[OutboxEvent]:
        target = Target("blob", repository, digest, BLOB_MEDIA_TYPE, size, from_repository=source)
        return self._events.changed(action, target)

    async def purge(self, cutoff: datetime, limit: int = 1000) -> list[str]:
        """Delete sessions untouched since ``cutoff`` and orphaned upload directories."""
        purged: list[str] = []
        for record in await self._metadata.list_uploads_before(cutoff, limit):
            await self._discard(record.id)
            purged.append(record.id)
        try:
            entries = await self._storage.list("uploads")
        except PathNotFound:
            return purged
        for entry in entries:
            upload_id = entry.rsplit("/", 1)[-1]
            if await self._metadata.get_upload(upload_id) is not None:
                continue
            try:
                info = await self._storage.stat(entry)
            except PathNotFound:
                continue
            if info.modified < cutoff:
                await self._remove_dir(upload_id)
                purged.append(upload_id)
        return purged

    # -- internals -------------------------------------------------------------------------

    async def _acquire(self, repository: str, upload_id: str) -> UploadRecord:
        try:
            record = await self._metadata.acquire_upload(upload_id, self._lease)
        except UploadBusy:
            current = await self._metadata.get_upload(upload_id)
            if current is None or current.repository != repository:
                raise BlobUploadUnknown(detail={"uuid": upload_id}) from None
            raise _range_error(current, "upload is busy with another request") from None
        if record is None:
            raise BlobUploadUnknown(detail={"uuid": upload_id})
        if record.repository != repository:
            await self._metadata.release_upload(upload_id)
            raise BlobUploadUnknown(detail={"uuid": upload_id})
        return record

    async def _write(
        self,
        record: UploadRecord,
        chunks: AsyncIterator[bytes],
        length: int | None,
        final: bool = False,
    ) -> tuple[int, bytes]:
        """Write a chunk after the session's current offset; return the new offset and state."""
        if record.hash_state:
            hasher = hashing.new(_RUNNING_ALGORITHM, record.hash_state)
        else:
            hasher = await self._rehash_running(record.id, record.offset)
        try:
            writer = await self._storage.writer(upload_path(record.id), record.offset)
        except PathNotFound:
            if record.offset:
                raise BlobUploadInvalid(message="upload data is missing") from None
            writer = await self._storage.writer(upload_path(record.id))
        try:
            size = await pump(chunks, hasher, writer)
        except BaseException:
            await writer.close()
            raise
        # The last chunk is made durable before the blob is moved under its digest.
        await (writer.commit() if final else writer.close())
        if length is not None and size != length:
            raise SizeInvalid(detail={"expected": length, "received": size})
        return record.offset + size, hasher.state()

    async def _rehash_running(self, upload_id: str, offset: int) -> hashing.ResumableHash:
        hasher = hashing.new(_RUNNING_ALGORITHM)
        if offset:
            async for chunk in self._storage.reader(upload_path(upload_id), 0, offset):
                hasher.update(chunk)
        return hasher

    async def _rehash(self, path: str, algorithm: str, size: int) -> str:
        hasher = hashlib.new(algorithm)
        if size:
            async for chunk in self._storage.reader(path, 0, size):
                hasher.update(chunk)
        return f"{algorithm}:{hasher.hexdigest()}"

    def _admit(
        self, repository: str, digest: Digest, size: int
    ) -> AbstractAsyncContextManager[None]:
        if self._quotas is None:
            return contextlib.nullcontext()
        return self._quotas.admit(repository, str(digest), size)

    def _placing(self, digest: Digest) -> AbstractAsyncContextManager[None]:
        if self._placements is None:
            return contextlib.nullcontext()
        return self._placements.placing(str(digest))

    async def _store(self, source: str, digest: Digest) -> None:
        """Move verified bytes under their digest (replacing identical bytes is harmless)."""
        await self._storage.move(source, blob_path(digest))

    async def _discard(self, upload_id: str) -> None:
        await self._remove_dir(upload_id)
        await self._metadata.delete_upload(upload_id)

    async def _remove_dir(self, upload_id: str) -> None:
        with contextlib.suppress(PathNotFound):
            await self._storage.delete(upload_dir(upload_id))


def _range_error(record: UploadRecord, message: str | None = None) -> RangeInvalid:
    end = record.offset - 1 if record.offset else 0
    return RangeInvalid(
        message=message or f"chunk does not start at the current offset {record.offset}",
        headers={"Range": f"0-{end}", "Docker-Upload-UUID": record.id},
    )
