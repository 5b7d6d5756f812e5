"""Docker image manifest v2 schema 2 and manifest lists (Distribution's ``manifest-v2-2.md``).

Both must carry their ``mediaType``: unlike OCI documents, nothing else tells them apart from
their OCI look-alikes. Neither format has ``subject``, ``artifactType`` or top-level
``annotations``; such members are ignored like any unknown member, so a Docker manifest never
enters the referrers API (its pusher, seeing no ``OCI-Subject`` header, falls back to the tag
schema as the distribution spec says).
"""

from __future__ import annotations

from typing import Any

from dockyard.mediatypes import DOCKER_MANIFEST, DOCKER_MANIFEST_LIST

from . import fields
from .descriptor import parse_descriptor, parse_descriptors
from .parsed import ParsedManifest

__all__ = ["parse_manifest", "parse_manifest_list"]


def parse_manifest(document: dict[str, Any]) -> ParsedManifest:
    _require_media_type(document, "a Docker schema2 manifest")
    fields.absent(document, ("manifests",), "an image manifest")
    config = parse_descriptor(fields.required(document, "config", ""), "config")
    layers = parse_descriptors(fields.required(document, "layers", ""), "layers")
    return ParsedManifest(
        media_type=DOCKER_MANIFEST,
        config=config,
        layers=layers,
        manifests=(),
        subject=None,
        artifact_type=config.media_type,  # the referrers rule for image manifests
        annotations={},
    )


def parse_manifest_list(document: dict[str, Any]) -> ParsedManifest:
    _require_media_type(document, "a Docker manifest list")
    fields.absent(document, ("config", "layers"), "a manifest list")
    manifests = parse_descriptors(fields.required(document, "manifests", ""), "manifests")
    return ParsedManifest(
        media_type=DOCKER_MANIFEST_LIST,
        config=None,
        layers=(),
        manifests=manifests,
        subject=None,
        artifact_type=None,
        annotations={},
    )


def _require_media_type(document: dict[str, Any], kind: str) -> None:
    if "mediaType" not in document:
        raise fields.invalid("mediaType", f"is required in {kind}")
