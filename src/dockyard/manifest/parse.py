"""From pushed bytes and their Content-Type to a validated :class:`ParsedManifest`.

The effective media type is the payload's ``mediaType`` if present; else the Content-Type if it
names a manifest type; else inferred from the members (``manifests``: OCI index; ``config`` or
``layers``: OCI image manifest). A manifest Content-Type that disagrees with the payload's
``mediaType`` is refused, so that a digest never reads as two different kinds of document.
Docker schema1 is refused outright.

Everything refused raises ``ManifestInvalid``; nothing else escapes.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, NoReturn

from dockyard.errors import ManifestInvalid
from dockyard.mediatypes import (
    DOCKER_MANIFEST,
    DOCKER_MANIFEST_LIST,
    DOCKER_SCHEMA1,
    DOCKER_SCHEMA1_SIGNED,
    MANIFEST_TYPES,
    OCI_INDEX,
    OCI_MANIFEST,
)

from . import docker, fields, oci
from .parsed import ParsedManifest

__all__ = ["parse"]

_SCHEMA1_TYPES = frozenset({DOCKER_SCHEMA1, DOCKER_SCHEMA1_SIGNED})

_PARSERS: dict[str, Callable[[dict[str, Any]], ParsedManifest]] = {
    OCI_MANIFEST: oci.parse_image_manifest,
    OCI_INDEX: oci.parse_image_index,
    DOCKER_MANIFEST: docker.parse_manifest,
    DOCKER_MANIFEST_LIST: docker.parse_manifest_list,
}


def parse(payload: bytes, content_type: str | None) -> ParsedManifest:
    """Validate a pushed manifest. ``content_type`` is the request's header, parameters and
    all (they are ignored, as the distribution spec asks), or ``None``."""
    document = _decode(payload)
    declared = _declared_media_type(document)
    header = _header_media_type(content_type)
    _refuse_schema1(document, declared, header)
    media_type = _effective_media_type(document, declared, header)
    _check_schema_version(document)
    return _PARSERS[media_type](document)


def _decode(payload: bytes) -> dict[str, Any]:
    try:
        text = payload.decode("utf-8")  # strictly UTF-8; json.loads would guess UTF-16/32
    except UnicodeDecodeError as exc:
        raise ManifestInvalid(
            message=f"manifest invalid: payload is not UTF-8 (byte {exc.start})"
        ) from exc
    try:
        value = json.loads(text, object_pairs_hook=_unique_members, parse_constant=_no_constant)
    except json.JSONDecodeError as exc:
        raise ManifestInvalid(message=f"manifest invalid: payload is not JSON: {exc}") from exc
    except ValueError as exc:  # an integer literal past Python's digit limit
        raise ManifestInvalid(message="manifest invalid: payload holds a number too long") from exc
    except RecursionError as exc:
        raise ManifestInvalid(message="manifest invalid: payload is nested too deeply") from exc
    if "\\u" in text:
        _refuse_lone_surrogates(value)
    if not isinstance(value, dict):
        kind = fields.json_kind(value)
        raise ManifestInvalid(
            message=f"manifest invalid: payload must be a JSON object, not {kind}"
        )
    return value


def _unique_members(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # Parsers disagree on which duplicate wins; refusing them keeps one reading of the bytes.
    document = dict(pairs)
    if len(document) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise ManifestInvalid(
                    message=f"manifest invalid: member {key[:100]!r} appears twice in an object"
                )
            seen.add(key)
    return document


def _no_constant(name: str) -> NoReturn:
    raise ManifestInvalid(message=f"manifest invalid: payload is not JSON: {name} is not a number")


def _refuse_lone_surrogates(value: object) -> None:
    # "\ud800" decodes to a str that cannot be encoded again, which would fail far from here
    # (storing annotations, rendering referrers). RFC 7493 forbids it.
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ManifestInvalid(
            message="manifest invalid: payload escapes an unpaired UTF-16 surrogate"
        ) from exc
    except RecursionError as exc:
        raise ManifestInvalid(message="manifest invalid: payload is nested too deeply") from exc


def _declared_media_type(document: dict[str, Any]) -> str | None:
    if "mediaType" not in document:
        return None
    return fields.string(document["mediaType"], "mediaType")


def _header_media_type(content_type: str | None) -> str | None:
    if content_type is None:
        return None
    media_type = content_type.split(";", 1)[0].strip().lower()
    return media_type or None


def _refuse_schema1(document: dict[str, Any], declared: str | None, header: str | None) -> None:
    version = document.get("schemaVersion")
    if declared in _SCHEMA1_TYPES:
        where = "mediaType"
    elif isinstance(version, int) and not isinstance(version, bool) and version == 1:
        where = "schemaVersion"
    elif header in _SCHEMA1_TYPES:
        where = "Content-Type"
    else:
        return
    raise ManifestInvalid(
        detail={"field": where},
        message=f"manifest invalid: {where} says Docker schema1; schema1 manifests are not "
        "supported, push a Docker schema2 or OCI manifest",
    )


def _effective_media_type(
    document: dict[str, Any], declared: str | None, header: str | None
) -> str:
    if declared is not None:
        if declared not in MANIFEST_TYPES:
            raise fields.invalid("mediaType", f"names an unsupported manifest type: {declared!r}")
        if header in MANIFEST_TYPES and header != declared:
            raise ManifestInvalid(
                detail={"field": "mediaType"},
                message=f"manifest invalid: Content-Type {header} does not match the "
                f"manifest's mediaType {declared}",
            )
        return declared
    if header is not None and header in MANIFEST_TYPES:
        return header
    is_index = "manifests" in document
    is_image = "config" in document or "layers" in document
    if is_index and is_image:
        raise fields.invalid(
            "mediaType",
            "is required when a manifest has both manifests and config/layers members",
        )
    if is_index:
        return OCI_INDEX
    if is_image:
        return OCI_MANIFEST
    raise fields.invalid(
        "mediaType",
        "is missing and the kind of manifest cannot be told: no manifest Content-Type, "
        "and neither config/layers nor manifests",
    )


def _check_schema_version(document: dict[str, Any]) -> None:
    version = fields.integer(fields.required(document, "schemaVersion", ""), "schemaVersion")
    if version != 2:
        raise fields.invalid("schemaVersion", f"must be 2, not {fields.shown(version)}")
