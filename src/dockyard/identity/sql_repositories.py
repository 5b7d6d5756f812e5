"""The hub's repository settings (visibility, description) on SQLAlchemy Core: the
transactions :class:`dockyard.identity.sql.SqlIdentityStore` runs for them."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.engine import Connection

from dockyard.identity import sql_common
from dockyard.identity.base import AlreadyExists, NotFound, RepositorySettings, Visibility
from dockyard.metadata.schema import (
    repository_settings,
    repository_team_permissions,
    repository_user_permissions,
)
from dockyard.metadata.sql_common import dialect_insert

__all__ = [
    "COLUMNS",
    "read",
    "settings",
    "tx_create_repository",
    "tx_forget_repository",
    "tx_update_repository",
]

COLUMNS = (
    repository_settings.c.repository,
    repository_settings.c.visibility,
    repository_settings.c.description,
    repository_settings.c.created_at,
)


def settings(row: Any) -> RepositorySettings:
    return RepositorySettings(
        name=row.repository,
        visibility=Visibility(row.visibility),
        description=row.description,
        created_at=row.created_at,
    )


def read(connection: Connection, repository: str) -> RepositorySettings | None:
    row = connection.execute(
        select(*COLUMNS).where(repository_settings.c.repository == repository)
    ).first()
    return settings(row) if row is not None else None


def tx_create_repository(
    connection: Connection, repository: str, visibility: Visibility, description: str | None
) -> RepositorySettings:
    now = sql_common.now()
    # ON CONFLICT: a push or another replica may create it at the same moment.
    created = connection.execute(
        dialect_insert(connection)(repository_settings)
        .values(
            repository=repository,
            visibility=visibility.value,
            description=description or None,
            created_at=now,
        )
        .on_conflict_do_nothing(index_elements=["repository"])
        .returning(repository_settings.c.repository)
    ).first()
    if created is None:
        raise AlreadyExists(f"repository {repository!r} exists")
    return RepositorySettings(repository, visibility, description or None, now)


def tx_update_repository(
    connection: Connection,
    repository: str,
    visibility: Visibility | None,
    description: str | None,
) -> RepositorySettings:
    values: dict[str, Any] = {}
    if visibility is not None:
        values["visibility"] = visibility.value
    if description is not None:
        values["description"] = description or None
    if values:
        connection.execute(
            update(repository_settings)
            .where(repository_settings.c.repository == repository)
            .values(**values)
        )
    found = read(connection, repository)
    if found is None:
        raise NotFound(f"no repository {repository!r}")
    return found


def tx_forget_repository(connection: Connection, repository: str) -> None:
    connection.execute(
        delete(repository_settings).where(repository_settings.c.repository == repository)
    )
    for table in (repository_user_permissions, repository_team_permissions):
        connection.execute(delete(table).where(table.c.pattern == repository))
