"""Manifests by tag or digest: validated on push, served exactly as pushed."""

from __future__ import annotations

from collections.abc import Awaitable
from dataclasses import dataclass
from typing import TypeVar

from dockyard import digest as digests
from dockyard import manifest
from dockyard.core.policy import Policy
from dockyard.core.refusals import immutable_refusal
from dockyard.core.seams import PullSink
from dockyard.digest import Digest
from dockyard.errors import (
    DigestInvalid,
    ManifestBlobUnknown,
    ManifestUnknown,
    Unsupported,
)
from dockyard.events.sink import NO_EVENTS, EventSink, Target
from dockyard.metadata.base import ManifestRecord, MetadataStore, MissingReferences
from dockyard.reference import is_tag, validate_tag

__all__ = ["MAX_MANIFEST_SIZE", "Manifests", "PushedManifest", "Reference"]

T = TypeVar("T")

# The spec suggests registries accept at least 4 MiB; larger manifests are refused with 413.
MAX_MANIFEST_SIZE = 4 << 20


@dataclass(frozen=True, slots=True)
class Reference:
    """A tag or a digest, as found in a manifest URL."""

    tag: str | None
    digest: Digest | None

    @classmethod
    def parse(cls, text: str) -> Reference:
        if ":" in text:
            return cls(None, Digest.parse(text))
        return cls(validate_tag(text), None)

    def __str__(self) -> str:
        return self.tag if self.tag is not None else str(self.digest)


@dataclass(frozen=True, slots=True)
class PushedManifest:
    digest: str
    subject: str | None


class Manifests:
    def __init__(
        self,
        metadata: MetadataStore,
        policy: Policy,
        events: EventSink = NO_EVENTS,
        pulls: PullSink | None = None,
    ) -> None:
        self._metadata = metadata
        self._policy = policy
        self._events = events
        self._pulls = pulls

    async def put(
        self,
        repository: str,
        reference: Reference,
        payload: bytes,
        content_type: str | None,
    ) -> PushedManifest:
        self._policy.check_write()
        parsed = manifest.parse(payload, content_type)
        computed = digests.compute(payload)
        if reference.digest is not None:
            if reference.digest.algorithm != computed.algorithm:
                computed = digests.compute(payload, reference.digest.algorithm)
            if computed != reference.digest:
                raise DigestInvalid(
                    detail={"expected": str(reference.digest), "actual": str(computed)}
                )
        record = ManifestRecord(
            repository=repository,
            digest=str(computed),
            media_type=parsed.media_type,
            size=len(payload),
            payload=payload,
            artifact_type=parsed.artifact_type,
            subject=parsed.subject.digest if parsed.subject else None,
            blobs=parsed.blobs,
            children=parsed.children,
        )
        tags = [reference.tag] if reference.tag is not None else []
        config = () if parsed.config is None else (parsed.config,)
        target = Target(
            "manifest",
            repository,
            record.digest,
            record.media_type,
            record.size,
            tag=reference.tag,
            references=(*config, *parsed.layers, *parsed.manifests),
        )
        try:
            events = self._events.changed("push", target)
            stored = self._metadata.put_manifest(record, tags, events)
            await _unless_immutable(stored, repository=repository, tag=reference.tag)
        except MissingReferences as missing:
            raise ManifestBlobUnknown(
                detail={"blobs": missing.blobs, "manifests": missing.manifests}
            ) from None
        return PushedManifest(record.digest, record.subject)

    async def get(self, repository: str, reference: Reference) -> ManifestRecord:
        """The manifest, read only: serving it is told apart (``served``)."""
        if reference.digest is not None:
            record = await self._metadata.get_manifest(repository, str(reference.digest))
        else:
            assert reference.tag is not None
            record = await self._metadata.get_tagged_manifest(repository, reference.tag)
        if record is None:
            raise ManifestUnknown(detail={"reference": str(reference)})
        return record

    def served(self, record: ManifestRecord, reference: Reference, *, head: bool) -> None:
        """Record that the manifest was served to a client, once per request.

        By tag, a GET or a HEAD counts as a pull of the tag (containerd resolves a tag with a
        HEAD, then GETs by digest); a GET, by tag or digest, is a pull event (a HEAD only asks
        what the manifest is).
        """
        if reference.tag is not None and self._pulls is not None:
            self._pulls.record(record.repository, reference.tag)
        if head:
            return
        target = Target(
            "manifest",
            record.repository,
            record.digest,
            record.media_type,
            record.size,
            tag=reference.tag,
            payload=record.payload,
        )
        self._events.pulled(target)

    async def delete(self, repository: str, reference: Reference) -> None:
        """By digest: the manifest and its tags. By tag: only that tag."""
        self._policy.check_delete()
        if reference.digest is not None:
            digest = str(reference.digest)
            events = self._events.changed("delete", Target("manifest", repository, digest))
            removal = self._metadata.delete_manifest(repository, digest, events)
            deleted = await _unless_immutable(removal, repository=repository, digest=digest)
        else:
            assert reference.tag is not None
            if not is_tag(reference.tag):
                raise Unsupported(message="invalid tag")
            target = Target("manifest", repository, tag=reference.tag)
            events = self._events.changed("delete", target)
            removal = self._metadata.delete_tag(repository, reference.tag, events)
            deleted = await _unless_immutable(removal, repository=repository, tag=reference.tag)
        if not deleted:
            raise ManifestUnknown(detail={"reference": str(reference)})


async def _unless_immutable(change: Awaitable[T], **detail: str | None) -> T:
    """``change``, with an immutability rule's refusal (a trigger's error, see
    ``dockyard.core.refusals``) turned into the client's TAG_IMMUTABLE."""
    try:
        return await change
    except Exception as error:
        refusal = immutable_refusal(error, **detail)
        if refusal is None:
            raise
        raise refusal from None
