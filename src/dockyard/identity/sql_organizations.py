"""Organizations and their members on SQLAlchemy Core: the queries and transactions
:class:`dockyard.identity.sql.SqlIdentityStore` runs for them."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, delete, insert, select, update
from sqlalchemy.engine import Connection

from dockyard.identity import sql_common
from dockyard.identity.base import (
    NamespaceKind,
    NotFound,
    Organization,
    OrganizationMember,
    Permission,
    Role,
)
from dockyard.metadata.schema import organization_members, organizations, team_members, teams, users
from dockyard.metadata.sql_common import dialect_insert

__all__ = [
    "member",
    "members_query",
    "organization",
    "organization_query",
    "tx_create_organization",
    "tx_remove_member",
    "tx_set_default_permission",
    "tx_set_member",
]


def organization_query(name: str) -> Select[Any]:
    return select(
        organizations.c.name,
        organizations.c.default_permission,
        organizations.c.created_at,
    ).where(organizations.c.name == name)


def organization(row: Any) -> Organization:
    return Organization(
        name=row.name,
        default_permission=Permission.parse(row.default_permission),
        created_at=row.created_at,
    )


def members_query(organization: str) -> Select[Any]:
    return (
        select(users.c.name, organization_members.c.role)
        .select_from(
            organization_members.join(users, users.c.id == organization_members.c.user_id).join(
                organizations, organizations.c.id == organization_members.c.organization_id
            )
        )
        .where(organizations.c.name == organization)
        .order_by(users.c.name)
    )


def member(row: Any) -> OrganizationMember:
    return OrganizationMember(user=row.name, role=Role(row.role))


def tx_create_organization(
    connection: Connection, name: str, owner: str, default_permission: Permission
) -> Organization:
    owner_id = sql_common.user_id(connection, owner)
    now = sql_common.claim_namespace(connection, name, NamespaceKind.ORGANIZATION)
    organization_id = connection.execute(
        insert(organizations)
        .values(name=name, default_permission=default_permission.label, created_at=now)
        .returning(organizations.c.id)
    ).scalar_one()
    connection.execute(
        insert(organization_members).values(
            organization_id=organization_id, user_id=owner_id, role=Role.OWNER.value
        )
    )
    return Organization(name=name, default_permission=default_permission, created_at=now)


def tx_set_default_permission(
    connection: Connection, organization: str, permission: Permission
) -> None:
    result = connection.execute(
        update(organizations)
        .where(organizations.c.name == organization)
        .values(default_permission=permission.label)
    )
    if result.rowcount == 0:
        raise NotFound(f"no organization {organization!r}")


def tx_set_member(connection: Connection, organization: str, user: str, role: Role) -> None:
    organization_id = sql_common.organization_id(connection, organization)
    user_id = sql_common.user_id(connection, user)
    connection.execute(
        dialect_insert(connection)(organization_members)
        .values(organization_id=organization_id, user_id=user_id, role=role.value)
        .on_conflict_do_update(
            index_elements=["organization_id", "user_id"], set_={"role": role.value}
        )
    )


def tx_remove_member(connection: Connection, organization: str, user: str) -> None:
    organization_id = sql_common.organization_id(connection, organization)
    user_id = sql_common.user_id(connection, user)
    team_ids = select(teams.c.id).where(teams.c.organization_id == organization_id)
    # Leaving the organization means leaving its teams too.
    connection.execute(
        delete(team_members).where(
            team_members.c.user_id == user_id, team_members.c.team_id.in_(team_ids)
        )
    )
    connection.execute(
        delete(organization_members).where(
            organization_members.c.organization_id == organization_id,
            organization_members.c.user_id == user_id,
        )
    )
