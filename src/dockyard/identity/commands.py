"""What ``dockyard user ...`` does, on the database a config names (brought up to date first)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from dockyard.identity.base import IdentityStore, User
from dockyard.identity.passwords import Passwords
from dockyard.identity.sql import SqlIdentityStore
from dockyard.metadata.engine import open_database
from dockyard.metadata.migrate import upgrade

__all__ = ["add_user", "list_users"]

T = TypeVar("T")


async def _with_store(url: str, work: Callable[[IdentityStore], Awaitable[T]]) -> T:
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
