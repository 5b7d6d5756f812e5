"""``auth.builtin`` over real HTTP: Dockyard's own accounts (made with ``dockyard user add``),
its token server, private and public repositories, the filtered catalog, key rotation, and
the real clients logging in.
"""

from __future__ import annotations

import asyncio
import base64
import gc
import hashlib
import json
import os
import re
import secrets
import subprocess
import sys
import warnings
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import jwt
import pytest
import yaml

from auth.builtin_setup import write_key
from dockyard.auth.signing import SigningKey
from dockyard.identity.base import IdentityStore, Visibility
from dockyard.identity.sql import SqlIdentityStore
from dockyard.metadata.engine import open_database

from .clients import CommandFailed, Podman, Skopeo, host_of
from .conftest import DISTRIBUTION, RegistryServer, ServerFactory, _factory
from .images import build_image, write_layout
from .registry import RegistryClient, assert_error

pytestmark = pytest.mark.skipif(DISTRIBUTION, reason="auth.builtin is Dockyard's own")

T = TypeVar("T")
USERS = {"alice": "wonderland", "bob": "builder", "root": "toor"}


def _add_user(server: RegistryServer, name: str, password: str, *flags: str) -> None:
    """``dockyard user add`` on the server's config (written first, as ``start`` writes it)."""
    server.config_path.write_text(yaml.safe_dump(server.config))
    env = {k: v for k, v in os.environ.items() if not k.startswith("REGISTRY_")}
    env["DOCKYARD_CONFIG"] = str(server.config_path)
    done = subprocess.run(
        [sys.executable, "-m", "dockyard", "user", "add", name, "--password-stdin", *flags],
        input=f"{password}\n".encode(),
        env=env,
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode(errors="replace")


def _builtin_config(*keys: Path) -> dict[str, Any]:
    return {"auth": {"builtin": {"signingkeys": [str(k) for k in keys]}}}


def _claims(token: str) -> dict[str, Any]:
    claims: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    return claims


def _access(token: str) -> dict[str, list[str]]:
    return {f"{a['type']}:{a['name']}": a["actions"] for a in _claims(token)["access"]}


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


@dataclass
class Site:
    server: RegistryServer

    @property
    def url(self) -> str:
        return self.server.url

    def token_response(self, user: str | None, *scopes: str, **params: str) -> httpx.Response:
        headers = {"Authorization": _basic(user, USERS[user])} if user else {}
        query: list[tuple[str, str]] = [("service", "dockyard")]
        query += [("scope", scope) for scope in scopes]
        query += list(params.items())
        return httpx.get(f"{self.url}/token", params=tuple(query), headers=headers, timeout=30)

    def token(self, user: str | None, *scopes: str) -> str:
        response = self.token_response(user, *scopes)
        assert response.status_code == 200, response.text
        token: str = response.json()["token"]
        return token

    def client(self, token: str | None = None) -> RegistryClient:
        client = self.server.client()
        if token is not None:
            client.http.headers["Authorization"] = f"Bearer {token}"
        return client

    def client_for(self, user: str | None, *scopes: str) -> RegistryClient:
        return self.client(self.token(user, *scopes))

    def identity(self, work: Callable[[IdentityStore], Awaitable[T]]) -> T:
        """Run ``work`` on the server's own database, from this process."""

        async def run() -> T:
            database = open_database(f"sqlite:///{self.server.root / 'dockyard.db'}")
            try:
                return await work(SqlIdentityStore(database))
            finally:
                await database.close()

        return asyncio.run(run())

    def set_visibility(self, repository: str, visibility: Visibility) -> None:
        self.identity(lambda store: store.set_visibility(repository, visibility))


def _start_site(factory: ServerFactory, config: dict[str, Any]) -> Site:
    server = factory(config, run=False)
    for user, password in USERS.items():
        _add_user(server, user, password, *(["--admin"] if user == "root" else []))
    server.start()
    return Site(server)


@pytest.fixture(scope="module")
def site(
    tmp_path_factory: pytest.TempPathFactory, unused_tcp_port_factory: Callable[[], int]
) -> Iterator[Site]:
    factory = _factory(lambda: tmp_path_factory.mktemp("builtin"), unused_tcp_port_factory)
    start = next(factory)
    key = write_key(tmp_path_factory.mktemp("keys") / "signing.pem")
    yield _start_site(start, _builtin_config(key))
    factory.close()


@pytest.fixture
def tag() -> str:
    """A suffix that keeps this test's repositories its own."""
    return secrets.token_hex(3)


# -- the challenge --------------------------------------------------------------------------------


def test_challenge_points_at_its_own_token_endpoint(site: Site, tag: str) -> None:
    response = httpx.get(f"{site.url}/v2/")
    assert_error(response, 401, "UNAUTHORIZED")
    assert response.headers["WWW-Authenticate"] == (
        f'Bearer realm="{site.url}/token",service="dockyard"'
    )
    response = httpx.get(f"{site.url}/v2/alice/app-{tag}/tags/list")
    assert response.headers["WWW-Authenticate"] == (
        f'Bearer realm="{site.url}/token",service="dockyard",'
        f'scope="repository:alice/app-{tag}:pull"'
    )
    with site.client_for("bob") as bob:
        assert bob.request("GET", "/v2/").status_code == 200


# -- private, public, and asking for too much -----------------------------------------------------


def _same_shape(a: httpx.Response, b: httpx.Response, name_a: str, name_b: str) -> None:
    """Two answers that differ by nothing but the repository's name."""
    assert a.status_code == b.status_code
    assert a.text.replace(name_a, "NAME") == b.text.replace(name_b, "NAME")
    challenge_a = a.headers.get("WWW-Authenticate", "").replace(name_a, "NAME")
    assert challenge_a == b.headers.get("WWW-Authenticate", "").replace(name_b, "NAME")


def test_private_repository_is_invisible_to_others(site: Site, tag: str) -> None:
    app, missing = f"alice/app-{tag}", f"alice/missing-{tag}"
    with site.client_for("alice", f"repository:{app}:pull,push") as alice:
        image = alice.push_image(app, "v1")
        assert alice.get_manifest(app, "v1").status_code == 200
    assert site.identity(lambda s: s.visibilities([app])) == {app: Visibility.PRIVATE}
    blob = next(iter(image.blobs))
    for who in ("bob", None):
        # The token server answers the same for the private repository and a missing one.
        token_app = site.token_response(who, f"repository:{app}:pull,push")
        token_missing = site.token_response(who, f"repository:{missing}:pull,push")
        assert token_app.status_code == token_missing.status_code == 200
        assert _access(token_app.json()["token"]) == {f"repository:{app}": []}
        assert _access(token_missing.json()["token"]) == {f"repository:{missing}": []}
        token = site.token(who, f"repository:{app}:pull", f"repository:{missing}:pull")
        with site.client(token) as other:
            for path in ("/manifests/v1", f"/manifests/{image.digest}", "/tags/list"):
                answers = [other.request("GET", f"/v2/{name}{path}") for name in (app, missing)]
                assert_error(answers[0], 401, "UNAUTHORIZED")
                _same_shape(answers[0], answers[1], app, missing)
            answers = [other.get_blob(name, blob) for name in (app, missing)]
            assert_error(answers[0], 401, "UNAUTHORIZED")
            _same_shape(answers[0], answers[1], app, missing)


def test_anonymous_pulls_a_public_repository(site: Site, tag: str) -> None:
    public = f"alice/public-{tag}"
    with site.client_for("alice", f"repository:{public}:pull,push") as alice:
        image = alice.push_image(public, "v1")
    site.set_visibility(public, Visibility.PUBLIC)
    token = site.token(None, f"repository:{public}:pull,push")
    assert _access(token) == {f"repository:{public}": ["pull"]}
    with site.client(token) as anonymous:
        response = anonymous.get_manifest(public, "v1")
        assert response.status_code == 200, response.text
        assert response.content == image.body
        for digest, data in image.blobs.items():
            assert anonymous.get_blob(public, digest).content == data
        assert anonymous.request("GET", f"/v2/{public}/tags/list").json()["tags"] == ["v1"]
        refused = anonymous.request("POST", f"/v2/{public}/blobs/uploads/")
        assert_error(refused, 401, "UNAUTHORIZED")
        assert 'error="insufficient_scope"' in refused.headers["WWW-Authenticate"]


def test_a_token_asked_for_more_carries_less(site: Site, tag: str) -> None:
    public, own = f"alice/more-{tag}", f"bob/more-{tag}"
    with site.client_for("alice", f"repository:{public}:pull,push") as alice:
        image = alice.push_image(public, "v1")
    site.set_visibility(public, Visibility.PUBLIC)
    token = site.token(
        "bob",
        f"repository:{public}:pull,push,delete",
        f"repository:{own}:*",
        f"repository:nginx-{tag}:pull,push",
    )
    assert _access(token) == {
        f"repository:{public}": ["pull"],
        f"repository:{own}": ["*"],
        f"repository:nginx-{tag}": [],
    }
    with site.client(token) as bob:
        assert bob.get_manifest(public, "v1").status_code == 200
        assert_error(bob.put_manifest(public, "v2", image.body), 401, "UNAUTHORIZED")
        assert_error(
            bob.request("DELETE", f"/v2/{public}/manifests/{image.digest}"), 401, "UNAUTHORIZED"
        )
        bob.push_image(own, "mine")  # "*" covers pull and push
    with site.client_for("alice", f"repository:{public}:pull") as alice:
        assert alice.get_manifest(public, "v2").status_code == 404


def test_push_outside_ones_namespace_is_refused(site: Site, tag: str) -> None:
    for target in (f"alice/by-bob-{tag}", f"official-{tag}", f"nobody/x-{tag}"):
        token = site.token("bob", f"repository:{target}:pull,push")
        assert _access(token) == {f"repository:{target}": []}
        with site.client(token) as bob:
            assert_error(bob.request("POST", f"/v2/{target}/blobs/uploads/"), 401, "UNAUTHORIZED")
    # Each refusal is in the audit log, with who asked and from where.
    events = site.identity(lambda store: store.audit_events(actor="bob"))
    denied = {(e.action, e.repository, e.client_address) for e in events if e.outcome == "denied"}
    for target in (f"alice/by-bob-{tag}", f"official-{tag}", f"nobody/x-{tag}"):
        assert ("push", target, "127.0.0.1") in denied
    # Admins push to the official namespace.
    official = f"official-{tag}"
    with site.client_for("root", f"repository:{official}:pull,push") as root:
        root.push_image(official, "v1")


# -- the catalog ----------------------------------------------------------------------------------


def _catalog(site: Site, user: str | None, n: int | None = None) -> list[str]:
    """Every name the user's catalog lists, following the Link headers page by page."""
    names: list[str] = []
    url = "/v2/_catalog" + (f"?n={n}" if n else "")
    with site.client_for(user, "registry:catalog:*") as client:
        while url:
            response = client.request("GET", url)
            assert response.status_code == 200, response.text
            names += response.json()["repositories"]
            link = response.headers.get("Link")
            url = re.match(r"<([^>]+)>", link).group(1) if link else ""  # type: ignore[union-attr]
    return names


def test_catalog_lists_what_each_caller_may_pull(site: Site, tag: str) -> None:
    repos = {
        "alice": [f"alice/cat-private-{tag}", f"alice/cat-public-{tag}"],
        "bob": [f"bob/cat-{tag}"],
        "root": [f"cat-official-{tag}"],
    }
    for user, names in repos.items():
        for name in names:
            with site.client_for(user, f"repository:{name}:pull,push") as client:
                client.push_image(name, "v1")
    site.set_visibility(f"alice/cat-public-{tag}", Visibility.PUBLIC)
    everything = {name for names in repos.values() for name in names}
    expected = {
        "alice": {f"alice/cat-private-{tag}", f"alice/cat-public-{tag}"},
        "bob": {f"bob/cat-{tag}", f"alice/cat-public-{tag}"},
        None: {f"alice/cat-public-{tag}"},
        "root": everything,
    }
    for caller, visible in expected.items():
        listed = _catalog(site, caller)
        assert everything & set(listed) == visible, caller
        assert listed == sorted(listed)
        # Paginated one by one, the pages add up to the same list.
        assert _catalog(site, caller, n=1) == listed


# -- the token endpoint ---------------------------------------------------------------------------


def test_wrong_credentials_are_401_in_the_json_format(site: Site) -> None:
    for authorization in (
        _basic("alice", "wrong"),
        _basic("mallory", "wonderland"),
        "Basic !!!",
        "Basic " + base64.b64encode(b"no-colon").decode(),
    ):
        response = httpx.get(
            f"{site.url}/token",
            params={"service": "dockyard"},
            headers={"Authorization": authorization},
        )
        errors = assert_error(response, 401, "UNAUTHORIZED")
        assert errors[0]["message"] == "invalid username or password"
        assert response.headers["WWW-Authenticate"] == 'Basic realm="dockyard"'


def test_token_response_fields(site: Site, tag: str) -> None:
    response = site.token_response("alice", f"repository:alice/f-{tag}:pull")
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    body = response.json()
    assert body["token"] == body["access_token"]
    assert body["expires_in"] == 300
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", body["issued_at"])
    assert "refresh_token" not in body
    claims = _claims(body["token"])
    assert (claims["iss"], claims["aud"], claims["sub"]) == ("dockyard", "dockyard", "alice")
    assert claims["exp"] - claims["iat"] == 300


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"service": "another-registry"}, "unknown service"),
        ({"scope": "repository:alice/app"}, "malformed scope"),
        ({"scope": "repository::pull"}, "malformed scope"),
    ],
)
def test_bad_token_requests_are_400(site: Site, params: dict[str, str], message: str) -> None:
    response = httpx.get(f"{site.url}/token", params=params)
    errors = assert_error(response, 400, "TOKEN_REQUEST_INVALID")
    assert message in errors[0]["message"]


