"""Repository READMEs: Markdown as the owner wrote it. Rendering (and sanitising) is the
page's business (``dockyard.ui.markdown``); nothing here trusts or changes the text."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from dockyard.metadata.engine import Database
from dockyard.metadata.schema import readmes

__all__ = ["MAX_README", "Readmes"]

MAX_README = 256 * 1024
"""Characters; a longer README is refused by the caller."""


def _tx_set(connection: Connection, repository: str, markdown: str) -> None:
    if not markdown.strip():
        connection.execute(delete(readmes).where(readmes.c.repository == repository))
        return
    insert = postgresql.insert if connection.dialect.name == "postgresql" else sqlite.insert
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
