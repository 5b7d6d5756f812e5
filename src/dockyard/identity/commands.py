"""What ``dockyard user|token|robot|audit ...`` do, on the database a config names (brought
up to date first)."""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from dockyard.identity.base import (
    AccessToken,
    AuditEvent,
    AuditFilter,
    IdentityStore,
    NotFound,
    TokenScope,
    User,
    robot_name,
)
from dockyard.identity.passwords import Passwords
from dockyard.identity.sql import SqlIdentityStore
from dockyard.identity.tokens import new_secret, secret_hash
from dockyard.metadata.engine import open_database

__all__ = [
    "ROBOT_TOKEN",
    "add_user",
    "audit_events",
    "audit_record",
    "create_robot",
    "create_token",
    "delete_robot",
    "filtered_audit_events",
    "list_robots",
    "list_tokens",
    "list_users",
    "revoke_token",
]

T = TypeVar("T")


async def _with_store(url: str, work: Callable[[IdentityStore], Awaitable[T]]) -> T:
    # Imported here: the server imports this module too, and never migrates from it.
    from dockyard.metadata.migrate import upgrade

    await upgrade(url)
    database = open_database(url)
    try:
        return await work(SqlIdentityStore(database))
    finally:
        await database.close()


async def add_user(url: str, name: str, password: str, *, is_admin: bool = False) -> User:
    """Create a user with ``password``; ``AlreadyExists`` or ``InvalidName`` if it cannot."""
    password_hash = Passwords().hash(password)
    return await _with_store(
        url, lambda store: store.create_user(name, password_hash, is_admin=is_admin)
    )


async def list_users(url: str) -> list[User]:
    return await _with_store(url, lambda store: store.list_users())


async def _audit(store: IdentityStore, action: str, actor: str, detail: str) -> None:
    await store.add_audit_event(
        AuditEvent(datetime.now(UTC), action, "success", actor=actor, detail=detail)
    )


# -- access tokens ------------------------------------------------------------------------------


async def create_token(
    url: str,
    user: str,
    name: str,
    scopes: frozenset[TokenScope],
    lifetime: timedelta | None = None,
) -> tuple[AccessToken, str]:
    """A new token of ``user`` and its secret, which is shown once and never stored."""
    secret = new_secret()
    expires = datetime.now(UTC).replace(microsecond=0) + lifetime if lifetime else None

    async def work(store: IdentityStore) -> AccessToken:
        created = await store.create_access_token(user, name, secret_hash(secret), scopes, expires)
        await _audit(store, "token.create", user, f"token {name} ({_scopes(scopes)})")
        return created

    return await _with_store(url, work), secret


async def list_tokens(url: str, user: str) -> list[AccessToken]:
    async def work(store: IdentityStore) -> list[AccessToken]:
        if await store.get_user(user) is None:
            raise NotFound(f"no user {user!r}")
        return await store.access_tokens(user)

    return await _with_store(url, work)


async def revoke_token(url: str, user: str, name: str) -> None:
    async def work(store: IdentityStore) -> None:
        await store.revoke_access_token(user, name)
        await _audit(store, "token.revoke", user, f"token {name}")

    await _with_store(url, work)


def _scopes(scopes: frozenset[TokenScope]) -> str:
    return ",".join(sorted(scope.value for scope in scopes))


# -- robots -------------------------------------------------------------------------------------

# The name of a robot's one token (the management API's robots use it too).
ROBOT_TOKEN = "default"


async def create_robot(url: str, organization: str, name: str) -> tuple[User, str]:
    """A new robot of ``organization`` and the secret of its token (all scopes, no expiry:
    what it may do is what it is granted)."""
    secret = new_secret()

    async def work(store: IdentityStore) -> User:
        robot = await store.create_robot(organization, name)
        try:
            await store.create_access_token(
                robot.name, ROBOT_TOKEN, secret_hash(secret), frozenset(TokenScope), None
            )
        except BaseException:
            await store.delete_robot(organization, name)
            raise
        await _audit(store, "robot.create", robot.name, f"organization {organization}")
        return robot

    return await _with_store(url, work), secret


async def list_robots(url: str, organization: str) -> list[User]:
    async def work(store: IdentityStore) -> list[User]:
        if await store.get_organization(organization) is None:
            raise NotFound(f"no organization {organization!r}")
        return await store.robots(organization)

    return await _with_store(url, work)


async def delete_robot(url: str, organization: str, name: str) -> None:
    async def work(store: IdentityStore) -> None:
        await store.delete_robot(organization, name)
        await _audit(
            store, "robot.delete", robot_name(organization, name), f"organization {organization}"
        )

    await _with_store(url, work)


# -- audit --------------------------------------------------------------------------------------


async def audit_events(
    url: str, *, since: datetime | None = None, actor: str | None = None
) -> list[AuditEvent]:
    return await _with_store(url, lambda store: store.audit_events(since=since, actor=actor))


async def filtered_audit_events(url: str, where: AuditFilter) -> list[AuditEvent]:
    """Every event ``where`` selects, oldest first, read a page at a time."""

    async def work(store: IdentityStore) -> list[AuditEvent]:
        events: list[AuditEvent] = []
        after: int | None = None
        while True:
            page = await store.audit_page(where, after=after, limit=AUDIT_PAGE)
            events += [record.event for record in page]
            if len(page) < AUDIT_PAGE:
                return events
            after = page[-1].id

    return await _with_store(url, work)


AUDIT_PAGE = 1000


def audit_record(event: AuditEvent) -> dict[str, str | None]:
    """An event as one JSON object: every field, the time in ISO 8601 UTC."""
    record: dict[str, str | None] = {"time": event.time.isoformat().replace("+00:00", "Z")}
    for field in dataclasses.fields(event):
        if field.name != "time":
            record[field.name] = getattr(event, field.name)
    return record
