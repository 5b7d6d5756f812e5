"""Immutable tags: rules that refuse moving or deleting a matching tag once it is set.

The refusal itself is a trigger on ``tags`` (migration 0007), so it holds in the transaction
that moves or deletes the tag, whatever code runs it and however pushes race: two first
pushes of one immutable tag cannot both win. Pushing the digest a tag already names again
changes nothing and is accepted. Deleting a manifest by digest deletes its tags, so that is
refused too while an immutable tag points at it. This module holds the rules' shape; the core
turns the trigger's error into :class:`~dockyard.errors.TagImmutable`
(``dockyard.core.refusals``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from dockyard.core.refusals import IMMUTABLE_MARKER, immutable_refusal
from dockyard.lifecycle.patterns import matches

__all__ = ["IMMUTABLE_MARKER", "ImmutableRule", "immutable_refusal"]


@dataclass(frozen=True, slots=True)
class ImmutableRule:
    id: int
    repository_pattern: str
    tag_pattern: str
    created_at: datetime

    def covers(self, repository: str, tag: str) -> bool:
        return matches(self.repository_pattern, repository) and matches(self.tag_pattern, tag)
