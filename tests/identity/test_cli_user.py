"""``dockyard user add`` and ``dockyard user list`` on the database a config names."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from dockyard.cli import main
from dockyard.identity.passwords import Passwords
from dockyard.identity.sql import SqlIdentityStore
from dockyard.metadata.engine import open_database


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "config.yml"
    # The data directory does not exist yet: the command creates it.
    root = tmp_path / "data" / "registry"
    path.write_text(yaml.safe_dump({"storage": {"filesystem": {"rootdirectory": str(root)}}}))
    return path


def _hash(config: Path, name: str) -> str | None:
    async def read() -> str | None:
        database = open_database(f"sqlite:///{config.parent / 'data' / 'registry' / 'dockyard.db'}")
        try:
            credentials = await SqlIdentityStore(database).credentials(name)
            return credentials.password_hash if credentials else None
        finally:
            await database.close()

    return asyncio.run(read())


def test_add_and_list(config: Path) -> None:
    runner = CliRunner()
    added = runner.invoke(
        main, ["user", "add", "alice", "--password-stdin", "-c", str(config)], input="s3cret\n"
    )
    assert added.exit_code == 0, added.output
    assert "created user alice" in added.output
    admin = runner.invoke(
        main,
        ["user", "add", "root", "--admin", "--password-stdin"],
        input="toor\n",
        env={"DOCKYARD_CONFIG": str(config)},
    )
    assert admin.exit_code == 0, admin.output
    assert "created admin user root" in admin.output
    listed = runner.invoke(main, ["user", "list", "-c", str(config)])
    assert listed.exit_code == 0, listed.output
    lines = [line.split("\t") for line in listed.output.splitlines()]
    assert [(line[0], line[1]) for line in lines] == [("alice", "-"), ("root", "admin")]
    stored = _hash(config, "alice")
    assert stored is not None
    assert stored.startswith("$argon2id$")
    assert Passwords().verify(stored, "s3cret")


def test_password_prompt_asks_twice(config: Path) -> None:
    result = CliRunner().invoke(main, ["user", "add", "bob", "-c", str(config)], input="pw\npw\n")
    assert result.exit_code == 0, result.output
    assert Passwords().verify(_hash(config, "bob"), "pw")


@pytest.mark.parametrize(
    ("name", "password", "message"),
    [
        ("alice", "other", "taken"),
        ("Alice", "pw", "invalid name"),
        ("carol", "", "must not be empty"),
    ],
)
def test_refusals(config: Path, name: str, password: str, message: str) -> None:
    runner = CliRunner()
    first = runner.invoke(
        main, ["user", "add", "alice", "--password-stdin", "-c", str(config)], input="pw\n"
    )
    assert first.exit_code == 0
    result = runner.invoke(
        main, ["user", "add", name, "--password-stdin", "-c", str(config)], input=password + "\n"
    )
    assert result.exit_code == 1
    assert message in result.output
    assert _hash(config, name) is None or name == "alice"
    assert Passwords().verify(_hash(config, "alice"), "pw")


def test_bad_database_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "config.yml"
    path.write_text(yaml.safe_dump({"database": {"url": "sqlite:////nonexistent/dir/x.db"}}))
    result = CliRunner().invoke(main, ["user", "list", "-c", str(path)])
    assert result.exit_code == 1
    assert result.output.startswith("dockyard: database: ")
