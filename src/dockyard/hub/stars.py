"""Stars: a user marks a repository it may see; a repository's star count is how many did.

Starring is idempotent and so is taking a star back. Counts are only ever shown for
repositories the viewer may see (the caller filters them with the identity ``Authority``
first): a star never reveals that a private repository exists.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from sqlalchemy import delete, func, select
from sqlalchemy.engine import Connection

from dockyard.metadata.engine import Database
from dockyard.metadata.schema import stars, users
from dockyard.metadata.sql_common import dialect_insert

__all__ = ["Stars"]


def _user_id(connection: Connection, user: str) -> int | None:
    found = connection.execute(select(users.c.id).where(users.c.name == user)).scalar()
    return None if found is None else int(found)


def _tx_star(connection: Connection, user: str, repository: str) -> bool:
    user_id = _user_id(connection, user)
    if user_id is None:
        return False
    insert = dialect_insert(connection)
    connection.execute(
        insert(stars)
        .values(user_id=user_id, repository=repository, created_at=datetime.now(UTC))
        .on_conflict_do_nothing(index_elements=["user_id", "repository"])
    )
    return True


def _tx_unstar(connection: Connection, user: str, repository: str) -> None:
    user_id = _user_id(connection, user)
    if user_id is not None:
        connection.execute(
            delete(stars).where(stars.c.user_id == user_id, stars.c.repository == repository)
        )


def _tx_forget(connection: Connection, repository: str) -> int:
    return connection.execute(delete(stars).where(stars.c.repository == repository)).rowcount


class Stars:
    def __init__(self, database: Database) -> None:
        self.database = database

    async def star(self, user: str, repository: str) -> None:
        """``user`` stars ``repository`` (again: no change)."""
        await self.database.transaction(_tx_star, user, repository)

    async def unstar(self, user: str, repository: str) -> None:
        await self.database.transaction(_tx_unstar, user, repository)

    async def forget(self, repository: str) -> int:
        """Remove every star of a deleted repository; how many there were."""
        return await self.database.transaction(_tx_forget, repository)

    async def counts(self, repositories: Sequence[str]) -> dict[str, int]:
        """The star count of each of ``repositories`` (0 for those nobody starred)."""
        out = dict.fromkeys(repositories, 0)
        if not out:
            return out
        rows = await self.database.read(
            select(stars.c.repository, func.count().label("n"))
            .where(stars.c.repository.in_(list(out)))
            .group_by(stars.c.repository)
        )
        out.update({row.repository: int(row.n) for row in rows})
        return out

    async def starred(self, user: str, repositories: Sequence[str] | None = None) -> set[str]:
        """The repositories ``user`` starred (of ``repositories``, when given)."""
        query = (
            select(stars.c.repository)
            .select_from(stars.join(users, users.c.id == stars.c.user_id))
            .where(users.c.name == user)
        )
        if repositories is not None:
            if not repositories:
                return set()
            query = query.where(stars.c.repository.in_(list(set(repositories))))
        return {row[0] for row in await self.database.read(query)}

    async def most_starred(self, limit: int, after: int = 0) -> list[tuple[str, int]]:
        """(repository, count) by count then name, skipping the first ``after``."""
        count = func.count().label("n")
        rows = await self.database.read(
            select(stars.c.repository, count)
            .group_by(stars.c.repository)
            .order_by(count.desc(), stars.c.repository)
            .offset(max(after, 0))
            .limit(max(limit, 0))
        )
        return [(row.repository, int(row.n)) for row in rows]
