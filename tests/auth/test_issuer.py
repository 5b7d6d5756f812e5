"""The built-in token server without HTTP: logins, what a token grants, refresh tokens."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from dockyard.auth.base import Access
from dockyard.auth.issuer import BadCredentials
from dockyard.identity.base import Permission, Role, TeamSubject, UserSubject, Visibility

from .builtin_setup import Builtin, access_of, builtin, claims_of, header_of, write_key

PULL, PUSH, DELETE = "pull", "push", "delete"


@pytest.fixture
async def setup(tmp_path: Path) -> AsyncIterator[Builtin]:
    async with builtin(tmp_path) as made:
        await made.add_user("alice", "wonderland")
        await made.add_user("bob", "builder")
        await made.add_user("root", "toor", is_admin=True)
        yield made


def repo(name: str, *actions: str) -> Access:
    return Access.repository(name, *actions)


# -- logins ---------------------------------------------------------------------------------------


async def test_login_with_the_right_password(setup: Builtin) -> None:
    assert await setup.issuer.login("alice", "wonderland") == "alice"


@pytest.mark.parametrize(
    ("user", "password"),
    [
        ("alice", "wrong"),
        ("alice", ""),
        ("nobody", "wonderland"),
        ("", ""),
        ("ALICE", "wonderland"),
    ],
)
async def test_login_refused(setup: Builtin, user: str, password: str) -> None:
    with pytest.raises(BadCredentials):
        await setup.issuer.login(user, password)


async def test_disabled_user_cannot_log_in(setup: Builtin) -> None:
    await setup.store.set_disabled("alice", True)
    with pytest.raises(BadCredentials):
        await setup.issuer.login("alice", "wonderland")
    # A login that raced with the disabling gets no token either.
    with pytest.raises(BadCredentials):
        await setup.issuer.issue("alice", [repo("alice/app", PULL)])


async def test_user_without_a_password_cannot_log_in(setup: Builtin) -> None:
    await setup.store.create_user("robot", None)
    with pytest.raises(BadCredentials):
        await setup.issuer.login("robot", "")


# -- the token ------------------------------------------------------------------------------------


async def test_token_claims(setup: Builtin) -> None:
    issued = await setup.issuer.issue("alice", [repo("alice/app", PULL, PUSH)])
    claims = claims_of(issued.token)
    assert claims["iss"] == claims["aud"] == "dockyard"
    assert claims["sub"] == "alice"
    assert claims["exp"] - claims["iat"] == issued.expires_in == 300
    assert claims["nbf"] == claims["iat"] == int(issued.issued_at.timestamp())
    assert len(claims["jti"]) >= 16
    assert claims["access"] == [
        {"type": "repository", "name": "alice/app", "actions": ["pull", "push"]}
    ]
    header = header_of(issued.token)
    assert header["alg"] == "ES256"
    assert header["kid"] == setup.access.settings.keys.signer.kid
    other = await setup.issuer.issue("alice", [repo("alice/app", PULL, PUSH)])
    assert claims_of(other.token)["jti"] != claims["jti"]


async def test_anonymous_token_has_no_subject(setup: Builtin) -> None:
    issued = await setup.issuer.issue(None, [], offline=True)
    claims = claims_of(issued.token)
    assert "sub" not in claims
    assert claims["access"] == []
    assert issued.refresh_token is None


async def test_the_controller_accepts_its_own_tokens(setup: Builtin) -> None:
    from dockyard.auth.base import RequestInfo

    token = await setup.token("alice", repo("alice/app", PULL, PUSH))
    info = RequestInfo(headers={"authorization": f"Bearer {token}"}, client=None)
    grant = await setup.access.authorize(info, [repo("alice/app", PULL, PUSH)])
    assert grant.subject == "alice"


# -- what is granted ------------------------------------------------------------------------------


async def test_asking_for_more_yields_less(setup: Builtin) -> None:
    await setup.store.set_visibility("bob/tool", Visibility.PUBLIC)
    token = await setup.token(
        "alice",
        repo("alice/app", PULL, PUSH, DELETE, "*"),
        repo("bob/tool", PULL, PUSH, DELETE),
        repo("bob/secret", PULL, PUSH),
        repo("nginx", PULL, PUSH),
    )
    assert access_of(token) == {
        ("repository", "alice/app"): ["*", "delete", "pull", "push"],
        ("repository", "bob/tool"): ["pull"],
        ("repository", "bob/secret"): [],
        ("repository", "nginx"): [],
    }


async def test_a_private_repository_looks_like_a_missing_one(setup: Builtin) -> None:
    await setup.store.set_visibility("alice/private", Visibility.PRIVATE)
    token = await setup.token(
        "bob", repo("alice/private", PULL, PUSH), repo("alice/missing", PULL, PUSH)
    )
    granted = access_of(token)
    assert granted[("repository", "alice/private")] == []
    assert granted[("repository", "alice/missing")] == []
    assert await setup.store.visibilities(["alice/missing"]) == {}


async def test_anonymous_pulls_public_repositories_only(setup: Builtin) -> None:
    await setup.store.set_visibility("alice/public", Visibility.PUBLIC)
    await setup.store.set_visibility("alice/private", Visibility.PRIVATE)
    token = await setup.token(
        None,
        repo("alice/public", PULL, PUSH),
        repo("alice/private", PULL),
        repo("nginx", PULL),
    )
    assert access_of(token) == {
        ("repository", "alice/public"): ["pull"],
        ("repository", "alice/private"): [],
        ("repository", "nginx"): [],
    }


async def test_scopes_for_one_repository_are_merged(setup: Builtin) -> None:
    token = await setup.token("alice", repo("alice/app", PULL), repo("alice/app", PUSH))
    assert claims_of(token)["access"] == [
        {"type": "repository", "name": "alice/app", "actions": ["pull", "push"]}
    ]


async def test_invalid_names_and_unknown_types_get_nothing(setup: Builtin) -> None:
    token = await setup.token(
        "root",
        repo("Alice/App", PULL),
        repo("a" * 300, PULL),
        Access("plugin", "whatever", frozenset({"*"})),
        Access("registry", "other", frozenset({"*"})),
    )
    assert all(actions == [] for actions in access_of(token).values())
    assert len(access_of(token)) == 4


async def test_catalog_is_granted_to_everyone(setup: Builtin) -> None:
    for subject in (None, "bob"):
        token = await setup.token(subject, Access.catalog())
        assert access_of(token) == {("registry", "catalog"): ["*"]}


async def test_admin_gets_everything_everywhere(setup: Builtin) -> None:
    token = await setup.token("root", repo("nginx", PULL, PUSH), repo("alice/app", DELETE))
    assert access_of(token) == {
        ("repository", "nginx"): ["pull", "push"],
        ("repository", "alice/app"): ["delete"],
    }


async def test_organizations_teams_and_grants(setup: Builtin) -> None:
    store = setup.store
    await setup.add_user("carol")
    await store.create_organization("acme", owner="alice", default_permission=Permission.READ)
    await store.set_member("acme", "bob", Role.MEMBER)
    await store.set_member("acme", "carol", Role.MEMBER)
    await store.create_team("acme", "backend")
    await store.add_team_member("acme", "backend", "carol")
    await store.grant("acme/backend/**", TeamSubject("acme", "backend"), Permission.WRITE)
    await store.grant("acme/backend/api", UserSubject("bob"), Permission.ADMIN)
    wanted = [repo("acme/backend/api", PULL, PUSH, DELETE), repo("acme/web", PULL, PUSH)]
    assert access_of(await setup.token("alice", *wanted)) == {
        ("repository", "acme/backend/api"): ["delete", "pull", "push"],
        ("repository", "acme/web"): ["pull", "push"],
    }
    assert access_of(await setup.token("bob", *wanted)) == {
        ("repository", "acme/backend/api"): ["delete", "pull", "push"],
        ("repository", "acme/web"): ["pull"],
    }
    assert access_of(await setup.token("carol", *wanted)) == {
        ("repository", "acme/backend/api"): ["pull", "push"],
        ("repository", "acme/web"): ["pull"],
    }
    await store.remove_member("acme", "carol")  # and so from the team
    assert access_of(await setup.token("carol", *wanted)) == {
        ("repository", "acme/backend/api"): [],
        ("repository", "acme/web"): [],
    }


# -- repositories created by a push --------------------------------------------------------------


async def test_push_in_ones_namespace_claims_the_repository_private(setup: Builtin) -> None:
    await setup.token("alice", repo("alice/new", PULL, PUSH))
    assert await setup.store.visibilities(["alice/new"]) == {"alice/new": Visibility.PRIVATE}
    # Pull alone creates nothing, and nor does a push that is refused.
    await setup.token("alice", repo("alice/read-only", PULL))
    await setup.token("bob", repo("alice/other", PUSH))
    assert await setup.store.visibilities(["alice/read-only", "alice/other"]) == {}


async def test_a_claim_keeps_a_visibility_already_set(setup: Builtin) -> None:
    await setup.store.set_visibility("alice/app", Visibility.PUBLIC)
    await setup.token("alice", repo("alice/app", PUSH))
    assert await setup.store.visibilities(["alice/app"]) == {"alice/app": Visibility.PUBLIC}


async def test_default_visibility_public(tmp_path: Path) -> None:
    params = {
        "signingkeys": [str(write_key(tmp_path / "k.pem"))],
        "defaultvisibility": "public",
    }
    async with builtin(tmp_path, params) as made:
        await made.add_user("alice")
        await made.token("alice", repo("alice/open", PUSH))
        assert access_of(await made.token(None, repo("alice/open", PULL))) == {
            ("repository", "alice/open"): ["pull"]
        }
        # A repository nobody pushed to is still nobody's to see.
        assert access_of(await made.token(None, repo("alice/never", PULL))) == {
            ("repository", "alice/never"): []
        }


# -- refresh tokens -------------------------------------------------------------------------------


async def test_offline_token_brings_a_refresh_token(setup: Builtin) -> None:
    issued = await setup.issuer.issue("alice", [], offline=True, client_id="cli")
    assert issued.refresh_token is not None
    assert len(issued.refresh_token) >= 40
    assert await setup.issuer.redeem(issued.refresh_token) == "alice"
    again = await setup.issuer.issue(
        "alice", [repo("alice/app", PULL)], refresh_token=issued.refresh_token
    )
    assert again.refresh_token == issued.refresh_token
    assert access_of(again.token) == {("repository", "alice/app"): ["pull"]}
    online = await setup.issuer.issue("alice", [])
    assert online.refresh_token is None


async def test_refresh_tokens_are_refused_once_revoked(setup: Builtin) -> None:
    issued = await setup.issuer.issue("alice", [], offline=True)
    assert issued.refresh_token is not None
    with pytest.raises(BadCredentials):
        await setup.issuer.redeem(issued.refresh_token + "x")
    await setup.store.set_disabled("alice", True)
    with pytest.raises(BadCredentials):
        await setup.issuer.redeem(issued.refresh_token)


async def test_lifetime_never_below_a_minute(tmp_path: Path) -> None:
    from dockyard.auth.issuer import TokenIssuer

    async with builtin(tmp_path) as made:
        issuer = made.issuer
        short = TokenIssuer(
            issuer="i",
            service="s",
            keys=issuer.keys,
            lifetime=5,
            store=made.store,
            authority=issuer.authority,
            passwords=issuer.passwords,
        )
        assert (await short.issue(None, [])).expires_in == 60