def test_oauth2_password_and_refresh_grants(site: Site, tag: str) -> None:
    form = {
        "grant_type": "password",
        "username": "alice",
        "password": "wonderland",
        "service": "dockyard",
        "client_id": "e2e-tests",
        "access_type": "offline",
        "scope": f"repository:alice/o-{tag}:pull,push repository:bob/o-{tag}:pull",
    }
    response = httpx.post(f"{site.url}/token", data=form)
    assert response.status_code == 200, response.text
    body = response.json()
    refresh = body["refresh_token"]
    assert body["scope"] == f"repository:alice/o-{tag}:pull,push"
    assert _access(body["access_token"]) == {
        f"repository:alice/o-{tag}": ["pull", "push"],
        f"repository:bob/o-{tag}": [],
    }
    again = httpx.post(
        f"{site.url}/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": refresh,
            "service": "dockyard",
            "client_id": "e2e-tests",
            "scope": f"repository:alice/o-{tag}:pull",
        },
    )
    assert again.status_code == 200, again.text
    assert again.json()["refresh_token"] == refresh
    assert _access(again.json()["access_token"]) == {f"repository:alice/o-{tag}": ["pull"]}
    with site.client(again.json()["access_token"]) as alice:
        assert_error(alice.request("GET", f"/v2/alice/o-{tag}/tags/list"), 404, "NAME_UNKNOWN")
    online = httpx.post(f"{site.url}/token", data={**form, "access_type": "online"})
    assert "refresh_token" not in online.json()


