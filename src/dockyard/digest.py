"""Content digests (``algorithm:encoded``) as the OCI image spec defines them. Pure, no I/O."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from dockyard.errors import DigestInvalid

__all__ = ["ALGORITHMS", "Digest", "compute"]

_ALGORITHM_COMPONENT = r"[a-z0-9]+"
_ALGORITHM_SEPARATOR = r"[+._-]"
_ALGORITHM = rf"{_ALGORITHM_COMPONENT}(?:{_ALGORITHM_SEPARATOR}{_ALGORITHM_COMPONENT})*"
_ENCODED = r"[a-zA-Z0-9=_-]+"
_DIGEST = re.compile(rf"(?P<algorithm>{_ALGORITHM}):(?P<encoded>{_ENCODED})")

# Registered algorithms and the exact form of their encoded part.
ALGORITHMS: dict[str, re.Pattern[str]] = {
    "sha256": re.compile(r"[a-f0-9]{64}"),
    "sha512": re.compile(r"[a-f0-9]{128}"),
}


@dataclass(frozen=True, slots=True)
class Digest:
    algorithm: str
    encoded: str

    @classmethod
    def parse(cls, text: str) -> Digest:
        """Parse and validate; raise ``DigestInvalid`` for anything malformed or unknown."""
        match = _DIGEST.fullmatch(text)
        if match is None:
            raise DigestInvalid(message=f"invalid digest: {text[:200]!r}")
        algorithm, encoded = match["algorithm"], match["encoded"]
        pattern = ALGORITHMS.get(algorithm)
        if pattern is None:
            raise DigestInvalid(message=f"unsupported digest algorithm: {algorithm}")
        if pattern.fullmatch(encoded) is None:
            raise DigestInvalid(message=f"invalid {algorithm} digest: {text[:200]!r}")
        return cls(algorithm, encoded)

    def __str__(self) -> str:
        return f"{self.algorithm}:{self.encoded}"


def compute(data: bytes, algorithm: str = "sha256") -> Digest:
    """Digest of bytes held in memory (manifests; never blobs)."""
    return Digest(algorithm, hashlib.new(algorithm, data).hexdigest())
