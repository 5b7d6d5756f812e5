"""A ``MetadataStore`` that times every call of the store it wraps (cache included, when the
store is the cached one: what a request waits for). Behaviour is the wrapped store's."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, TypeVar

from dockyard.metadata.base import (
    BlobRecord,
    ManifestRecord,
    MetadataStore,
    OutboxEvent,
    UploadRecord,
)

if TYPE_CHECKING:
    from dockyard.observability.metrics import Metrics
    from dockyard.observability.tracing import Tracing

__all__ = ["MeteredMetadata"]

T = TypeVar("T")


class MeteredMetadata:
    """Times each call (with metrics), and traces it as a span of the request it serves
    (with tracing)."""

    def __init__(
        self, store: MetadataStore, metrics: Metrics | None, tracing: Tracing | None = None
    ) -> None:
        self._store = store
        self._duration = None if metrics is None else metrics.metadata_duration
        self._tracing = tracing

    async def _call(self, operation: str, call: Awaitable[T]) -> T:
        started = time.perf_counter()
        try:
            if self._tracing is None:
                return await call
            # The coroutine runs inside the span: what it calls is the span's child.
            with self._tracing.span(f"metadata {operation}", {"db.operation.name": operation}):
                return await call
        finally:
            if self._duration is not None:
                self._duration.labels(operation).observe(time.perf_counter() - started)

    async def close(self) -> None:
        await self._store.close()

    async def repository_exists(self, repository: str) -> bool:
        return await self._call("repository_exists", self._store.repository_exists(repository))

    async def list_repositories(self, limit: int, last: str | None = None) -> list[str]:
        return await self._call("list_repositories", self._store.list_repositories(limit, last))

    async def get_blob(self, digest: str) -> BlobRecord | None:
        return await self._call("get_blob", self._store.get_blob(digest))

    async def get_repository_blob(self, repository: str, digest: str) -> BlobRecord | None:
        return await self._call(
            "get_repository_blob", self._store.get_repository_blob(repository, digest)
        )

    async def link_blob(
        self, repository: str, digest: str, size: int, events: Sequence[OutboxEvent] = ()
    ) -> None:
        await self._call("link_blob", self._store.link_blob(repository, digest, size, events))

    async def unlink_blob(
        self, repository: str, digest: str, events: Sequence[OutboxEvent] = ()
    ) -> bool:
        return await self._call("unlink_blob", self._store.unlink_blob(repository, digest, events))

    async def put_manifest(
        self,
        manifest: ManifestRecord,
        tags: Sequence[str] = (),
        events: Sequence[OutboxEvent] = (),
    ) -> None:
        await self._call("put_manifest", self._store.put_manifest(manifest, tags, events))

    async def get_manifest(self, repository: str, digest: str) -> ManifestRecord | None:
        return await self._call("get_manifest", self._store.get_manifest(repository, digest))

    async def get_tagged_manifest(self, repository: str, tag: str) -> ManifestRecord | None:
        return await self._call(
            "get_tagged_manifest", self._store.get_tagged_manifest(repository, tag)
        )

    async def delete_manifest(
        self, repository: str, digest: str, events: Sequence[OutboxEvent] = ()
    ) -> bool:
        return await self._call(
            "delete_manifest", self._store.delete_manifest(repository, digest, events)
        )

    async def delete_tag(
        self, repository: str, tag: str, events: Sequence[OutboxEvent] = ()
    ) -> bool:
        return await self._call("delete_tag", self._store.delete_tag(repository, tag, events))

    async def list_tags(self, repository: str, limit: int, last: str | None = None) -> list[str]:
        return await self._call("list_tags", self._store.list_tags(repository, limit, last))

    async def list_referrers(
        self, repository: str, subject: str, artifact_type: str | None = None
    ) -> list[ManifestRecord]:
        return await self._call(
            "list_referrers", self._store.list_referrers(repository, subject, artifact_type)
        )

    async def create_upload(self, upload: UploadRecord) -> None:
        await self._call("create_upload", self._store.create_upload(upload))

    async def get_upload(self, upload_id: str) -> UploadRecord | None:
        return await self._call("get_upload", self._store.get_upload(upload_id))

    async def acquire_upload(self, upload_id: str, lease_seconds: float) -> UploadRecord | None:
        return await self._call(
            "acquire_upload", self._store.acquire_upload(upload_id, lease_seconds)
        )

    async def renew_upload(
        self, upload_id: str, lease: datetime, lease_seconds: float
    ) -> datetime | None:
        return await self._call(
            "renew_upload", self._store.renew_upload(upload_id, lease, lease_seconds)
        )

    async def release_upload(
        self,
        upload_id: str,
        offset: int | None = None,
        hash_state: bytes | None = None,
        lease: datetime | None = None,
    ) -> bool:
        return await self._call(
            "release_upload", self._store.release_upload(upload_id, offset, hash_state, lease)
        )

    async def complete_upload(
        self,
        upload_id: str,
        repository: str,
        digest: str,
        size: int,
        events: Sequence[OutboxEvent] = (),
    ) -> None:
        await self._call(
            "complete_upload",
            self._store.complete_upload(upload_id, repository, digest, size, events),
        )

    async def delete_upload(self, upload_id: str) -> bool:
        return await self._call("delete_upload", self._store.delete_upload(upload_id))

    async def list_uploads_before(self, cutoff: datetime, limit: int) -> list[UploadRecord]:
        return await self._call(
            "list_uploads_before", self._store.list_uploads_before(cutoff, limit)
        )
