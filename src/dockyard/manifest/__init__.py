"""Manifests: pure parsing and validation, no I/O.

OCI image manifests and indexes (with the 1.1 ``subject`` and ``artifactType``), Docker schema2
manifests and manifest lists. :func:`parse` turns pushed bytes into a :class:`ParsedManifest`
naming everything the manifest references, or raises ``ManifestInvalid``, and nothing else:
a malformed or unsupported descriptor digest is a ``ManifestInvalid`` naming the field
(``layers[1].digest``), not ``DigestInvalid``. A refusal about one field carries
``detail={"field": path}``.
"""

from .descriptor import Descriptor
from .parse import parse
from .parsed import ParsedManifest

__all__ = ["Descriptor", "ParsedManifest", "parse"]
