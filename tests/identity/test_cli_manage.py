"""The administrator commands over the management operations (``dockyard user show|disable|
enable|admin|password``, ``org``, ``team``, ``repo``, ``perm``) on the database a config
names, audited as ``cli``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dockyard.identity.base import AuditFilter, UserSubject
from identity.cli_site import ok, run, with_store, write_config


@pytest.fixture
def config(tmp_path: Path) -> Path:
    return write_config(tmp_path, "alice", "bob")


def test_users(config: Path) -> None:
    shown = json.loads(ok(config, "user", "show", "alice", "--json"))
    assert shown["name"] == "alice"
    assert shown["is_admin"] is False
    ok(config, "user", "admin", "alice")
    ok(config, "user", "disable", "bob")
    users = {u.name: u for u in with_store(config, lambda s: s.list_users())}
    assert users["alice"].is_admin
    assert users["bob"].disabled
    ok(config, "user", "enable", "bob")
    ok(config, "user", "password", "bob", "--password-stdin", stdin="new-pw\n")
    credentials = with_store(config, lambda s: s.credentials("bob"))
    assert credentials is not None
    assert not credentials.user.disabled
    from dockyard.identity.passwords import Passwords

    assert Passwords().verify(credentials.password_hash, "new-pw")
    missing = run(config, "user", "disable", "nobody")
    assert missing.exit_code == 1
    assert "no user 'nobody'" in missing.stderr


def test_organizations_teams_and_permissions(config: Path) -> None:
    ok(config, "org", "create", "acme", "--owner", "alice")
    ok(config, "org", "member", "acme", "bob")
    assert ok(config, "org", "members", "acme").splitlines() == ["alice\towner", "bob\tmember"]
    ok(config, "org", "default-permission", "acme", "read")
    assert "read" in ok(config, "org", "show", "acme")
    ok(config, "team", "create", "acme", "devs")
    ok(config, "team", "add", "acme", "devs", "bob")
    assert ok(config, "team", "list", "acme").splitlines() == ["acme\tdevs\tbob"]
    ok(config, "perm", "grant", "acme/**", "write", "--team", "acme/devs")
    ok(config, "perm", "grant", "acme/api", "admin", "--user", "bob")
    listed = json.loads(ok(config, "perm", "list", "--repository", "acme/api", "--json"))
    assert {(g["user"], g["team"], g["permission"]) for g in listed} == {
        (None, "acme/devs", "write"),
        ("bob", None, "admin"),
    }
    ok(config, "perm", "revoke", "acme/api", "--user", "bob")
    grants = with_store(config, lambda s: s.grants())
    assert UserSubject("bob") not in {g.subject for g in grants}
    both = run(config, "perm", "grant", "acme/x", "read", "--user", "bob", "--team", "acme/devs")
    assert both.exit_code == 1
    assert "exactly one of user and team" in both.stderr
    ok(config, "team", "remove", "acme", "devs", "bob")
    ok(config, "org", "remove-member", "acme", "bob")
    assert ok(config, "org", "members", "acme").splitlines() == ["alice\towner"]
    taken = run(config, "org", "create", "alice", "--owner", "bob")
    assert taken.exit_code == 1
    assert "taken" in taken.stderr
    events = with_store(config, lambda s: s.audit_page(AuditFilter(actor="cli"), limit=100))
    actions = [r.event.action for r in events]
    for action in ("organization.create", "team.member", "permission.grant", "permission.revoke"):
        assert action in actions
    listed = ok(config, "audit", "list", "--action", "team.create", "--actor", "cli")
    assert [line.split("\t")[-1] for line in listed.splitlines()] == ["team acme/devs"]
    exported = ok(config, "audit", "export", "--action", "permission.grant", "--until", "1h")
    assert exported == ""  # none older than an hour


def test_repositories(config: Path) -> None:
    made = json.loads(
        ok(config, "repo", "create", "alice/app", "--description", "the app", "--json")
    )
    assert made["visibility"] == "private"
    assert made["description"] == "the app"
    ok(config, "repo", "create", "nginx", "--visibility", "public")
    assert [line.split("\t")[0] for line in ok(config, "repo", "list").splitlines()] == [
        "alice/app",
        "nginx",
    ]
    assert ok(config, "repo", "list", "--namespace", "alice").startswith("alice/app\t")
    changed = json.loads(ok(config, "repo", "set", "alice/app", "--visibility", "public", "--json"))
    assert changed["visibility"] == "public"
    assert "deleted alice/app (0 manifest(s))" in ok(config, "repo", "delete", "alice/app", "--yes")
    gone = run(config, "repo", "show", "alice/app")
    assert gone.exit_code == 1
    assert "repository name not known" in gone.stderr
    bad = run(config, "repo", "create", "Bad Name")
    assert bad.exit_code == 1
    assert "invalid" in bad.stderr
