"""The administrator commands over the management operations (``dockyard user show|disable|
enable|admin|password``, ``org``, ``team``, ``repo``, ``perm``) on the database a config
names, audited as ``cli``."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import pytest
import yaml
from click.testing import CliRunner, Result

from dockyard.cli import main
from dockyard.identity.base import AuditFilter, IdentityStore, UserSubject
from dockyard.identity.sql import SqlIdentityStore
from dockyard.metadata.engine import open_database

T = TypeVar("T")


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "config.yml"
    root = tmp_path / "data" / "registry"
    path.write_text(yaml.safe_dump({"storage": {"filesystem": {"rootdirectory": str(root)}}}))
    for name in ("alice", "bob"):
        result = CliRunner().invoke(
            main, ["user", "add", name, "--password-stdin", "-c", str(path)], input="pw\n"
        )
        assert result.exit_code == 0, result.output
    return path


def _store(config: Path, work: Callable[[IdentityStore], Awaitable[T]]) -> T:
    async def run() -> T:
        database = open_database(f"sqlite:///{config.parent / 'data' / 'registry' / 'dockyard.db'}")
        try:
            return await work(SqlIdentityStore(database))
        finally:
            await database.close()

    return asyncio.run(run())


def _run(config: Path, *args: str, stdin: str | None = None) -> Result:
    return CliRunner().invoke(main, [*args, "-c", str(config)], input=stdin)


def _ok(config: Path, *args: str, stdin: str | None = None) -> str:
    result = _run(config, *args, stdin=stdin)
    assert result.exit_code == 0, result.output
    return result.stdout


def test_users(config: Path) -> None:
    shown = json.loads(_ok(config, "user", "show", "alice", "--json"))
    assert shown["name"] == "alice"
    assert shown["is_admin"] is False
    _ok(config, "user", "admin", "alice")
    _ok(config, "user", "disable", "bob")
    users = {u.name: u for u in _store(config, lambda s: s.list_users())}
    assert users["alice"].is_admin
    assert users["bob"].disabled
    _ok(config, "user", "enable", "bob")
    _ok(config, "user", "password", "bob", "--password-stdin", stdin="new-pw\n")
    credentials = _store(config, lambda s: s.credentials("bob"))
    assert credentials is not None
    assert not credentials.user.disabled
    from dockyard.identity.passwords import Passwords

    assert Passwords().verify(credentials.password_hash, "new-pw")
    missing = _run(config, "user", "disable", "nobody")
    assert missing.exit_code == 1
    assert "no user 'nobody'" in missing.stderr


def test_organizations_teams_and_permissions(config: Path) -> None:
    _ok(config, "org", "create", "acme", "--owner", "alice")
    _ok(config, "org", "member", "acme", "bob")
    assert _ok(config, "org", "members", "acme").splitlines() == ["alice\towner", "bob\tmember"]
    _ok(config, "org", "default-permission", "acme", "read")
    assert "read" in _ok(config, "org", "show", "acme")
    _ok(config, "team", "create", "acme", "devs")
    _ok(config, "team", "add", "acme", "devs", "bob")
    assert _ok(config, "team", "list", "acme").splitlines() == ["acme\tdevs\tbob"]
    _ok(config, "perm", "grant", "acme/**", "write", "--team", "acme/devs")
    _ok(config, "perm", "grant", "acme/api", "admin", "--user", "bob")
    listed = json.loads(_ok(config, "perm", "list", "--repository", "acme/api", "--json"))
    assert {(g["user"], g["team"], g["permission"]) for g in listed} == {
        (None, "acme/devs", "write"),
        ("bob", None, "admin"),
    }
    _ok(config, "perm", "revoke", "acme/api", "--user", "bob")
    grants = _store(config, lambda s: s.grants())
    assert UserSubject("bob") not in {g.subject for g in grants}
    both = _run(config, "perm", "grant", "acme/x", "read", "--user", "bob", "--team", "acme/devs")
    assert both.exit_code == 1
    assert "exactly one of user and team" in both.stderr
    _ok(config, "team", "remove", "acme", "devs", "bob")
    _ok(config, "org", "remove-member", "acme", "bob")
    assert _ok(config, "org", "members", "acme").splitlines() == ["alice\towner"]
    taken = _run(config, "org", "create", "alice", "--owner", "bob")
    assert taken.exit_code == 1
    assert "taken" in taken.stderr
    events = _store(config, lambda s: s.audit_page(AuditFilter(actor="cli"), limit=100))
    actions = [r.event.action for r in events]
    for action in ("organization.create", "team.member", "permission.grant", "permission.revoke"):
        assert action in actions
    listed = _ok(config, "audit", "list", "--action", "team.create", "--actor", "cli")
    assert [line.split("\t")[-1] for line in listed.splitlines()] == ["team acme/devs"]
    exported = _ok(config, "audit", "export", "--action", "permission.grant", "--until", "1h")
    assert exported == ""  # none older than an hour


def test_repositories(config: Path) -> None:
    made = json.loads(
        _ok(config, "repo", "create", "alice/app", "--description", "the app", "--json")
    )
    assert made["visibility"] == "private"
    assert made["description"] == "the app"
    _ok(config, "repo", "create", "nginx", "--visibility", "public")
    assert [line.split("\t")[0] for line in _ok(config, "repo", "list").splitlines()] == [
        "alice/app",
        "nginx",
    ]
    assert _ok(config, "repo", "list", "--namespace", "alice").startswith("alice/app\t")
    changed = json.loads(
        _ok(config, "repo", "set", "alice/app", "--visibility", "public", "--json")
    )
    assert changed["visibility"] == "public"
    assert "deleted alice/app (0 manifest(s))" in _ok(
        config, "repo", "delete", "alice/app", "--yes"
    )
    gone = _run(config, "repo", "show", "alice/app")
    assert gone.exit_code == 1
    assert "repository name not known" in gone.stderr
    bad = _run(config, "repo", "create", "Bad Name")
    assert bad.exit_code == 1
    assert "invalid" in bad.stderr
