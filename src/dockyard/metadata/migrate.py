"""Schema migrations, run programmatically: no ``alembic.ini`` is needed at run time.

``upgrade`` is safe to call from every process at startup. The whole upgrade is one
transaction that first takes a lock held until commit (SQLite: ``BEGIN IMMEDIATE``, which
begins every write transaction and takes the database's own write lock; PostgreSQL: a
transaction-scoped advisory lock), so concurrent
callers run one after another and all but the first find the schema at head.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection

from dockyard.metadata.engine import open_database

__all__ = ["MIGRATIONS", "current_revision", "head_revision", "upgrade"]

MIGRATIONS = Path(__file__).with_name("migrations")

# Arbitrary, fixed key of the PostgreSQL advisory lock that serialises upgrades.
_ADVISORY_LOCK_KEY = 0x646F636B79617264  # "dockyard"


def _config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("path_separator", "os")
    return config


def head_revision() -> str | None:
    """The newest revision this code knows."""
    return ScriptDirectory.from_config(_config()).get_current_head()


def _upgrade(connection: Connection, revision: str) -> None:
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_ADVISORY_LOCK_KEY})")
    config = _config()
    config.attributes["connection"] = connection
    command.upgrade(config, revision)


def _current(connection: Connection) -> str | None:
    revision: str | None = MigrationContext.configure(connection).get_current_revision()
    return revision


async def upgrade(url: str, revision: str = "head") -> None:
    """Bring the schema of the database at ``url`` up to ``revision``."""
    # No limit per statement: rewriting a large table, or waiting for another process's
    # upgrade to finish, may take minutes.
    database = open_database(url, statement_timeout=None)
    try:
        await database.transaction(_upgrade, revision)
    finally:
        await database.close()


async def current_revision(url: str) -> str | None:
    """The revision the database at ``url`` is at; None before the first upgrade."""
    database = open_database(url)
    try:
        return await database.transaction(_current)
    finally:
        await database.close()
