"""LDAP logins through the built-in token server (no HTTP), on a real slapd and a real
SQLite identity store: the local accounts they make, the teams their groups give, what
local accounts keep, rate limits, the audit log, and a directory that is down."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from auth.builtin_setup import Builtin, access_of, builtin, write_key
from auth.slapd import DEVELOPERS, PASSWORDS, PEOPLE, READERS, Slapd, ldap_options, slapd_server
from dockyard.auth.base import Access
from dockyard.auth.issuer import BadCredentials
from dockyard.errors import Unavailable
from dockyard.identity.base import Permission, Role, TeamSubject
from dockyard.identity.external import EXTERNAL_PASSWORD


@pytest.fixture(scope="module")
def slapd(
    tmp_path_factory: pytest.TempPathFactory, unused_tcp_port_factory: Callable[[], int]
) -> Iterator[Slapd]:
    yield from slapd_server(tmp_path_factory.mktemp("slapd"), unused_tcp_port_factory)


def ldap_params(slapd: Slapd, **overrides: Any) -> dict[str, Any]:
    groups = {DEVELOPERS: "acme/developers", READERS: "acme/readers"}
    return ldap_options(slapd, **{"groups": groups, **overrides})


@pytest.fixture
async def site(tmp_path: Path, slapd: Slapd) -> AsyncIterator[Builtin]:
    params = {
        "signingkeys": [str(write_key(tmp_path / "key.pem"))],
        "maxfailuresperaccount": 3,
        "ldap": ldap_params(slapd),
    }
    async with builtin(tmp_path, params) as made:
        # A local user, a local administrator owning acme, and the team that may push.
        await made.add_user("root", "toor", is_admin=True)
        await made.add_user("bob", "local-bob")
        await made.store.create_organization("acme", owner="root")
        await made.store.create_team("acme", "developers")
        await made.store.grant("acme/*", TeamSubject("acme", "developers"), Permission.WRITE)
        yield made


async def test_first_login_creates_a_local_account_marked_as_the_directorys(
    site: Builtin,
) -> None:
    assert await site.store.get_user("carol") is None
    login = await site.issuer.authenticate("carol", PASSWORDS["Carol"], "10.0.0.1")
    # The directory spells it Carol; names here are lower-case.
    assert login.subject == "carol"
    credentials = await site.store.credentials("carol")
    assert credentials is not None
    assert credentials.password_hash == EXTERNAL_PASSWORD
    assert not credentials.user.is_admin
    # The account has no local password: the marker is no hash that any password matches.
    site.issuer.directory = None
    with pytest.raises(BadCredentials):
        await site.issuer.login("carol", EXTERNAL_PASSWORD)


async def test_groups_give_teams_and_teams_give_push(site: Builtin, slapd: Slapd) -> None:
    login = await site.issuer.authenticate("carol", PASSWORDS["Carol"], "10.0.0.1")
    assert await site.store.team_members("acme", "developers") == ["carol"]
    principal = await site.store.principal("carol")
    assert principal is not None
    assert principal.organizations == {"acme": Role.MEMBER}
    issued = await site.issuer.issue(login.subject, [Access.repository("acme/app", "pull", "push")])
    assert access_of(issued.token) == {("repository", "acme/app"): ["pull", "push"]}
    # Another directory user, not in the group, gets nothing there.
    await site.issuer.authenticate("dave", PASSWORDS["dave"], "10.0.0.1")
    issued = await site.issuer.issue("dave", [Access.repository("acme/app", "pull", "push")])
    assert access_of(issued.token) == {("repository", "acme/app"): []}
    # A team the map names but that did not exist is created for its first member.
    assert await site.store.team_members("acme", "readers") == ["dave"]


async def test_leaving_the_group_leaves_the_team_at_the_next_login(
    site: Builtin, slapd: Slapd
) -> None:
    carol = f"uid=Carol,{PEOPLE}"
    await site.issuer.authenticate("carol", PASSWORDS["Carol"], "10.0.0.1")
    assert "carol" in await site.store.team_members("acme", "developers")
    slapd.set_members(DEVELOPERS, [f"uid=dave,{PEOPLE}"])
    try:
        await site.issuer.authenticate("carol", PASSWORDS["Carol"], "10.0.0.1")
        assert await site.store.team_members("acme", "developers") == []
        issued = await site.issuer.issue("carol", [Access.repository("acme/app", "push")])
        assert access_of(issued.token) == {("repository", "acme/app"): []}
        events = [e for e in await site.store.audit_events() if e.action == "team.member"]
        assert [e.detail for e in events] == [
            "added to acme/developers by its directory groups",
            "removed from acme/developers by its directory groups",
        ]
    finally:
        slapd.set_members(DEVELOPERS, [carol])


async def test_a_local_account_is_never_taken_over(site: Builtin) -> None:
    # bob exists locally and in the directory, with different passwords.
    with pytest.raises(BadCredentials):
        await site.issuer.authenticate("bob", PASSWORDS["bob"], "10.0.0.1")
    assert (await site.issuer.authenticate("bob", "local-bob", "10.0.0.1")).subject == "bob"
    credentials = await site.store.credentials("bob")
    assert credentials is not None
    assert credentials.password_hash != EXTERNAL_PASSWORD


async def test_a_directory_name_that_is_an_organization_is_refused(
    site: Builtin, slapd: Slapd
) -> None:
    await site.store.create_organization("alice", owner="root")
    with pytest.raises(BadCredentials):
        await site.issuer.authenticate("alice", PASSWORDS["alice"], "10.0.0.1")
    assert await site.store.get_user("alice") is None


async def test_disabled_locally_stays_disabled(site: Builtin) -> None:
    await site.issuer.authenticate("dave", PASSWORDS["dave"], "10.0.0.1")
    await site.store.set_disabled("dave", True)
    with pytest.raises(BadCredentials):
        await site.issuer.authenticate("dave", PASSWORDS["dave"], "10.0.0.1")


@pytest.mark.parametrize(
    ("login", "password"),
    [("alice", "wrong"), ("eve", PASSWORDS["eve"]), ("alice", ""), ("nobody", "x")],
)
async def test_refusals_are_audited_and_counted(site: Builtin, login: str, password: str) -> None:
    with pytest.raises(BadCredentials):
        await site.issuer.authenticate(login, password, "10.0.0.9")
    assert await site.store.get_user(login) is None
    events = await site.store.audit_events(actor=login)
    assert [(e.action, e.outcome, e.client_address) for e in events] == [
        ("login", "failure", "10.0.0.9")
    ]
    assert site.issuer.limiter is not None
    failures = await site.store.login_failures([f"account:{login}@10.0.0.9"])
    assert failures[f"account:{login}@10.0.0.9"][1] == 1


async def test_rate_limit_applies_to_directory_logins(site: Builtin) -> None:
    from dockyard.auth.issuer import TooManyFailures

    for _ in range(3):
        with pytest.raises(BadCredentials):
            await site.issuer.authenticate("alice", "wrong", "10.0.0.7")
    # Past the limit even the right password is not checked.
    with pytest.raises(TooManyFailures):
        await site.issuer.authenticate("alice", PASSWORDS["alice"], "10.0.0.7")
    # From another address alice logs in.
    assert (await site.issuer.authenticate("alice", PASSWORDS["alice"], "10.0.0.8")).subject


async def test_success_is_audited_as_a_directory_login(site: Builtin) -> None:
    await site.issuer.authenticate("alice", PASSWORDS["alice"], "10.0.0.2")
    await site.issuer.authenticate("bob", "local-bob", "10.0.0.2")
    logins = {e.actor: e.detail for e in await site.store.audit_events() if e.action == "login"}
    assert logins == {"alice": "ldap", "bob": "password"}


async def test_directory_users_get_no_refresh_token(site: Builtin) -> None:
    await site.issuer.authenticate("alice", PASSWORDS["alice"], "10.0.0.2")
    ldap_user = await site.issuer.issue("alice", [], offline=True)
    assert ldap_user.refresh_token is None
    local_user = await site.issuer.issue("bob", [], offline=True)
    assert local_user.refresh_token is not None


async def test_directory_down_is_unavailable_not_a_failure(
    tmp_path: Path, slapd: Slapd, caplog: pytest.LogCaptureFixture
) -> None:
    params = {
        "signingkeys": [str(write_key(tmp_path / "key.pem"))],
        "ldap": ldap_params(slapd, url="ldap://127.0.0.1:1", starttls=False),
    }
    async with builtin(tmp_path, params) as made:
        await made.add_user("bob", "local-bob")
        with (
            caplog.at_level(logging.WARNING, "dockyard.auth.issuer"),
            pytest.raises(Unavailable) as caught,
        ):
            await made.issuer.authenticate("alice", PASSWORDS["alice"], "10.0.0.3")
        assert caught.value.status == 503
        assert caught.value.headers["Retry-After"]
        assert "user directory is unavailable" in caplog.text
        assert "127.0.0.1:1" in caplog.text
        events = await made.store.audit_events(actor="alice")
        assert [(e.outcome, "127.0.0.1:1" in (e.detail or "")) for e in events] == [
            ("unavailable", True)
        ]
        # Not counted against alice, and local accounts still log in.
        assert await made.store.login_failures(["account:alice@10.0.0.3"]) == {}
        assert (await made.issuer.authenticate("bob", "local-bob", "10.0.0.3")).subject == "bob"
