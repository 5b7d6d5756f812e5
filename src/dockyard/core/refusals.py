"""Refusals the metadata database makes by itself, turned into the client's errors.

An immutable tag (see ``dockyard.lifecycle.immutable``) is guarded by a trigger on ``tags``
(migration 0007), so the refusal comes out of whichever metadata write moves or deletes the
tag, as a database error carrying ``IMMUTABLE_MARKER``. The core owns turning it into
``TAG_IMMUTABLE``: the trigger refuses whether or not anything else is wired.
"""

from __future__ import annotations

from typing import Any

from dockyard.errors import TagImmutable

__all__ = ["IMMUTABLE_MARKER", "immutable_refusal"]

# The message the triggers raise (spelled the same in migration 0007).
IMMUTABLE_MARKER = "dockyard: TAG_IMMUTABLE"


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
