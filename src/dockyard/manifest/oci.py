"""OCI image manifests and image indexes (image-spec 1.1 ``manifest.md``, ``image-index.md``).

Both may carry the 1.1 fields ``subject`` (what the manifest refers to, for the referrers API)
and ``artifactType``. Unknown members are ignored, for forward compatibility.
"""

from __future__ import annotations

from typing import Any

from dockyard.mediatypes import OCI_INDEX, OCI_MANIFEST

from . import fields
from .descriptor import Descriptor, parse_descriptor, parse_descriptors
from .parsed import ParsedManifest

__all__ = ["parse_image_index", "parse_image_manifest"]


def parse_image_manifest(document: dict[str, Any]) -> ParsedManifest:
    fields.absent(document, ("manifests",), "an image manifest")
    config = parse_descriptor(fields.required(document, "config", ""), "config")
    layers = parse_descriptors(fields.required(document, "layers", ""), "layers")
    artifact_type = fields.optional_media_type(document, "artifactType", "")
    # image-spec 1.1 asks producers to set artifactType with an empty config; the registry
    # accepts either (as Distribution does) so that older artifact tools keep working.
    return ParsedManifest(
        media_type=OCI_MANIFEST,
        config=config,
        layers=layers,
        manifests=(),
        subject=_subject(document),
        # The referrers rule: artifactType, else the config's media type.
        artifact_type=artifact_type or config.media_type,
        annotations=_annotations(document),
    )


def parse_image_index(document: dict[str, Any]) -> ParsedManifest:
    fields.absent(document, ("config", "layers"), "an image index")
    manifests = parse_descriptors(fields.required(document, "manifests", ""), "manifests")
    return ParsedManifest(
        media_type=OCI_INDEX,
        config=None,
        layers=(),
        manifests=manifests,
        subject=_subject(document),
        artifact_type=fields.optional_media_type(document, "artifactType", ""),
        annotations=_annotations(document),
    )


def _subject(document: dict[str, Any]) -> Descriptor | None:
    if "subject" not in document:
        return None
    return parse_descriptor(document["subject"], "subject")


def _annotations(document: dict[str, Any]) -> dict[str, str]:
    if "annotations" not in document:
        return {}
    return fields.string_map(document["annotations"], "annotations")
