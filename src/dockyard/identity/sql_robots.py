"""Robots (users an organization owns, named ``organization+name``) on SQLAlchemy Core: the
queries and transactions :class:`dockyard.identity.sql.SqlIdentityStore` runs for them."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, delete, insert, select
from sqlalchemy.engine import Connection

from dockyard.identity import sql_common, sql_users
from dockyard.identity.base import NamespaceKind, NotFound, User, robot_name
from dockyard.metadata.schema import namespaces, organizations, robots, users

__all__ = ["robots_query", "tx_create_robot", "tx_delete_robot"]


def robots_query(organization: str) -> Select[Any]:
    """The robots of ``organization``, as rows of :data:`dockyard.identity.sql_users.COLUMNS`."""
    return (
        select(*sql_users.COLUMNS)
        .select_from(
            users.join(robots, robots.c.user_id == users.c.id).join(
                organizations, organizations.c.id == robots.c.organization_id
            )
        )
        .where(organizations.c.name == organization)
        .order_by(users.c.name)
    )


def tx_create_robot(connection: Connection, organization: str, name: str) -> User:
    organization_id = sql_common.organization_id(connection, organization)
    full = robot_name(organization, name)
    now = sql_common.claim_namespace(connection, full, NamespaceKind.USER)
    user_id = connection.execute(
        insert(users)
        .values(name=full, password_hash=None, is_admin=False, disabled=False, created_at=now)
        .returning(users.c.id)
    ).scalar_one()
    connection.execute(insert(robots).values(user_id=user_id, organization_id=organization_id))
    return User(name=full, is_admin=False, disabled=False, created_at=now)


def tx_delete_robot(connection: Connection, organization: str, name: str) -> None:
    full = robot_name(organization, name)
    owned = connection.execute(
        select(users.c.id)
        .select_from(users.join(robots, robots.c.user_id == users.c.id))
        .where(
            users.c.name == full,
            robots.c.organization_id == sql_common.organization_id(connection, organization),
        )
    ).scalar()
    if owned is None:
        raise NotFound(f"organization {organization!r} has no robot {name!r}")
    # Tokens, memberships and grants go with the user (ON DELETE CASCADE).
    connection.execute(delete(users).where(users.c.id == owned))
    connection.execute(delete(namespaces).where(namespaces.c.name == full))
