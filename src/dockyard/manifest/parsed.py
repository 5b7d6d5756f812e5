"""What the registry needs to know about a manifest, whatever its kind."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from .descriptor import FOREIGN_LAYER_TYPES, Descriptor

__all__ = ["ParsedManifest"]


@dataclass(frozen=True, slots=True)
class ParsedManifest:
    """A validated manifest: its effective media type and everything it references.

    ``artifact_type`` is what the referrers API reports: the manifest's ``artifactType``;
    else, for an image manifest, its config's media type; else ``None``.
    """

    media_type: str
    config: Descriptor | None
    layers: tuple[Descriptor, ...]
    manifests: tuple[Descriptor, ...]
    subject: Descriptor | None
    artifact_type: str | None
    annotations: Mapping[str, str]

    @property
    def blobs(self) -> tuple[str, ...]:
        """Digests that must exist as blobs in the repository: the config and the layers,
        except foreign (non-distributable) layers that say where to fetch them (``urls``)."""
        wanted = [] if self.config is None else [self.config.digest]
        wanted.extend(
            layer.digest
            for layer in self.layers
            if not (layer.urls and layer.media_type in FOREIGN_LAYER_TYPES)
        )
        return tuple(dict.fromkeys(wanted))

    @property
    def children(self) -> tuple[str, ...]:
        """Digests of the manifests an index or manifest list points at."""
        return tuple(dict.fromkeys(entry.digest for entry in self.manifests))
