"""What a tag page shows of an image, from its manifest and config bytes: no I/O.

Layers are paired with the config's history: each history entry without ``empty_layer``
made the next layer, in order, so the command that created a layer is its entry's
``created_by``. Anything malformed yields what could be read, never an error: the page of
a strange image still opens.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from dockyard.mediatypes import DOCKER_MANIFEST_LIST, OCI_INDEX

__all__ = [
    "ChildManifest",
    "ImageConfig",
    "Layer",
    "ManifestView",
    "Step",
    "parse_config",
    "parse_manifest",
    "platform_label",
    "with_commands",
]

INDEX_TYPES = frozenset({OCI_INDEX, DOCKER_MANIFEST_LIST})
MAX_TEXT = 4096


def _document(payload: bytes) -> dict[str, Any]:
    try:
        doc = json.loads(payload)
    except (ValueError, UnicodeDecodeError):
        return {}
    return doc if isinstance(doc, dict) else {}


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _text(value: Any) -> str:
    return value[:MAX_TEXT] if isinstance(value, str) else ""


def _size(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


def platform_label(platform: Any) -> str:
    """``linux/amd64``, ``linux/arm64/v8``; empty when unknown."""
    if not isinstance(platform, Mapping):
        return ""
    parts = [_text(platform.get(k)) for k in ("os", "architecture", "variant")]
    return "/".join(p for p in parts if p)


@dataclass(frozen=True, slots=True)
class Layer:
    digest: str
    size: int
    media_type: str
    created_by: str = ""


@dataclass(frozen=True, slots=True)
class ChildManifest:
    digest: str
    size: int
    media_type: str
    platform: str
    artifact_type: str = ""


@dataclass(frozen=True, slots=True)
class ManifestView:
    media_type: str
    is_index: bool
    config_digest: str | None
    config_size: int
    layers: tuple[Layer, ...]
    children: tuple[ChildManifest, ...]
    annotations: Mapping[str, str]

    @property
    def size(self) -> int:
        """What pulling downloads: the config and the layers (of an image)."""
        return self.config_size + sum(layer.size for layer in self.layers)


@dataclass(frozen=True, slots=True)
class Step:
    created_by: str
    empty_layer: bool
    created: str = ""


@dataclass(frozen=True, slots=True)
class ImageConfig:
    platform: str = ""
    created: str = ""
    labels: Mapping[str, str] = field(default_factory=dict)
    env: tuple[str, ...] = ()
    entrypoint: tuple[str, ...] = ()
    cmd: tuple[str, ...] = ()
    workdir: str = ""
    user: str = ""
    exposed_ports: tuple[str, ...] = ()
    history: tuple[Step, ...] = ()

    def commands(self, count: int) -> list[str]:
        """The command that created each of ``count`` layers, in order ("" when unknown)."""
        made = [step.created_by for step in self.history if not step.empty_layer]
        return [made[i] if i < len(made) else "" for i in range(count)]


def _strings(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        return (_text(value),)
    if isinstance(value, list):
        return tuple(_text(v) for v in value if isinstance(v, str))
    return ()


def _annotations(value: Any) -> dict[str, str]:
    if not isinstance(value, Mapping):
        return {}
    return {_text(k): _text(v) for k, v in value.items() if isinstance(v, str)}


def parse_manifest(media_type: str, payload: bytes) -> ManifestView:
    doc = _document(payload)
    declared = doc.get("mediaType")
    media_type = declared if isinstance(declared, str) and declared else media_type
    config = _mapping(doc.get("config"))
    layers = tuple(
        Layer(_text(d.get("digest")), _size(d.get("size")), _text(d.get("mediaType")))
        for d in doc.get("layers") or []
        if isinstance(d, Mapping)
    )
    children = tuple(
        ChildManifest(
            _text(d.get("digest")),
            _size(d.get("size")),
            _text(d.get("mediaType")),
            platform_label(d.get("platform")),
            _text(d.get("artifactType")),
        )
        for d in doc.get("manifests") or []
        if isinstance(d, Mapping)
    )
    return ManifestView(
        media_type=media_type,
        is_index=media_type in INDEX_TYPES or bool(children),
        config_digest=_text(config.get("digest")) or None,
        config_size=_size(config.get("size")),
        layers=layers,
        children=children,
        annotations=_annotations(doc.get("annotations")),
    )


def parse_config(payload: bytes) -> ImageConfig:
    doc = _document(payload)
    inner = _mapping(doc.get("config"))
    history = tuple(
        Step(
            created_by=_text(h.get("created_by")),
            empty_layer=h.get("empty_layer") is True,
            created=_text(h.get("created")),
        )
        for h in doc.get("history") or []
        if isinstance(h, Mapping)
    )
    ports = inner.get("ExposedPorts")
    return ImageConfig(
        platform=platform_label(doc),
        created=_text(doc.get("created")),
        labels=_annotations(inner.get("Labels")),
        env=_strings(inner.get("Env")),
        entrypoint=_strings(inner.get("Entrypoint")),
        cmd=_strings(inner.get("Cmd")),
        workdir=_text(inner.get("WorkingDir")),
        user=_text(inner.get("User")),
        exposed_ports=tuple(sorted(_text(p) for p in ports)) if isinstance(ports, Mapping) else (),
        history=history,
    )


def with_commands(layers: Sequence[Layer], config: ImageConfig | None) -> list[Layer]:
    """The layers, each with the command that created it."""
    if config is None:
        return list(layers)
    commands = config.commands(len(layers))
    return [
        Layer(layer.digest, layer.size, layer.media_type, command)
        for layer, command in zip(layers, commands, strict=True)
    ]
