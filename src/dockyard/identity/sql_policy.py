"""What the permission policy reads, on SQLAlchemy Core: a principal (admin flag,
organization roles, grants) and the namespaces repositories are in, for
:class:`dockyard.identity.sql.SqlIdentityStore`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Select, bindparam, select

from dockyard.identity.base import Namespace, NamespaceKind, Permission, Principal, Role
from dockyard.metadata.schema import (
    namespaces,
    organization_members,
    organizations,
    repository_team_permissions,
    repository_user_permissions,
    team_members,
    users,
)

__all__ = ["GRANTS", "PRINCIPAL", "ROLES", "namespace", "namespaces_query", "principal"]

# The statements read at every token request, built once (see metadata/sql_support.py on why).
PRINCIPAL = select(users.c.is_admin).where(users.c.name == bindparam("name"), ~users.c.disabled)
ROLES = (
    select(organizations.c.name, organization_members.c.role)
    .select_from(
        organization_members.join(
            organizations, organizations.c.id == organization_members.c.organization_id
        ).join(users, users.c.id == organization_members.c.user_id)
    )
    .where(users.c.name == bindparam("name"))
)
GRANTS = (
    select(repository_user_permissions.c.pattern, repository_user_permissions.c.permission)
    .select_from(
        repository_user_permissions.join(users, users.c.id == repository_user_permissions.c.user_id)
    )
    .where(users.c.name == bindparam("name"))
).union_all(
    select(repository_team_permissions.c.pattern, repository_team_permissions.c.permission)
    .select_from(
        repository_team_permissions.join(
            team_members, team_members.c.team_id == repository_team_permissions.c.team_id
        ).join(users, users.c.id == team_members.c.user_id)
    )
    .where(users.c.name == bindparam("name"))
)


def principal(user: str, found: Any, roles: Sequence[Any], grants: Sequence[Any]) -> Principal:
    """``user`` from its row of :data:`PRINCIPAL` and its rows of :data:`ROLES` and
    :data:`GRANTS`."""
    return Principal(
        name=user,
        is_admin=bool(found.is_admin),
        organizations={row.name: Role(row.role) for row in roles},
        grants=tuple(sorted((g.pattern, Permission.parse(g.permission)) for g in grants)),
    )


def namespaces_query(names: Sequence[str]) -> Select[Any]:
    return (
        select(namespaces.c.name, namespaces.c.kind, organizations.c.default_permission)
        .select_from(namespaces.outerjoin(organizations, organizations.c.name == namespaces.c.name))
        .where(namespaces.c.name.in_(list(set(names))))
    )


def namespace(row: Any) -> Namespace:
    return Namespace(
        name=row.name,
        kind=NamespaceKind(row.kind),
        default_permission=Permission.parse(row.default_permission or "none"),
    )
