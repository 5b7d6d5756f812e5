"""Refresh tokens and personal access tokens on SQLAlchemy Core (only their hashes are
stored): the queries and transactions :class:`dockyard.identity.sql.SqlIdentityStore` runs for
them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Select, and_, delete, insert, or_, select, update
from sqlalchemy.engine import Connection

from dockyard.identity import sql_common
from dockyard.identity.base import AccessToken, AlreadyExists, NotFound, TokenScope
from dockyard.metadata.schema import access_tokens, refresh_tokens, users
from dockyard.metadata.sql_common import dialect_insert

__all__ = [
    "access_token",
    "parse_scopes",
    "refresh_token_user_query",
    "tokens_query",
    "tx_add_refresh_token",
    "tx_create_access_token",
    "tx_revoke_access_token",
    "tx_revoke_refresh_tokens",
    "tx_touch_access_token",
    "use_query",
]


# -- refresh tokens -----------------------------------------------------------------------------


def refresh_token_user_query(token_hash: str, service: str) -> Select[Any]:
    """The enabled user a refresh token for ``service`` was issued to."""
    return (
        select(users.c.name)
        .select_from(refresh_tokens.join(users, users.c.id == refresh_tokens.c.user_id))
        .where(
            and_(
                refresh_tokens.c.token_hash == token_hash,
                refresh_tokens.c.service == service,
                ~users.c.disabled,
            )
        )
    )


def tx_add_refresh_token(
    connection: Connection, token_hash: str, user: str, service: str, client_id: str
) -> None:
    connection.execute(
        insert(refresh_tokens).values(
            token_hash=token_hash,
            user_id=sql_common.user_id(connection, user),
            service=service,
            client_id=client_id,
            created_at=sql_common.now(),
        )
    )


def tx_revoke_refresh_tokens(connection: Connection, user: str) -> int:
    result = connection.execute(
        delete(refresh_tokens).where(
            refresh_tokens.c.user_id == sql_common.user_id(connection, user)
        )
    )
    return int(result.rowcount)


# -- access tokens ------------------------------------------------------------------------------


def _scopes_text(scopes: frozenset[TokenScope]) -> str:
    return ",".join(sorted(scope.value for scope in scopes))


def parse_scopes(text: str) -> frozenset[TokenScope]:
    return frozenset(TokenScope(part) for part in text.split(",") if part)


def access_token(user: str, row: Any) -> AccessToken:
    """A row of :func:`tokens_query` as ``user``'s token."""
    return AccessToken(
        user=user,
        name=row.name,
        scopes=parse_scopes(row.scopes),
        created_at=row.created_at,
        expires_at=row.expires_at,
        last_used_at=row.last_used_at,
    )


def tokens_query(user: str) -> Select[Any]:
    return (
        select(
            access_tokens.c.name,
            access_tokens.c.scopes,
            access_tokens.c.created_at,
            access_tokens.c.expires_at,
            access_tokens.c.last_used_at,
        )
        .select_from(access_tokens.join(users, users.c.id == access_tokens.c.user_id))
        .where(users.c.name == user)
        .order_by(access_tokens.c.name)
    )


def use_query(token_hash: str) -> Select[Any]:
    """The token with that hash, if its user is enabled."""
    return (
        select(
            access_tokens.c.id,
            access_tokens.c.name,
            access_tokens.c.scopes,
            access_tokens.c.expires_at,
            access_tokens.c.last_used_at,
            users.c.name.label("user"),
        )
        .select_from(access_tokens.join(users, users.c.id == access_tokens.c.user_id))
        .where(access_tokens.c.token_hash == token_hash, ~users.c.disabled)
    )


def tx_create_access_token(
    connection: Connection,
    user: str,
    name: str,
    token_hash: str,
    scopes: frozenset[TokenScope],
    expires_at: datetime | None,
) -> AccessToken:
    user_id = sql_common.user_id(connection, user)
    now = sql_common.now()
    created = connection.execute(
        dialect_insert(connection)(access_tokens)
        .values(
            user_id=user_id,
            name=name,
            token_hash=token_hash,
            scopes=_scopes_text(scopes),
            created_at=now,
            expires_at=expires_at,
        )
        .on_conflict_do_nothing(index_elements=["user_id", "name"])
        .returning(access_tokens.c.id)
    ).first()
    if created is None:
        raise AlreadyExists(f"user {user!r} has a token named {name!r}")
    return AccessToken(user, name, scopes, now, expires_at, None)


def tx_revoke_access_token(connection: Connection, user: str, name: str) -> None:
    result = connection.execute(
        delete(access_tokens).where(
            access_tokens.c.user_id == sql_common.user_id(connection, user),
            access_tokens.c.name == name,
        )
    )
    if result.rowcount == 0:
        raise NotFound(f"user {user!r} has no token named {name!r}")


def tx_touch_access_token(
    connection: Connection, token_id: int, now: datetime, stale: datetime
) -> None:
    # The condition again, so that of replicas racing only one writes.
    connection.execute(
        update(access_tokens)
        .where(
            access_tokens.c.id == token_id,
            or_(access_tokens.c.last_used_at.is_(None), access_tokens.c.last_used_at < stale),
        )
        .values(last_used_at=now)
    )
