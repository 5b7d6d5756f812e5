"""What the identity store's transactions share: the clock, looking up ids by name, and
claiming a name in ``namespaces``."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.engine import Connection

from dockyard.identity.base import AlreadyExists, NamespaceKind, NotFound
from dockyard.metadata.schema import namespaces, organizations, teams, users
from dockyard.metadata.sql_common import dialect_insert

__all__ = ["claim_namespace", "now", "organization_id", "team_id", "user_id"]


def now() -> datetime:
    return datetime.now(UTC)


def user_id(connection: Connection, name: str) -> int:
    found = connection.execute(select(users.c.id).where(users.c.name == name)).scalar()
    if found is None:
        raise NotFound(f"no user {name!r}")
    return int(found)


def organization_id(connection: Connection, name: str) -> int:
    found = connection.execute(
        select(organizations.c.id).where(organizations.c.name == name)
    ).scalar()
    if found is None:
        raise NotFound(f"no organization {name!r}")
    return int(found)


def team_id(connection: Connection, organization: str, team: str) -> int:
    found = connection.execute(
        select(teams.c.id).where(
            teams.c.organization_id == organization_id(connection, organization),
            teams.c.name == team,
        )
    ).scalar()
    if found is None:
        raise NotFound(f"no team {team!r} in organization {organization!r}")
    return int(found)


def claim_namespace(connection: Connection, name: str, kind: NamespaceKind) -> datetime:
    """Claims ``name`` for a user or an organization, when it was claimed; ``AlreadyExists``
    when either has it (``ON CONFLICT DO NOTHING``, so that of two replicas only one wins)."""
    claimed_at = now()
    claimed = connection.execute(
        dialect_insert(connection)(namespaces)
        .values(name=name, kind=kind.value, created_at=claimed_at)
        .on_conflict_do_nothing(index_elements=["name"])
        .returning(namespaces.c.name)
    ).first()
    if claimed is None:
        raise AlreadyExists(f"the name {name!r} is taken by a user or an organization")
    return claimed_at
