"""Who may do what to which repository on SQLAlchemy Core: permission grants (to users and
teams, on repository names or patterns) and repository visibility, the queries and
transactions :class:`dockyard.identity.sql.SqlIdentityStore` runs for them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Select, delete, select
from sqlalchemy.engine import Connection

from dockyard.identity import sql_common
from dockyard.identity.base import (
    Permission,
    PermissionGrant,
    Subject,
    TeamSubject,
    UserSubject,
    Visibility,
)
from dockyard.metadata.schema import (
    organizations,
    repository_settings,
    repository_team_permissions,
    repository_user_permissions,
    teams,
    users,
)
from dockyard.metadata.sql_common import dialect_insert

__all__ = [
    "BY_TEAM",
    "BY_USER",
    "order",
    "team_grant",
    "tx_claim_repository",
    "tx_grant",
    "tx_set_visibility",
    "user_grant",
    "visibilities_query",
]

BY_USER = select(
    repository_user_permissions.c.pattern,
    repository_user_permissions.c.permission,
    users.c.name,
).select_from(
    repository_user_permissions.join(users, users.c.id == repository_user_permissions.c.user_id)
)
BY_TEAM = select(
    repository_team_permissions.c.pattern,
    repository_team_permissions.c.permission,
    organizations.c.name.label("organization"),
    teams.c.name,
).select_from(
    repository_team_permissions.join(
        teams, teams.c.id == repository_team_permissions.c.team_id
    ).join(organizations, organizations.c.id == teams.c.organization_id)
)


def user_grant(row: Any) -> PermissionGrant:
    """A row of :data:`BY_USER` as a grant."""
    return PermissionGrant(row.pattern, UserSubject(row.name), Permission.parse(row.permission))


def team_grant(row: Any) -> PermissionGrant:
    """A row of :data:`BY_TEAM` as a grant."""
    return PermissionGrant(
        row.pattern,
        TeamSubject(row.organization, row.name),
        Permission.parse(row.permission),
    )


def order(grant: PermissionGrant) -> tuple[str, int, str, str]:
    """Grants in the order they are listed: by pattern, users before teams, by name."""
    subject = grant.subject
    if isinstance(subject, UserSubject):
        return (grant.pattern, 0, subject.name, "")
    return (grant.pattern, 1, subject.organization, subject.team)


def visibilities_query(repositories: Sequence[str]) -> Select[Any]:
    return select(repository_settings.c.repository, repository_settings.c.visibility).where(
        repository_settings.c.repository.in_(list(set(repositories)))
    )


def tx_grant(
    connection: Connection, pattern: str, subject: Subject, permission: Permission
) -> None:
    if isinstance(subject, UserSubject):
        table, column = repository_user_permissions, "user_id"
        subject_id = sql_common.user_id(connection, subject.name)
    else:
        table, column = repository_team_permissions, "team_id"
        subject_id = sql_common.team_id(connection, subject.organization, subject.team)
    if permission is Permission.NONE:
        connection.execute(
            delete(table).where(table.c.pattern == pattern, table.c[column] == subject_id)
        )
        return
    connection.execute(
        dialect_insert(connection)(table)
        .values(pattern=pattern, permission=permission.label, **{column: subject_id})
        .on_conflict_do_update(
            index_elements=["pattern", column], set_={"permission": permission.label}
        )
    )


def tx_set_visibility(connection: Connection, repository: str, visibility: Visibility) -> None:
    connection.execute(
        dialect_insert(connection)(repository_settings)
        .values(repository=repository, visibility=visibility.value, created_at=sql_common.now())
        .on_conflict_do_update(index_elements=["repository"], set_={"visibility": visibility.value})
    )


def tx_claim_repository(
    connection: Connection, repository: str, visibility: Visibility
) -> Visibility:
    connection.execute(
        dialect_insert(connection)(repository_settings)
        .values(repository=repository, visibility=visibility.value, created_at=sql_common.now())
        .on_conflict_do_nothing(index_elements=["repository"])
    )
    current = connection.execute(
        select(repository_settings.c.visibility).where(
            repository_settings.c.repository == repository
        )
    ).scalar_one()
    return Visibility(current)
