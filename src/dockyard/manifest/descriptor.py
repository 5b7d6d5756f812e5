"""Content descriptors (image-spec ``descriptor.md``): what a manifest points at, by digest.

A malformed or unsupported digest inside a manifest is refused as ``ManifestInvalid`` naming the
field (``layers[1].digest``): the fault is in the manifest, and ``DIGEST_INVALID`` means
"content does not match its digest" on the wire. ``parse`` therefore raises nothing but
``ManifestInvalid``.
"""

from __future__ import annotations

import base64
import binascii
import copy
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from dockyard.digest import Digest, compute
from dockyard.errors import RegistryError

from . import fields

__all__ = ["FOREIGN_LAYER_TYPES", "Descriptor", "parse_descriptor", "parse_descriptors"]

# Layers that clients fetch from their `urls` and that registries are not asked to hold
# (Windows base layers, chiefly). Only these may point outside the repository.
FOREIGN_LAYER_TYPES = frozenset(
    {
        "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
        "application/vnd.oci.image.layer.nondistributable.v1.tar",
        "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
        "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
    }
)

# RFC 3986 URI: a scheme, then printable ASCII (no spaces, no controls, no raw Unicode).
_URI = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:[!-~]*")

# image-spec platform members with a fixed type; others are kept as they are.
_PLATFORM_STRINGS = ("architecture", "os", "os.version", "variant")
_PLATFORM_LISTS = ("os.features", "features")


@dataclass(frozen=True, slots=True)
class Descriptor:
    """A descriptor as the registry keeps it. Built by :func:`parse_descriptor` from untrusted
    JSON, or directly from trusted values. Empty ``annotations``/``urls`` and an empty
    ``artifact_type`` mean "not set"; ``to_json`` omits them, as Go's ``omitempty`` does."""

    media_type: str
    digest: str
    size: int
    artifact_type: str | None = None
    annotations: Mapping[str, str] | None = None
    platform: Mapping[str, Any] | None = None
    urls: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """OCI descriptor JSON, members in the order of the image-spec's Go types."""
        out: dict[str, Any] = {
            "mediaType": self.media_type,
            "digest": self.digest,
            "size": self.size,
        }
        if self.urls:
            out["urls"] = list(self.urls)
        if self.annotations:
            out["annotations"] = dict(self.annotations)
        if self.platform is not None:
            out["platform"] = copy.deepcopy(dict(self.platform))
        if self.artifact_type:
            out["artifactType"] = self.artifact_type
        return out


def parse_descriptor(value: object, path: str) -> Descriptor:
    """Validate one descriptor found at ``path`` in a decoded manifest."""
    document = fields.obj(value, path)
    media_type = fields.media_type(fields.required(document, "mediaType", path), path, "mediaType")
    digest = _digest(fields.required(document, "digest", path), path)
    size = fields.size(fields.required(document, "size", path), path, "size")
    descriptor = Descriptor(media_type, str(digest), size)
    if len(document) == 3:  # the common case: nothing optional to look at
        return descriptor
    urls: tuple[str, ...] = ()
    if "urls" in document:
        urls = _urls(document["urls"], fields.child(path, "urls"))
    annotations: dict[str, str] | None = None
    if "annotations" in document:
        annotations = fields.string_map(document["annotations"], path, "annotations")
    platform: dict[str, Any] | None = None
    if "platform" in document:
        platform = _platform(document["platform"], fields.child(path, "platform"))
    artifact_type = fields.optional_media_type(document, "artifactType", path)
    if "data" in document:
        _check_data(document["data"], fields.child(path, "data"), digest, size)
    return Descriptor(
        media_type=media_type,
        digest=descriptor.digest,
        size=size,
        artifact_type=artifact_type,
        annotations=annotations or None,
        platform=platform,
        urls=urls,
    )


def parse_descriptors(value: object, path: str) -> tuple[Descriptor, ...]:
    """An array of descriptors (``layers``, ``manifests``); it may be empty."""
    items = fields.array(value, path)
    return tuple(
        parse_descriptor(item, fields.child(path, index)) for index, item in enumerate(items)
    )


def _digest(value: object, path: str) -> Digest:
    text = fields.string(value, path, "digest")
    try:
        return Digest.parse(text)
    except RegistryError as exc:  # DigestInvalid, or Unsupported for an unknown algorithm
        raise fields.invalid(
            fields.child(path, "digest"), f"is not a valid digest: {exc.text}"
        ) from exc


def _urls(value: object, path: str) -> tuple[str, ...]:
    urls = []
    for index, item in enumerate(fields.array(value, path)):
        url = fields.string(item, path, index)
        if _URI.fullmatch(url) is None:
            raise fields.invalid(fields.child(path, index), "must be an absolute URI (RFC 3986)")
        urls.append(url)
    return tuple(urls)


def _platform(value: object, path: str) -> dict[str, Any]:
    platform = fields.obj(value, path)
    for key in ("architecture", "os"):  # REQUIRED within a platform
        fields.required(platform, key, path)
    for key in _PLATFORM_STRINGS:
        if key in platform:
            fields.string(platform[key], path, key)
    for key in _PLATFORM_LISTS:
        if key in platform:
            where = fields.child(path, key)
            for index, item in enumerate(fields.array(platform[key], where)):
                fields.string(item, where, index)
    return dict(platform)


def _check_data(value: object, path: str, digest: Digest, size: int) -> None:
    """Embedded content (image-spec 1.1) MUST be base64 and identical to what it describes."""
    text = fields.string(value, path)
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise fields.invalid(path, "must be base64 (RFC 4648)") from exc
    if len(data) != size:
        raise fields.invalid(path, f"holds {len(data)} bytes but the descriptor's size is {size}")
    if compute(data, digest.algorithm) != digest:
        raise fields.invalid(path, "does not match the descriptor's digest")
