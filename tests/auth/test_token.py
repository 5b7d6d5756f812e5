"""``auth.token``: the controller's challenges and grants, and its parameters."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from dockyard.auth.base import Access, RequestInfo
from dockyard.auth.options import AuthConfigError
from dockyard.auth.token import TokenAccess
from dockyard.errors import Unauthorized

from .issuer import ISSUER, SERVICE, Issuer, SigningKey

REALM = "https://auth.example/token"
REPO = "team/app"


@pytest.fixture(scope="module")
def signer() -> SigningKey:
    return SigningKey.create("ec")


@pytest.fixture
def issuer(signer: SigningKey) -> Issuer:
    return Issuer(signer)


@pytest.fixture
def params(issuer: Issuer, tmp_path: Path) -> dict[str, object]:
    bundle = issuer.write_bundle(tmp_path / "bundle.pem")
    return {"realm": REALM, "service": SERVICE, "issuer": ISSUER, "rootcertbundle": str(bundle)}


@pytest.fixture
def controller(params: dict[str, object]) -> TokenAccess:
    return TokenAccess.from_options(params)


def request(token: str | None = None, **headers: str) -> RequestInfo:
    if token is not None:
        headers["authorization"] = f"Bearer {token}"
    return RequestInfo(headers=headers, client="127.0.0.1")


async def challenge(controller: TokenAccess, info: RequestInfo, wanted: list[Access]) -> str:
    with pytest.raises(Unauthorized) as caught:
        await controller.authorize(info, wanted)
    assert caught.value.status == 401
    assert caught.value.envelope()["errors"][0]["code"] == "UNAUTHORIZED"
    return caught.value.headers["WWW-Authenticate"]


async def test_no_token_names_realm_service_and_scope(controller: TokenAccess) -> None:
    header = await challenge(controller, request(), [Access.repository(REPO, "pull")])
    assert header == (f'Bearer realm="{REALM}",service="{SERVICE}",scope="repository:{REPO}:pull"')


async def test_push_asks_for_pull_and_push(controller: TokenAccess) -> None:
    header = await challenge(controller, request(), [Access.repository(REPO, "push", "pull")])
    assert header.endswith(f'scope="repository:{REPO}:pull,push"')


async def test_several_scopes_are_space_separated(controller: TokenAccess) -> None:
    wanted = [Access.repository(REPO, "pull", "push"), Access.repository("lib/base", "pull")]
    header = await challenge(controller, request(), wanted)
    assert header.endswith(f'scope="repository:{REPO}:pull,push repository:lib/base:pull"')


async def test_base_endpoint_challenge_has_no_scope(controller: TokenAccess) -> None:
    assert await challenge(controller, request(), []) == (
        f'Bearer realm="{REALM}",service="{SERVICE}"'
    )


async def test_error_body_lists_the_wanted_access(controller: TokenAccess) -> None:
    with pytest.raises(Unauthorized) as caught:
        await controller.authorize(request(), [Access.repository(REPO, "pull")])
    assert caught.value.envelope()["errors"][0]["detail"] == [
        {"Type": "repository", "Name": REPO, "Action": "pull"}
    ]


async def test_sufficient_token_is_granted(controller: TokenAccess, issuer: Issuer) -> None:
    token = issuer.mint([("repository", REPO, ["pull", "push"])], subject="alice")
    grant = await controller.authorize(request(token), [Access.repository(REPO, "pull", "push")])
    assert grant.subject == "alice"
    assert grant.allows(Access.repository(REPO, "pull"))
    assert not grant.allows(Access.repository("other/repo", "pull"))
    # Any valid token opens GET /v2/.
    assert (await controller.authorize(request(token), [])).subject == "alice"


async def test_pull_token_cannot_push(controller: TokenAccess, issuer: Issuer) -> None:
    token = issuer.mint([("repository", REPO, ["pull"])])
    await controller.authorize(request(token), [Access.repository(REPO, "pull")])
    header = await challenge(controller, request(token), [Access.repository(REPO, "pull", "push")])
    assert header == (
        f'Bearer realm="{REALM}",service="{SERVICE}",scope="repository:{REPO}:pull,push",'
        'error="insufficient_scope"'
    )


async def test_token_for_another_repository(controller: TokenAccess, issuer: Issuer) -> None:
    token = issuer.mint([("repository", "other/repo", ["pull", "push"])])
    header = await challenge(controller, request(token), [Access.repository(REPO, "pull")])
    assert header.endswith('error="insufficient_scope"')


async def test_every_wanted_access_must_be_covered(controller: TokenAccess, issuer: Issuer) -> None:
    token = issuer.mint([("repository", REPO, ["pull", "push"])])
    wanted = [Access.repository(REPO, "pull", "push"), Access.repository("lib/base", "pull")]
    header = await challenge(controller, request(token), wanted)
    assert 'error="insufficient_scope"' in header


async def test_catalog_needs_registry_catalog(controller: TokenAccess, issuer: Issuer) -> None:
    repo_token = issuer.mint([("repository", REPO, ["*"])])
    header = await challenge(controller, request(repo_token), [Access.catalog()])
    assert 'scope="registry:catalog:*"' in header
    catalog_token = issuer.mint([("registry", "catalog", ["*"])])
    assert await controller.authorize(request(catalog_token), [Access.catalog()])


async def test_wildcard_action_grants_every_action(controller: TokenAccess, issuer: Issuer) -> None:
    token = issuer.mint([("repository", REPO, ["*"])])
    wanted = [Access.repository(REPO, "pull", "push"), Access.repository(REPO, "delete")]
    assert await controller.authorize(request(token), wanted)


async def test_resource_class_is_ignored(controller: TokenAccess, issuer: Issuer) -> None:
    token = issuer.mint([("repository(plugin)", REPO, ["pull"])])
    assert await controller.authorize(request(token), [Access.repository(REPO, "pull")])


async def test_invalid_token_challenge(controller: TokenAccess, issuer: Issuer) -> None:
    for token in ("garbage", issuer.mint([("repository", REPO, ["pull"])], lifetime=-600)):
        header = await challenge(controller, request(token), [Access.repository(REPO, "pull")])
        assert header.endswith(f'scope="repository:{REPO}:pull",error="invalid_token"')


async def test_basic_credentials_are_not_a_token(controller: TokenAccess) -> None:
    info = RequestInfo(headers={"authorization": "Basic YTpi"}, client=None)
    header = await challenge(controller, info, [Access.repository(REPO, "pull")])
    assert "error=" not in header


async def test_autoredirect_builds_the_realm_from_the_request(
    params: dict[str, object],
) -> None:
    controller = TokenAccess.from_options({**params, "autoredirect": True})
    wanted = [Access.repository(REPO, "pull")]
    header = await challenge(controller, request(host="registry.example:5000"), wanted)
    assert header.startswith('Bearer realm="https://registry.example:5000/auth/token",')
    header = await challenge(
        controller, request(host="r.example", **{"x-forwarded-proto": "http"}), wanted
    )
    assert header.startswith('Bearer realm="http://r.example/auth/token",')
    custom = TokenAccess.from_options(
        {**params, "autoredirect": True, "autoredirectpath": "/v2/token"}
    )
    header = await challenge(custom, request(host="r.example"), wanted)
    assert header.startswith('Bearer realm="https://r.example/v2/token",')
    # Without a Host header, the configured realm.
    assert (await challenge(controller, request(), wanted)).startswith(f'Bearer realm="{REALM}"')


async def test_jwks_keys_are_trusted(issuer: Issuer, signer: SigningKey, tmp_path: Path) -> None:
    public = signer.jwk()
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps({"keys": [{**public, "kid": "key-1"}]}))
    controller = TokenAccess.from_options(
        {"realm": REALM, "service": SERVICE, "issuer": ISSUER, "jwks": str(jwks)}
    )
    token = issuer.mint([("repository", REPO, ["pull"])], headers={"kid": "key-1"})
    assert await controller.authorize(request(token), [Access.repository(REPO, "pull")])


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"realm": None}, "auth.token.realm: required"),
        ({"service": None}, "auth.token.service: required"),
        ({"issuer": None}, "auth.token.issuer: required"),
        ({"rootcertbundle": None}, "auth.token.rootcertbundle: token auth needs at least one"),
        ({"rootcertbundle": "/nonexistent.pem"}, "auth.token.rootcertbundle: cannot read"),
        ({"jwks": "/nonexistent.json"}, "auth.token.jwks: cannot read"),
        ({"autoredirect": "yes"}, "auth.token.autoredirect: must be true or false"),
        ({"signingalgorithms": ["ES256", "XX1"]}, "auth.token.signingalgorithms: unsupported"),
        ({"signingalgorithms": "ES256"}, "auth.token.signingalgorithms: must be a list"),
        ({"rootcertbundles": "/x"}, "auth.token.rootcertbundles: unknown parameter"),
    ],
)
def test_bad_parameters_are_refused(
    params: dict[str, object], change: dict[str, object], message: str
) -> None:
    merged = {k: v for k, v in {**params, **change}.items() if v is not None}
    with pytest.raises(AuthConfigError, match=re.escape(message)):
        TokenAccess.from_options(merged)
