"""Users on SQLAlchemy Core: their rows and the transactions
:class:`dockyard.identity.sql.SqlIdentityStore` runs for them."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, insert, update
from sqlalchemy.engine import Connection

from dockyard.identity import sql_common
from dockyard.identity.base import NamespaceKind, NotFound, User
from dockyard.metadata.schema import refresh_tokens, users

__all__ = ["COLUMNS", "tx_create_user", "tx_disable", "tx_update_user", "user"]

COLUMNS = (users.c.name, users.c.is_admin, users.c.disabled, users.c.created_at)


def user(row: Any) -> User:
    return User(
        name=row.name,
        is_admin=bool(row.is_admin),
        disabled=bool(row.disabled),
        created_at=row.created_at,
    )


def tx_create_user(
    connection: Connection, name: str, password_hash: str | None, is_admin: bool
) -> User:
    now = sql_common.claim_namespace(connection, name, NamespaceKind.USER)
    connection.execute(
        insert(users).values(
            name=name,
            password_hash=password_hash,
            is_admin=is_admin,
            disabled=False,
            created_at=now,
        )
    )
    return User(name=name, is_admin=is_admin, disabled=False, created_at=now)


def tx_update_user(connection: Connection, name: str, values: dict[str, Any]) -> None:
    result = connection.execute(update(users).where(users.c.name == name).values(**values))
    if result.rowcount == 0:
        raise NotFound(f"no user {name!r}")


def tx_disable(connection: Connection, name: str, disabled: bool) -> None:
    tx_update_user(connection, name, {"disabled": disabled})
    if disabled:
        connection.execute(
            delete(refresh_tokens).where(
                refresh_tokens.c.user_id == sql_common.user_id(connection, name)
            )
        )
