"""What the CLI tests share: a config whose data directory the commands create, accounts added
through ``dockyard user add``, runs of ``dockyard`` with it, and reads of its identity store."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import yaml
from click.testing import CliRunner, Result

from dockyard.cli import main
from dockyard.identity.base import IdentityStore
from dockyard.identity.sql import SqlIdentityStore
from dockyard.metadata.engine import open_database

T = TypeVar("T")


def write_config(tmp_path: Path, *users: str) -> Path:
    """A config under ``tmp_path`` (data in ``data/registry``, not made yet), with ``users``
    added, each with the password ``pw``."""
    path = tmp_path / "config.yml"
    root = tmp_path / "data" / "registry"
    path.write_text(yaml.safe_dump({"storage": {"filesystem": {"rootdirectory": str(root)}}}))
    for name in users:
        ok(path, "user", "add", name, "--password-stdin", stdin="pw\n")
    return path


def with_store(config: Path, work: Callable[[IdentityStore], Awaitable[T]]) -> T:
    """``work`` done on the identity store of ``config``'s database."""

    async def run() -> T:
        database = open_database(f"sqlite:///{config.parent / 'data' / 'registry' / 'dockyard.db'}")
        try:
            return await work(SqlIdentityStore(database))
        finally:
            await database.close()

    return asyncio.run(run())


def run(config: Path, *args: str, stdin: str | None = None) -> Result:
    return CliRunner().invoke(main, [*args, "-c", str(config)], input=stdin)


def ok(config: Path, *args: str, stdin: str | None = None) -> str:
    """The standard output of a command that must succeed."""
    result = run(config, *args, stdin=stdin)
    assert result.exit_code == 0, result.output
    return result.stdout
