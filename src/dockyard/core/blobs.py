"""Blobs as a repository serves them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

from dockyard.core.paths import blob_path
from dockyard.core.policy import Policy
from dockyard.core.shared_reads import SharedReads
from dockyard.digest import Digest
from dockyard.errors import BlobUnknown
from dockyard.events.sink import BLOB_MEDIA_TYPE, NO_EVENTS, EventSink, Target
from dockyard.metadata.base import MetadataStore
from dockyard.storage.base import StorageDriver

__all__ = ["BlobLocation", "Blobs"]


@dataclass(frozen=True, slots=True)
class BlobLocation:
    digest: str
    size: int
    path: str
    # An OS path for zero-copy sends, when the driver has one.
    local_path: str | None


class Blobs:
    def __init__(
        self,
        storage: StorageDriver,
        metadata: MetadataStore,
        policy: Policy,
        redirects: bool = True,
        events: EventSink = NO_EVENTS,
    ) -> None:
        self._storage = storage
        self._metadata = metadata
        self._policy = policy
        self._redirects = redirects
        self._events = events
        self._reads = SharedReads(storage.reader)

    async def locate(self, repository: str, digest: Digest) -> BlobLocation:
        blob = await self._metadata.get_repository_blob(repository, str(digest))
        if blob is None:
            raise BlobUnknown(detail={"digest": str(digest)})
        path = blob_path(digest)
        return BlobLocation(blob.digest, blob.size, path, self._storage.local_path(path))

    def read(self, location: BlobLocation, offset: int, length: int) -> AsyncIterator[bytes]:
        """The bytes; responses reading the same range at once share one read from storage."""
        return self._reads.read(location.path, offset, length)

    async def redirect_url(self, location: BlobLocation, method: str) -> str | None:
        """Where the client may fetch the bytes directly (a presigned URL), if anywhere."""
        if not self._redirects:
            return None
        return await self._storage.redirect_url(location.path, method)

    async def delete(self, repository: str, digest: Digest) -> None:
        """Unlink the blob from the repository; its bytes go when garbage is collected."""
        self._policy.check_delete()
        deleted = self._events.changed("delete", Target("blob", repository, str(digest)))
        if not await self._metadata.unlink_blob(repository, str(digest), deleted):
            raise BlobUnknown(detail={"digest": str(digest)})

    def pulled(self, repository: str, location: BlobLocation) -> None:
        """Record that the blob was served (an event, when something consumes them)."""
        target = Target("blob", repository, location.digest, BLOB_MEDIA_TYPE, location.size)
        self._events.pulled(target)
