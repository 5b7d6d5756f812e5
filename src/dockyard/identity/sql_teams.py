"""Teams of an organization on SQLAlchemy Core: the queries and transactions
:class:`dockyard.identity.sql.SqlIdentityStore` runs for them."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, delete, select
from sqlalchemy.engine import Connection

from dockyard.identity import sql_common
from dockyard.identity.base import AlreadyExists, NotFound
from dockyard.metadata.schema import organization_members, organizations, team_members, teams, users
from dockyard.metadata.sql_common import dialect_insert

__all__ = [
    "members_query",
    "teams_query",
    "tx_add_team_member",
    "tx_create_team",
    "tx_remove_team_member",
]


def teams_query(organization: str) -> Select[Any]:
    return (
        select(teams.c.name)
        .select_from(teams.join(organizations, organizations.c.id == teams.c.organization_id))
        .where(organizations.c.name == organization)
        .order_by(teams.c.name)
    )


def members_query(organization: str, team: str) -> Select[Any]:
    return (
        select(users.c.name)
        .select_from(
            team_members.join(users, users.c.id == team_members.c.user_id)
            .join(teams, teams.c.id == team_members.c.team_id)
            .join(organizations, organizations.c.id == teams.c.organization_id)
        )
        .where(organizations.c.name == organization, teams.c.name == team)
        .order_by(users.c.name)
    )


def tx_create_team(connection: Connection, organization: str, team: str) -> None:
    organization_id = sql_common.organization_id(connection, organization)
    created = connection.execute(
        dialect_insert(connection)(teams)
        .values(organization_id=organization_id, name=team)
        .on_conflict_do_nothing(index_elements=["organization_id", "name"])
        .returning(teams.c.id)
    ).first()
    if created is None:
        raise AlreadyExists(f"team {team!r} exists in organization {organization!r}")


def tx_add_team_member(connection: Connection, organization: str, team: str, user: str) -> None:
    team_id = sql_common.team_id(connection, organization, team)
    user_id = sql_common.user_id(connection, user)
    member = connection.execute(
        select(organization_members.c.role).where(
            organization_members.c.organization_id
            == sql_common.organization_id(connection, organization),
            organization_members.c.user_id == user_id,
        )
    ).first()
    if member is None:
        raise NotFound(f"{user!r} is not a member of organization {organization!r}")
    connection.execute(
        dialect_insert(connection)(team_members)
        .values(team_id=team_id, user_id=user_id)
        .on_conflict_do_nothing(index_elements=["team_id", "user_id"])
    )


def tx_remove_team_member(connection: Connection, organization: str, team: str, user: str) -> None:
    connection.execute(
        delete(team_members).where(
            team_members.c.team_id == sql_common.team_id(connection, organization, team),
            team_members.c.user_id == sql_common.user_id(connection, user),
        )
    )
