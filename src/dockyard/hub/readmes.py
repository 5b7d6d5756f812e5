"""Repository READMEs: Markdown as the owner wrote it. Rendering (and sanitising) is the
page's business (``dockyard.ui.markdown``); nothing here trusts or changes the text."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import delete, select
from sqlalchemy.engine import Connection

from dockyard.errors import Denied
from dockyard.hub.management import Management
from dockyard.hub.models import ReadmeOut
from dockyard.metadata.engine import Database
from dockyard.metadata.schema import readmes
from dockyard.metadata.sql_common import dialect_insert

__all__ = ["MAX_README", "Readmes"]

MAX_README = 256 * 1024
"""Characters; a longer README is refused by the caller."""


def _tx_set(connection: Connection, repository: str, markdown: str) -> None:
    if not markdown.strip():
        connection.execute(delete(readmes).where(readmes.c.repository == repository))
        return
    insert = dialect_insert(connection)
    now = datetime.now(UTC)
    connection.execute(
        insert(readmes)
        .values(repository=repository, markdown=markdown, updated_at=now)
        .on_conflict_do_update(
            index_elements=["repository"], set_={"markdown": markdown, "updated_at": now}
        )
    )


class Readmes:
    def __init__(self, database: Database) -> None:
        self.database = database

    async def get(self, repository: str) -> str | None:
        rows = await self.database.read(
            select(readmes.c.markdown).where(readmes.c.repository == repository)
        )
        return rows[0].markdown if rows else None

    async def set(self, repository: str, markdown: str) -> None:
        """Replace the README; an empty one removes it."""
        if len(markdown) > MAX_README:
            raise ValueError(f"the README is longer than {MAX_README} characters")
        await self.database.transaction(_tx_set, repository, markdown)

    async def forget(self, repository: str) -> None:
        await self.database.transaction(_tx_set, repository, "")

    # What the pages and the management API call: the same visibility and permission rules
    # as the repository itself (one the actor may not see is answered as absent).
    async def read(self, manage: Management, repository: str) -> ReadmeOut:
        """The README of a repository ``manage``'s actor may see."""
        name = (await manage.get_repository(repository)).name
        rows = await self.database.read(
            select(readmes.c.markdown, readmes.c.updated_at).where(readmes.c.repository == name)
        )
        if not rows:
            return ReadmeOut(repository=name, markdown="", updated_at=None)
        return ReadmeOut(repository=name, markdown=rows[0].markdown, updated_at=rows[0].updated_at)

    async def write(self, manage: Management, repository: str, markdown: str) -> ReadmeOut:
        """Replace the README, as the repository's admins may (like its description)."""
        found = await manage.get_repository(repository)
        if found.permission != "admin":
            raise Denied(message=f"only admins of {found.name!r} may change its README")
        await self.set(found.name, markdown)
        return await self.read(manage, found.name)
