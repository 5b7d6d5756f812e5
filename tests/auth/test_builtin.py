"""``auth.builtin``: its parameters, its challenges and realm, key rotation, and the filter
its grants carry for the catalog."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from dockyard.auth.base import Access, RequestInfo
from dockyard.auth.builtin import BuiltinAccess, BuiltinSettings
from dockyard.auth.factory import access_controller
from dockyard.auth.options import AuthConfigError
from dockyard.auth.signing import SigningKey, SigningKeys
from dockyard.errors import Unauthorized
from dockyard.identity.base import Visibility
from dockyard.identity.limits import LoginLimits

from .builtin_setup import builtin, header_of, write_key


def request(token: str | None = None, *, scheme: str = "http", **headers: str) -> RequestInfo:
    if token is not None:
        headers["authorization"] = f"Bearer {token}"
    return RequestInfo(headers=headers, client="127.0.0.1", scheme=scheme)


async def challenge(controller: BuiltinAccess, info: RequestInfo, wanted: list[Access]) -> str:
    with pytest.raises(Unauthorized) as caught:
        await controller.authorize(info, wanted)
    return caught.value.headers["WWW-Authenticate"]


@pytest.fixture
def key(tmp_path: Path) -> str:
    return str(write_key(tmp_path / "key.pem"))


# -- parameters -----------------------------------------------------------------------------------


def test_defaults(key: str) -> None:
    settings = BuiltinSettings.from_options({"signingkeys": [key]})
    assert settings.service == settings.issuer == "dockyard"
    assert settings.realm is None
    assert settings.lifetime == 300
    assert settings.default_visibility is Visibility.PRIVATE
    assert settings.keys.signer.algorithm == "ES256"


def test_every_parameter(key: str) -> None:
    settings = BuiltinSettings.from_options(
        {
            "service": "registry.example",
            "issuer": "dockyard-auth",
            "realm": "https://auth.example/token",
            "signingkeys": key,  # one path alone, as an environment override gives it
            "tokenexpiration": "15m",
            "defaultvisibility": "Public",
        }
    )
    assert (settings.service, settings.issuer) == ("registry.example", "dockyard-auth")
    assert settings.realm == "https://auth.example/token"
    assert settings.lifetime == 900
    assert settings.default_visibility is Visibility.PUBLIC


def test_login_limits_from_config(key: str) -> None:
    assert BuiltinSettings.from_options({"signingkeys": [key]}).login_limits == LoginLimits(
        per_account=10, per_address=50, window=900.0
    )
    settings = BuiltinSettings.from_options(
        {
            "signingkeys": [key],
            "maxfailuresperaccount": 3,
            "maxfailuresperaddress": 7,
            "failurewindow": "1h",
        }
    )
    assert settings.login_limits == LoginLimits(per_account=3, per_address=7, window=3600.0)


@pytest.mark.parametrize(
    ("params", "path", "message"),
    [
        ({"signingkeys": ["/nonexistent/key.pem"]}, "auth.builtin.signingkeys", "cannot read"),
        ({"signingkeys": [42]}, "auth.builtin.signingkeys", "list of strings"),
        ({"tokenexpiration": "30s"}, "auth.builtin.tokenexpiration", "at least 60"),
        ({"tokenexpiration": "soon"}, "auth.builtin.tokenexpiration", "invalid duration"),
        ({"defaultvisibility": "internal"}, "auth.builtin.defaultvisibility", "public, private"),
        ({"realms": "x"}, "auth.builtin.realms", "unknown parameter"),
        ({"service": 5}, "auth.builtin.service", "must be a string"),
        ({"maxfailuresperaccount": 0}, "auth.builtin.maxfailuresperaccount", "at least 1"),
        ({"maxfailuresperaddress": "ten"}, "auth.builtin.maxfailuresperaddress", "whole number"),
        ({"maxfailuresperaddress": True}, "auth.builtin.maxfailuresperaddress", "whole number"),
        ({"failurewindow": "0s"}, "auth.builtin.failurewindow", "at least 1"),
        ({"ldap": {"url": "ldap://x"}}, "auth.builtin.ldap.usersearchbase", "required"),
        ({"ldap": "ldap://x"}, "auth.builtin.ldap", "must be a mapping"),
    ],
)
def test_bad_parameters(key: str, params: dict[str, Any], path: str, message: str) -> None:
    with pytest.raises(AuthConfigError) as caught:
        BuiltinSettings.from_options({"signingkeys": [key], **params})
    assert caught.value.path == path
    assert message in caught.value.reason


def test_unusable_key_files(tmp_path: Path) -> None:
    public = ec.generate_private_key(ec.SECP256R1()).public_key()
    cases = {
        "text.pem": b"not a key",
        # A public key cannot sign.
        "public.pem": public.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ),
    }
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
        with pytest.raises(AuthConfigError, match=r"auth\.builtin\.signingkeys: .*PEM private"):
            BuiltinSettings.from_options({"signingkeys": [str(tmp_path / name)]})


def test_key_types(tmp_path: Path) -> None:
    assert SigningKey.load(write_key(tmp_path / "r.pem", "rsa")).algorithm == "RS256"
    assert SigningKey.load(write_key(tmp_path / "p.pem", "p384")).algorithm == "ES384"
    from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

    with pytest.raises(ValueError, match="unsupported key type"):
        SigningKey.of(ed25519.Ed25519PrivateKey.generate())
    with pytest.raises(ValueError, match="2048 bits"):
        SigningKey.of(rsa.generate_private_key(public_exponent=65537, key_size=1024))
    with pytest.raises(ValueError, match="unsupported curve"):
        SigningKey.of(ec.generate_private_key(ec.SECP256K1()))


def test_factory_builds_builtin(key: str) -> None:
    controller = access_controller({"builtin": {"signingkeys": [key]}})
    assert isinstance(controller, BuiltinAccess)
    # Without the database (checking a config) it verifies but issues nothing.
    assert controller.issuer is None
    assert BuiltinAccess.from_options({"signingkeys": [key]}).issuer is None
    # No key configured and no data directory (checking a config): a key of the moment.
    checking = access_controller({"builtin": None})
    assert isinstance(checking, BuiltinAccess)
    assert checking.settings.keys.signer.algorithm == "ES256"
    with pytest.raises(AuthConfigError, match=r"auth\.builtin\.signingkeys"):
        access_controller({"builtin": {"signingkeys": ["/nonexistent/key.pem"]}})


# -- challenges and realm -------------------------------------------------------------------------


async def test_realm_from_the_request(key: str) -> None:
    controller = BuiltinAccess(BuiltinSettings.from_options({"signingkeys": [key]}), None)
    wanted = [Access.repository("alice/app", "pull")]
    plain = await challenge(controller, request(host="reg.example:5000"), wanted)
    assert plain == (
        'Bearer realm="http://reg.example:5000/token",service="dockyard",'
        'scope="repository:alice/app:pull"'
    )
    tls = await challenge(controller, request(host="reg.example", scheme="https"), wanted)
    assert tls.startswith('Bearer realm="https://reg.example/token"')
    proxied = request(host="reg.example", **{"x-forwarded-proto": "https"})
    assert (await challenge(controller, proxied, [])).startswith(
        'Bearer realm="https://reg.example/token"'
    )


async def test_realm_from_config_or_http_host(key: str) -> None:
    settings = BuiltinSettings.from_options({"signingkeys": [key]})
    hosted = BuiltinAccess(settings, None, host="https://registry.example/")
    assert (await challenge(hosted, request(host="internal:5000"), [])).startswith(
        'Bearer realm="https://registry.example/token"'
    )
    fixed = BuiltinAccess(
        BuiltinSettings.from_options({"signingkeys": [key], "realm": "https://a.example/t"}),
        None,
        host="https://registry.example",
    )
    assert (await challenge(fixed, request(host="x"), [])).startswith(
        'Bearer realm="https://a.example/t"'
    )


async def test_tokens_challenges(tmp_path: Path) -> None:
    async with builtin(tmp_path) as made:
        await made.add_user("alice")
        wanted = [Access.repository("alice/app", "pull", "push")]
        pull_only = await made.token("alice", Access.repository("alice/app", "pull"))
        header = await challenge(made.access, request(pull_only, host="h"), wanted)
        assert header.endswith('scope="repository:alice/app:pull,push",error="insufficient_scope"')
        header = await challenge(made.access, request("garbage", host="h"), wanted)
        assert header.endswith('error="invalid_token"')
        full = await made.token("alice", *wanted)
        grant = await made.access.authorize(request(full), wanted)
        assert grant.subject == "alice"
        assert grant.visible is None  # nothing to filter outside listings


# -- key rotation ---------------------------------------------------------------------------------


async def test_rotation_old_tokens_verify_new_ones_use_the_first_key(tmp_path: Path) -> None:
    old = str(write_key(tmp_path / "old.pem"))
    new = str(write_key(tmp_path / "new.pem", "rsa"))
    wanted = [Access.repository("alice/app", "pull")]
    async with builtin(tmp_path, {"signingkeys": [old]}) as before:
        await before.add_user("alice")
        old_token = await before.token("alice", *wanted)
    (tmp_path / "dockyard.db").unlink()
    async with builtin(tmp_path, {"signingkeys": [new, old]}) as after:
        await after.add_user("alice")
        assert (await after.access.authorize(request(old_token), wanted)).subject == "alice"
        new_token = await after.token("alice", *wanted)
        assert header_of(new_token)["alg"] == "RS256"
        assert header_of(new_token)["kid"] == SigningKey.load(Path(new)).kid
        keys = after.access.settings.keys.jwks()["keys"]
        assert [k["kid"] for k in keys] == [
            SigningKey.load(Path(new)).kid,
            SigningKey.load(Path(old)).kid,
        ]
    async with builtin(tmp_path, {"signingkeys": [new]}) as retired:
        await challenge(retired.access, request(old_token, host="h"), wanted)


def test_jwks_verifies_tokens(tmp_path: Path) -> None:
    keys = SigningKeys.load([write_key(tmp_path / "a.pem"), write_key(tmp_path / "b.pem", "rsa")])
    jwks = json.loads(json.dumps(keys.jwks()))
    assert all(k["use"] == "sig" and "d" not in k for k in jwks["keys"])
    token = keys.sign({"iss": "i", "aud": "s", "sub": "alice"})
    signer = jwt.PyJWKSet.from_dict(jwks)[header_of(token)["kid"]]
    assert jwt.decode(token, signer, algorithms=["ES256"], audience="s")["sub"] == "alice"
    # The same key configured twice is published once.
    twice = SigningKeys([keys.signer, keys.signer])
    assert len(twice.jwks()["keys"]) == 1


# -- the catalog filter ---------------------------------------------------------------------------


async def test_catalog_grant_filters_by_visibility(tmp_path: Path) -> None:
    async with builtin(tmp_path) as made:
        await made.add_user("alice")
        await made.add_user("bob")
        await made.add_user("root", is_admin=True)
        await made.store.set_visibility("alice/private", Visibility.PRIVATE)
        await made.store.set_visibility("alice/public", Visibility.PUBLIC)
        names = ["alice/private", "alice/public", "bob/app", "nginx"]
        seen = {}
        for subject in ("alice", "bob", "root", None):
            token = await made.token(subject, Access.catalog())
            grant = await made.access.authorize(request(token), [Access.catalog()])
            assert grant.visible is not None
            seen[subject] = list(await grant.visible(names))
        assert seen == {
            "alice": ["alice/private", "alice/public"],
            "bob": ["alice/public", "bob/app"],
            "root": names,
            None: ["alice/public"],
        }


async def test_catalog_filter_without_a_database_shows_nothing(key: str) -> None:
    settings = BuiltinSettings.from_options({"signingkeys": [key]})
    controller = BuiltinAccess(settings, None)
    token = settings.keys.sign(
        {
            "iss": "dockyard",
            "aud": "dockyard",
            "exp": 2**40,
            "access": [{"type": "registry", "name": "catalog", "actions": ["*"]}],
        }
    )
    grant = await controller.authorize(request(token), [Access.catalog()])
    assert grant.visible is not None
    assert await grant.visible(["nginx"]) == []