@pytest.mark.parametrize(
    ("data", "status", "code"),
    [
        ({"grant_type": "password", "username": "alice", "password": "x"}, 401, "UNAUTHORIZED"),
        ({"grant_type": "password", "username": "ghost", "password": "x"}, 401, "UNAUTHORIZED"),
        ({"grant_type": "refresh_token", "refresh_token": "forged"}, 401, "UNAUTHORIZED"),
        ({"grant_type": "refresh_token"}, 401, "UNAUTHORIZED"),
        ({"grant_type": "authorization_code", "code": "x"}, 400, "TOKEN_REQUEST_INVALID"),
        ({}, 400, "TOKEN_REQUEST_INVALID"),
    ],
)
def test_oauth2_refusals(site: Site, data: dict[str, str], status: int, code: str) -> None:
    response = httpx.post(f"{site.url}/token", data={"service": "dockyard", **data})
    assert_error(response, status, code)


def test_oauth2_needs_a_form(site: Site) -> None:
    response = httpx.post(
        f"{site.url}/token",
        json={"grant_type": "password", "username": "alice", "password": "wonderland"},
    )
    assert_error(response, 400, "TOKEN_REQUEST_INVALID")
    huge = httpx.post(
        f"{site.url}/token",
        content=b"scope=" + b"a" * 70_000,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert_error(huge, 400, "TOKEN_REQUEST_INVALID")


def test_jwks_verifies_issued_tokens(site: Site) -> None:
    response = httpx.get(f"{site.url}/token/jwks.json")
    assert response.status_code == 200
    jwks = response.json()
    assert all("d" not in key for key in jwks["keys"])
    token = site.token("alice")
    key = jwt.PyJWKSet.from_dict(jwks)[jwt.get_unverified_header(token)["kid"]]
    assert jwt.decode(token, key, algorithms=["ES256"], audience="dockyard")["sub"] == "alice"


def test_token_endpoints_are_absent_without_builtin(registry_factory: ServerFactory) -> None:
    server = registry_factory()
    for method, path in (("GET", "/token"), ("POST", "/token"), ("GET", "/token/jwks.json")):
        assert_error(httpx.request(method, f"{server.url}{path}"), 404, "NOT_FOUND")


# -- key rotation ---------------------------------------------------------------------------------


def test_key_rotation(registry_factory: ServerFactory, tmp_path: Path) -> None:
    old, new = write_key(tmp_path / "old.pem"), write_key(tmp_path / "new.pem", "rsa")
    site = _start_site(registry_factory, _builtin_config(old))
    scope = "repository:alice/rotated:pull"
    old_token = site.token("alice", scope)
    assert jwt.get_unverified_header(old_token)["kid"] == SigningKey.load(old).kid

    def authorized(token: str) -> bool:
        with site.client(token) as client:
            response = client.request("GET", "/v2/alice/rotated/tags/list")
        assert response.status_code in (401, 404), response.text
        return response.status_code == 404

    assert authorized(old_token)
    site.server.config = {**site.server.config, **_builtin_config(new, old)}
    site.server.restart()
    assert authorized(old_token)
    new_token = site.token("alice", scope)
    assert jwt.get_unverified_header(new_token)["alg"] == "RS256"
    assert jwt.get_unverified_header(new_token)["kid"] == SigningKey.load(new).kid
    assert authorized(new_token)
    kids = [key["kid"] for key in httpx.get(f"{site.url}/token/jwks.json").json()["keys"]]
    assert kids == [SigningKey.load(new).kid, SigningKey.load(old).kid]
    site.server.config = {**site.server.config, **_builtin_config(new)}
    site.server.restart()
    assert not authorized(old_token)
    assert authorized(new_token)


# -- real clients ---------------------------------------------------------------------------------


@pytest.mark.clients
def test_skopeo_with_builtin_accounts(site: Site, tag: str, tmp_path: Path) -> None:
    skopeo = Skopeo(host_of(site.url), tmp_path / "skopeo")
    app = f"alice/skopeo-{tag}"
    image = build_image([{"etc/motd": f"hello from {app}\n".encode()}])
    layout = write_layout(tmp_path / "layout", {"v1": image})
    source, dest = f"oci:{layout}:v1", skopeo.ref(app, "v1")
    with pytest.raises(CommandFailed):
        skopeo.copy(source, dest, "--dest-creds", "alice:wrong")
    with pytest.raises(CommandFailed):
        skopeo.copy(source, dest, "--dest-creds", "bob:builder")
    skopeo.copy(source, dest, "--dest-creds", "alice:wonderland")
    assert skopeo.inspect(dest, "--creds", "alice:wonderland")["Digest"] == image.digest
    # Private: bob and anonymous are told what a missing repository tells them.
    for creds in (["--creds", "bob:builder"], ["--no-creds"]):
        with pytest.raises(CommandFailed) as private:
            skopeo.inspect(dest, *creds)
        with pytest.raises(CommandFailed) as missing:
            skopeo.inspect(skopeo.ref(f"alice/none-{tag}", "v1"), *creds)
        for failure in (private, missing):
            assert b"unauthorized" in failure.value.completed.stderr.lower()
    site.set_visibility(app, Visibility.PUBLIC)
    assert skopeo.inspect(dest, "--no-creds")["Digest"] == image.digest
    assert skopeo.inspect(dest, "--creds", "bob:builder")["Digest"] == image.digest


@pytest.mark.clients
def test_podman_login_and_push(site: Site, tag: str, tmp_path: Path) -> None:
    host = host_of(site.url)
    app = f"bob/podman-{tag}"
    with Podman.session(tmp_path / "podman") as podman:
        with pytest.raises(CommandFailed):
            podman("login", "--tls-verify=false", "-u", "bob", "-p", "wrong", host)
        podman("login", "--tls-verify=false", "-u", "bob", "-p", "builder", host)
        layout = write_layout(tmp_path / "layout", {"v1": build_image([{"f": b"podman"}])})
        image_id = podman.text("pull", "--quiet", f"oci:{layout}:v1").splitlines()[-1]
        podman("push", "--tls-verify=false", image_id, f"{host}/{app}:v1")
        with pytest.raises(CommandFailed):
            podman("push", "--tls-verify=false", image_id, f"{host}/alice/podman-{tag}:v1")
        podman("logout", host)
    with site.client_for("bob", f"repository:{app}:pull") as bob:
        assert json.loads(bob.request("GET", f"/v2/{app}/tags/list").text)["tags"] == ["v1"]


def _oras_login(client: Any, user: str, password: str, host: str, config: Path) -> None:
    # oras-py's login first tries a Docker engine's socket, which it leaves unclosed when there
    # is no engine: collect that socket here, with its warning silenced, not in a later test.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        client.login(user, password, tls_verify=False, hostname=host, config_path=str(config))
        gc.collect()


@pytest.mark.clients
def test_oras_login_and_pull(site: Site, tag: str, tmp_path: Path) -> None:
    """oras-py logs in and pulls a private artifact through the token flow.

    Pushing is left to the other clients: oras-py 0.2 keeps one token per client, fetched for
    the scope of the first challenge (pull, for the HEAD that starts a push), and does not ask
    again when a later request needs push, so its pushes fail under any token-auth registry.
    """
    oras_client = pytest.importorskip("oras.client", reason="pip install oras (the test extra)")
    host = host_of(site.url)
    repo = f"alice/oras-{tag}"
    notes = f"artifact of {repo}\n".encode()
    empty = b"{}"
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "artifactType": "application/vnd.example.notes.v1",
            "config": {
                "mediaType": "application/vnd.oci.empty.v1+json",
                "digest": "sha256:" + hashlib.sha256(empty).hexdigest(),
                "size": len(empty),
            },
            "layers": [
                {
                    "mediaType": "text/plain",
                    "digest": "sha256:" + hashlib.sha256(notes).hexdigest(),
                    "size": len(notes),
                    "annotations": {"org.opencontainers.image.title": "notes.txt"},
                }
            ],
        }
    ).encode()
    with site.client_for("alice", f"repository:{repo}:pull,push") as alice:
        alice.push_blob(repo, empty)
        alice.push_blob(repo, notes)
        assert alice.put_manifest(repo, "v1", manifest).status_code == 201

    target = f"{host}/{repo}:v1"
    oras = oras_client.OrasClient(hostname=host, insecure=True)
    _oras_login(oras, "alice", "wonderland", host, tmp_path / "alice.json")
    pulled = oras.pull(target=target, outdir=str(tmp_path / "out"))
    assert [Path(path).name for path in pulled] == ["notes.txt"]
    assert (tmp_path / "out" / "notes.txt").read_bytes() == notes
    # Private: neither another login nor an anonymous client reaches it.
    bob = oras_client.OrasClient(hostname=host, insecure=True)
    _oras_login(bob, "bob", "builder", host, tmp_path / "bob.json")
    for client, name in (
        (bob, "bob"),
        (oras_client.OrasClient(hostname=host, insecure=True), "anon"),
    ):
        with pytest.raises(Exception, match=r"(?i)unauthorized|denied|401|403|not found|404"):
            client.pull(target=target, outdir=str(tmp_path / name))
        assert not (tmp_path / name / "notes.txt").exists()
