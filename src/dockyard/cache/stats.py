"""How often a cache answers: the ``CacheStats`` seam a cache's user reports each lookup to.

A lookup is one question to the cache about one entry (a tag, a manifest, a blob...): a hit
when the cache's answer was used, a miss when the source of truth had to be asked, whether the
entry was absent, stale, or the cache unreachable.
"""

from __future__ import annotations

from typing import Protocol

__all__ = ["CacheStats", "NoStats"]


class CacheStats(Protocol):
    def lookup(self, kind: str, hit: bool) -> None:
        """One lookup of an entry of ``kind`` (``tag``, ``manifest``...)."""
        ...


class NoStats:
    """Counts nothing: the default when metrics are off."""

    def lookup(self, kind: str, hit: bool) -> None:
        pass
