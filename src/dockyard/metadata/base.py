"""The ``MetadataStore`` seam: every fact about content, changed in transactions.

Blobs are a global content-addressed set; a repository may serve a blob only once it is
linked there (pushed or mounted). Manifests belong to a repository and keep their exact
payload bytes. Tags point at manifests of the same repository.

Every write that changes content takes ``events``: outbox events (see ``dockyard.events``)
recorded in the same transaction as the change, and only if the change happened (a delete
that finds nothing records nothing). The store does not read them; consumers do.

Errors::

    MetadataError
    ├── MissingReferences   a manifest names blobs or manifests the repository lacks
    ├── UploadBusy          another request is writing the same upload session
    └── UploadConflict      the session's offset moved underneath the caller
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol, runtime_checkable

__all__ = [
    "BlobRecord",
    "ManifestRecord",
    "MetadataError",
    "MetadataStore",
    "MissingReferences",
    "OutboxEvent",
    "UploadBusy",
    "UploadConflict",
    "UploadRecord",
]


class MetadataError(Exception):
    """Root of the errors a store raises."""


class MissingReferences(MetadataError):
    def __init__(self, blobs: Sequence[str], manifests: Sequence[str]) -> None:
        super().__init__(f"missing blobs {list(blobs)}, missing manifests {list(manifests)}")
        self.blobs = list(blobs)
        self.manifests = list(manifests)


class UploadBusy(MetadataError):
    """The upload is held by another request."""


class UploadConflict(MetadataError):
    """The upload's offset is not the one the caller expected (or the session is gone)."""


@dataclass(frozen=True, slots=True)
class BlobRecord:
    digest: str
    size: int


@dataclass(frozen=True, slots=True)
class ManifestRecord:
    repository: str
    digest: str
    media_type: str
    size: int
    payload: bytes
    artifact_type: str | None = None
    subject: str | None = None
    # Digests this manifest needs: config and layers (blobs), index children (manifests).
    # A store gives them back sorted and de-duplicated.
    blobs: tuple[str, ...] = ()
    children: tuple[str, ...] = ()
    created_at: datetime | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class OutboxEvent:
    """An event to record with a change, for each named consumer to deliver later."""

    body: str
    """The event, as JSON text."""
    consumers: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class UploadRecord:
    id: str
    repository: str
    offset: int
    # Saved running sha256 state (see dockyard.hashing); empty when not resumable.
    hash_state: bytes
    created_at: datetime
    updated_at: datetime
    # The lease's expiry as acquire_upload set it: the holder's fencing token for
    # renew_upload and release_upload. None when the session is not held.
    lease: datetime | None = field(default=None, compare=False)


@runtime_checkable
class MetadataStore(Protocol):
    """Facts about content. Every method is one transaction; all are safe to call
    concurrently from many tasks, processes and replicas."""

    async def close(self) -> None: ...

    # -- repositories ----------------------------------------------------------------------
    async def repository_exists(self, repository: str) -> bool: ...

    async def list_repositories(self, limit: int, last: str | None = None) -> list[str]:
        """Names sorted lexically, after ``last`` when given, at most ``limit``."""
        ...

    # -- blobs -----------------------------------------------------------------------------
    async def get_blob(self, digest: str) -> BlobRecord | None:
        """The blob if stored anywhere in the registry."""
        ...

    async def get_repository_blob(self, repository: str, digest: str) -> BlobRecord | None:
        """The blob if the repository may serve it."""
        ...

    async def link_blob(
        self, repository: str, digest: str, size: int, events: Sequence[OutboxEvent] = ()
    ) -> None:
        """Record the blob (if new) and let the repository serve it; creates the repository.
        Idempotent."""
        ...

    async def unlink_blob(
        self, repository: str, digest: str, events: Sequence[OutboxEvent] = ()
    ) -> bool:
        """Stop the repository serving the blob. False if it was not linked."""
        ...

    # -- manifests and tags ----------------------------------------------------------------
    async def put_manifest(
        self,
        manifest: ManifestRecord,
        tags: Sequence[str] = (),
        events: Sequence[OutboxEvent] = (),
    ) -> None:
        """Store the manifest (idempotent for the same digest) and point ``tags`` at it, in one
        transaction. Raises ``MissingReferences`` unless every digest in ``manifest.blobs`` is
        linked in the repository and every one in ``manifest.children`` is a manifest there.
        Creates the repository."""
        ...

    async def get_manifest(self, repository: str, digest: str) -> ManifestRecord | None:
        """The manifest, its ``blobs`` and ``children`` sorted and de-duplicated (whatever
        order and repeats they were stored with)."""
        ...

    async def get_tagged_manifest(self, repository: str, tag: str) -> ManifestRecord | None:
        """The manifest the tag points at, as ``get_manifest`` gives it."""
        ...

    async def delete_manifest(
        self, repository: str, digest: str, events: Sequence[OutboxEvent] = ()
    ) -> bool:
        """Delete the manifest and every tag pointing at it. False if it was not there."""
        ...

    async def delete_tag(
        self, repository: str, tag: str, events: Sequence[OutboxEvent] = ()
    ) -> bool:
        """Delete only the tag. False if it was not there."""
        ...

    async def list_tags(self, repository: str, limit: int, last: str | None = None) -> list[str]:
        """Tags sorted lexically, after ``last`` when given, at most ``limit``."""
        ...

    async def list_referrers(
        self, repository: str, subject: str, artifact_type: str | None = None
    ) -> list[ManifestRecord]:
        """Manifests in the repository whose subject is ``subject``, by digest (each as
        ``get_manifest`` gives it)."""
        ...

    # -- upload sessions -------------------------------------------------------------------
    async def create_upload(self, upload: UploadRecord) -> None: ...

    async def get_upload(self, upload_id: str) -> UploadRecord | None: ...

    async def acquire_upload(self, upload_id: str, lease_seconds: float) -> UploadRecord | None:
        """Hold the session for one request, refreshing its ``updated_at``. None if it does
        not exist; ``UploadBusy`` if another request holds an unexpired lease."""
        ...

    async def renew_upload(
        self, upload_id: str, lease: datetime, lease_seconds: float
    ) -> datetime | None:
        """Extend a held lease; the new token, or None if ``lease`` is no longer the
        session's (it expired and another request took it, or the session is gone)."""
        ...

    async def release_upload(
        self,
        upload_id: str,
        offset: int | None = None,
        hash_state: bytes | None = None,
        lease: datetime | None = None,
    ) -> bool:
        """Release the lease, refreshing ``updated_at`` and recording the new offset and hash
        state when given. With ``lease``, only if it is still the holder's token. False if
        nothing was released."""
        ...

    async def complete_upload(
        self,
        upload_id: str,
        repository: str,
        digest: str,
        size: int,
        events: Sequence[OutboxEvent] = (),
    ) -> None:
        """Link the blob in the repository, as ``link_blob`` does (recording the blob if new,
        creating the repository), and delete the upload session, in one transaction.
        Idempotent; the session may already be gone."""
        ...

    async def delete_upload(self, upload_id: str) -> bool:
        """Delete the session. False if it was not there."""
        ...

    async def list_uploads_before(self, cutoff: datetime, limit: int) -> list[UploadRecord]:
        """Sessions not updated since ``cutoff`` (for purging), oldest first."""
        ...
