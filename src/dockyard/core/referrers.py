"""The referrers API: manifests whose ``subject`` is a given digest, as an OCI index."""

from __future__ import annotations

import json
from typing import Any

from dockyard.digest import Digest
from dockyard.mediatypes import OCI_INDEX
from dockyard.metadata.base import ManifestRecord, MetadataStore

__all__ = ["referrers_index"]


def _annotations(record: ManifestRecord) -> dict[str, str] | None:
    try:
        document = json.loads(record.payload)
    except ValueError:
        return None
    annotations = document.get("annotations") if isinstance(document, dict) else None
    return annotations if isinstance(annotations, dict) and annotations else None


def _descriptor(record: ManifestRecord) -> dict[str, Any]:
    descriptor: dict[str, Any] = {
        "mediaType": record.media_type,
        "digest": record.digest,
        "size": record.size,
    }
    if record.artifact_type:
        descriptor["artifactType"] = record.artifact_type
    annotations = _annotations(record)
    if annotations:
        descriptor["annotations"] = annotations
    return descriptor


async def referrers_index(
    metadata: MetadataStore, repository: str, subject: Digest, artifact_type: str | None
) -> dict[str, Any]:
    records = await metadata.list_referrers(repository, str(subject), artifact_type)
    return {
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [_descriptor(record) for record in records],
    }
