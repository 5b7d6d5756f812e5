"""Async engines from database URLs.

``sqlite:///relative/path`` and ``sqlite:////absolute/path`` use SQLite through aiosqlite;
``postgresql://user:password@host:port/database`` (or ``postgres://``) uses PostgreSQL
through asyncpg.
"""

from __future__ import annotations

from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from dockyard.metadata.sqlite import create_sqlite_engine

__all__ = ["create_engine"]


def create_engine(url: str) -> AsyncEngine:
    """An async engine for ``url``, configured for concurrent use by many processes."""
    parsed = make_url(url.replace("postgres://", "postgresql://", 1))
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return create_sqlite_engine(url)
    if backend == "postgresql":
        # Connections may be cut by the network, a proxy or a database restart.
        return create_async_engine(parsed.set(drivername="postgresql+asyncpg"), pool_pre_ping=True)
    raise ValueError(f"unsupported metadata database URL scheme: {parsed.drivername}")
