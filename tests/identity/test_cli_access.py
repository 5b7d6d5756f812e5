"""``dockyard token``, ``dockyard robot`` and ``dockyard audit`` on the database a config names."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from dockyard.identity.base import TokenScope
from dockyard.identity.tokens import secret_hash
from identity.cli_site import run, with_store, write_config


@pytest.fixture
def config(tmp_path: Path) -> Path:
    return write_config(tmp_path, "alice")


def test_token_create_list_revoke(config: Path) -> None:
    created = run(config, "token", "create", "alice", "--name", "ci", "--scope", "write")
    assert created.exit_code == 0, created.output
    secret = created.stdout.strip()
    assert secret.startswith("dyt_")
    assert "not shown again" in created.stderr
    used = with_store(config, lambda s: s.use_access_token(secret_hash(secret), datetime.now(UTC)))
    assert used is not None
    assert used.scopes == {TokenScope.WRITE}
    dated = run(
        config, "token", "create", "alice", "--name", "laptop", "--scope", "read",
        "--scope", "delete", "--expires", "30d",
    )  # fmt: skip
    assert dated.exit_code == 0, dated.output
    listed = run(config, "token", "list", "alice")
    rows = [line.split("\t") for line in listed.stdout.splitlines()]
    assert [(r[0], r[1]) for r in rows] == [("ci", "write"), ("laptop", "delete,read")]
    assert rows[0][3] == "-"
    assert rows[0][4] != "-"  # used above
    assert rows[1][4] == "-"
    expires = datetime.fromisoformat(rows[1][3])
    assert timedelta(days=29) < expires - datetime.now(UTC) <= timedelta(days=30)
    revoked = run(config, "token", "revoke", "alice", "ci")
    assert revoked.exit_code == 0, revoked.output
    assert [
        line.split("\t")[0] for line in run(config, "token", "list", "alice").stdout.splitlines()
    ] == ["laptop"]
    assert (
        with_store(config, lambda s: s.use_access_token(secret_hash(secret), datetime.now(UTC)))
        is None
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["token", "create", "ghost", "--name", "x", "--scope", "read"], "no user 'ghost'"),
        (["token", "create", "alice", "--name", "x", "--scope", "all"], "Invalid value"),
        (["token", "create", "alice", "--name", "x", "--scope", "read", "--expires", "1s"],
         "invalid lifetime"),
        (["token", "create", "alice", "--name", "X Y", "--scope", "read"], "invalid name"),
        (["token", "revoke", "alice", "nothing"], "no token named 'nothing'"),
        (["token", "list", "ghost"], "no user 'ghost'"),
        (["robot", "create", "nowhere", "ci"], "no organization 'nowhere'"),
        (["robot", "list", "nowhere"], "no organization 'nowhere'"),
        (["robot", "delete", "nowhere", "ci"], "no organization 'nowhere'"),
        (["audit", "list", "--since", "yesterday"], "invalid --since"),
    ],
)  # fmt: skip
def test_refusals(config: Path, args: list[str], message: str) -> None:
    result = run(config, *args)
    assert result.exit_code != 0
    assert message in result.output


def test_robot_create_list_delete(config: Path) -> None:
    with_store(config, lambda s: s.create_organization("acme", owner="alice"))
    created = run(config, "robot", "create", "acme", "ci")
    assert created.exit_code == 0, created.output
    secret = created.stdout.strip()
    used = with_store(config, lambda s: s.use_access_token(secret_hash(secret), datetime.now(UTC)))
    assert used is not None
    assert (used.user, used.scopes) == ("acme+ci", frozenset(TokenScope))
    again = run(config, "robot", "create", "acme", "ci")
    assert again.exit_code == 1
    assert "taken" in again.output
    assert [
        line.split("\t")[0] for line in run(config, "robot", "list", "acme").stdout.splitlines()
    ] == ["acme+ci"]
    deleted = run(config, "robot", "delete", "acme", "ci")
    assert deleted.exit_code == 0, deleted.output
    assert run(config, "robot", "list", "acme").stdout == ""
    assert (
        with_store(config, lambda s: s.use_access_token(secret_hash(secret), datetime.now(UTC)))
        is None
    )


def test_audit_list_and_export(config: Path) -> None:
    assert run(config, "token", "create", "alice", "--name", "ci", "--scope", "read").exit_code == 0
    assert run(config, "token", "revoke", "alice", "ci").exit_code == 0
    with_store(config, lambda s: s.create_user("bob", None))
    assert run(config, "token", "create", "bob", "--name", "x", "--scope", "read").exit_code == 0
    exported = run(config, "audit", "export")
    assert exported.exit_code == 0, exported.output
    records = [json.loads(line) for line in exported.stdout.splitlines()]
    assert [(r["actor"], r["action"], r["outcome"]) for r in records] == [
        ("alice", "token.create", "success"),
        ("alice", "token.revoke", "success"),
        ("bob", "token.create", "success"),
    ]
    assert set(records[0]) == {
        "time", "action", "outcome", "actor", "client_address", "repository", "digest", "tag",
        "detail",
    }  # fmt: skip
    assert records[0]["time"].endswith("Z")
    listed = run(config, "audit", "list", "--actor", "alice", "--since", "1h")
    assert [line.split("\t")[3] for line in listed.stdout.splitlines()] == [
        "token.create",
        "token.revoke",
    ]
    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    assert run(config, "audit", "list", "--since", future).stdout == ""
