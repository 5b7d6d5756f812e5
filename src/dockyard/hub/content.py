"""Removing a repository's content through the registry core, so that garbage collection
reclaims the bytes its manifests alone referenced."""

from __future__ import annotations

import contextlib
from typing import Protocol

from sqlalchemy import select

from dockyard.core.manifests import Manifests, Reference
from dockyard.core.policy import Policy
from dockyard.digest import Digest
from dockyard.errors import ManifestUnknown
from dockyard.metadata.engine import Database
from dockyard.metadata.schema import manifests, repositories

__all__ = ["CoreContent", "RepositoryContent"]


class RepositoryContent(Protocol):
    async def delete(self, repository: str) -> int:
        """Delete every manifest of ``repository`` (with its tags); how many there were."""
        ...


class CoreContent:
    """``RepositoryContent`` over the core's manifests and the metadata's database."""

    def __init__(self, database: Database, core: Manifests, policy: Policy) -> None:
        self._database = database
        self._core = core
        self._policy = policy

    async def delete(self, repository: str) -> int:
        rows = await self._database.read(
            select(manifests.c.digest)
            .select_from(
                manifests.join(repositories, repositories.c.id == manifests.c.repository_id)
            )
            .where(repositories.c.name == repository)
            .order_by(manifests.c.digest)
        )
        if rows:
            # Checked once up front: a registry that refuses deletes refuses this whole.
            self._policy.check_delete()
        deleted = 0
        for row in rows:
            # Gone already (a referrer removed with its subject) is fine.
            with contextlib.suppress(ManifestUnknown):
                await self._core.delete(repository, Reference(None, Digest.parse(row.digest)))
            deleted += 1
        return deleted
