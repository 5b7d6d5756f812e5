"""Repository rows: created on first use by any writer (``ON CONFLICT DO NOTHING``, then read
back) and looked up by name."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import bindparam, select
from sqlalchemy.engine import Connection

from dockyard.metadata.schema import repositories
from dockyard.metadata.sql_common import ensure, key_share, per_dialect

if TYPE_CHECKING:
    from dockyard.metadata.sql_common import AnySelect

__all__ = [
    "REPOSITORY_ID",
    "REPOSITORY_ID_OF",
    "create_repository",
    "list_repositories_query",
    "lookup_repository",
]

REPOSITORY_ID = select(repositories.c.id).where(repositories.c.name == bindparam("name"))
_INSERT_REPOSITORY = per_dialect(
    lambda insert: (
        insert(repositories)
        .on_conflict_do_nothing(index_elements=["name"])
        .returning(repositories.c.id)
    )
)
_REPOSITORY_ID_KEY_SHARE = key_share(REPOSITORY_ID)
# A repository's id where a statement needs it, by name.
REPOSITORY_ID_OF = (
    select(repositories.c.id).where(repositories.c.name == bindparam("repository"))
).scalar_subquery()


def lookup_repository(conn: Connection, name: str) -> int | None:
    value: int | None = conn.execute(REPOSITORY_ID, {"name": name}).scalar_one_or_none()
    return value


def create_repository(conn: Connection, name: str) -> int:
    existing = lookup_repository(conn, name)
    if existing is not None:
        return existing
    key = {"name": name}
    created, _ = ensure(
        conn, _INSERT_REPOSITORY, key, _REPOSITORY_ID_KEY_SHARE, key, f"repository {name}"
    )
    assert isinstance(created, int)
    return created


def list_repositories_query(limit: int, last: str | None) -> AnySelect:
    """A page of repository names, in order, after ``last``."""
    query = select(repositories.c.name).order_by(repositories.c.name).limit(max(limit, 0))
    if last is not None:
        query = query.where(repositories.c.name > last)
    return query
