"""Manifests: pure parsing and validation, no I/O.

OCI image manifests and indexes (with the 1.1 ``subject`` and ``artifactType``), Docker schema2
manifests and manifest lists. :func:`parse` turns pushed bytes into a :class:`ParsedManifest`
naming everything the manifest references, or raises ``ManifestInvalid``.
"""

from .descriptor import Descriptor
from .parse import parse
from .parsed import ParsedManifest

__all__ = ["Descriptor", "ParsedManifest", "parse"]
