"""Immutable tags: rules that refuse moving or deleting a matching tag once it is set.

The refusal itself is a trigger on ``tags`` (migration 0007), so it holds in the transaction
that moves or deletes the tag, whatever code runs it and however pushes race: two first
pushes of one immutable tag cannot both win. Pushing the digest a tag already names again
changes nothing and is accepted. Deleting a manifest by digest deletes its tags, so that is
refused too while an immutable tag points at it. This module holds the rules' shape and turns
the trigger's error into :class:`~dockyard.errors.TagImmutable`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from dockyard.errors import TagImmutable
from dockyard.lifecycle.patterns import matches

__all__ = ["IMMUTABLE_MARKER", "ImmutableRule", "immutable_refusal"]

# The message the triggers raise (spelled the same in migration 0007).
IMMUTABLE_MARKER = "dockyard: TAG_IMMUTABLE"


@dataclass(frozen=True, slots=True)
class ImmutableRule:
    id: int
    repository_pattern: str
    tag_pattern: str
    created_at: datetime

    def covers(self, repository: str, tag: str) -> bool:
        return matches(self.repository_pattern, repository) and matches(self.tag_pattern, tag)


def immutable_refusal(error: BaseException, **detail: Any) -> TagImmutable | None:
    """The client's error when ``error`` (from the metadata store) is the trigger's refusal;
    None otherwise."""
    seen: BaseException | None = error
    while seen is not None:
        if IMMUTABLE_MARKER in str(seen):
            message = "tag is immutable: it may not be moved or deleted"
            if "digest" in detail:
                message = "manifest is referenced by an immutable tag and may not be deleted"
            return TagImmutable(
                detail={k: v for k, v in detail.items() if v is not None}, message=message
            )
        seen = seen.__cause__ or seen.__context__
    return None
