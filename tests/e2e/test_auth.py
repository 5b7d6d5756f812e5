"""Access control over real HTTP: ``auth.htpasswd`` (Basic) and ``auth.token`` (bearer tokens
from a token server the test runs), with httpx and with the real clients (skopeo, podman).

The token server here is a real one in miniature: ``GET /token?service=&scope=...`` with Basic
credentials answers ``{"token": ...}``, granting each user what its policy allows of what was
asked, as the Docker token specification describes.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import bcrypt
import httpx
import pytest

from auth.issuer import ISSUER, SERVICE, Issuer, SigningKey
from dockyard.auth.scope import parse_scope

from .clients import CommandFailed, Podman, Skopeo, host_of
from .conftest import DISTRIBUTION, RegistryServer, ServerFactory, _factory
from .images import Image, build_image, write_layout
from .registry import RegistryClient, assert_error, digest_of

REALM = "Dockyard test realm"


def _image(repo: str) -> Image:
    return build_image([{"etc/motd": f"hello from {repo}\n".encode(), "bin": os.urandom(4096)}])


def _htpasswd_line(user: str, password: str) -> str:
    return f"{user}:{bcrypt.hashpw(password.encode(), bcrypt.gensalt(5)).decode()}\n"


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


@pytest.fixture(scope="module")
def module_factory(
    tmp_path_factory: pytest.TempPathFactory, unused_tcp_port_factory: Callable[[], int]
) -> Iterator[ServerFactory]:
    """Servers shared by a module's tests (which use distinct repositories)."""
    yield from _factory(lambda: tmp_path_factory.mktemp("auth"), unused_tcp_port_factory)


# htpasswd ---------------------------------------------------------------------------------------


@dataclass
class BasicSetup:
    server: RegistryServer
    path: Path

    def client(self, user: str | None = None, password: str = "") -> RegistryClient:
        client = self.server.client()
        if user is not None:
            client.http.auth = (user, password)
        return client


def _basic_setup(factory: ServerFactory, path: Path) -> BasicSetup:
    path.write_text(_htpasswd_line("alice", "wonderland") + _htpasswd_line("bob", "builder"))
    server = factory({"auth": {"htpasswd": {"realm": REALM, "path": str(path)}}})
    return BasicSetup(server, path)


@pytest.fixture(scope="module")
def basic_registry(
    module_factory: ServerFactory, tmp_path_factory: pytest.TempPathFactory
) -> BasicSetup:
    return _basic_setup(module_factory, tmp_path_factory.mktemp("htpasswd") / "htpasswd")


def _assert_basic_challenge(response: httpx.Response) -> None:
    assert_error(response, 401, "UNAUTHORIZED")
    assert response.headers["WWW-Authenticate"] == f'Basic realm="{REALM}"'
    assert response.headers["Content-Type"].startswith("application/json")


def test_htpasswd_without_credentials_is_challenged(basic_registry: BasicSetup, repo: str) -> None:
    with basic_registry.client() as client:
        _assert_basic_challenge(client.request("GET", "/v2/"))
        _assert_basic_challenge(client.get_manifest(repo, "latest"))
        _assert_basic_challenge(client.request("GET", "/v2/_catalog"))
        _assert_basic_challenge(client.request("POST", f"/v2/{repo}/blobs/uploads/"))


BAD_AUTHORIZATIONS = [
    _basic("alice", "wrong"),
    _basic("mallory", "wonderland"),
    _basic("alice", ""),
    "Basic !!!not-base64!!!",
    "Basic " + base64.b64encode(b"no-colon").decode(),
    "Basic " + base64.b64encode(b"\xff\xfe:\xfd").decode(),
    "Bearer abc.def.ghi",
    "Basic",
]


def test_htpasswd_bad_credentials_are_refused(basic_registry: BasicSetup, repo: str) -> None:
    with basic_registry.client() as client:
        for authorization in BAD_AUTHORIZATIONS:
            response = client.request(
                "GET", f"/v2/{repo}/tags/list", headers={"Authorization": authorization}
            )
            _assert_basic_challenge(response)


def test_htpasswd_right_credentials_push_and_pull(basic_registry: BasicSetup, repo: str) -> None:
    with basic_registry.client("alice", "wonderland") as alice:
        assert alice.request("GET", "/v2/").status_code == 200
        image = alice.push_image(repo, "v1")
    with basic_registry.client("bob", "builder") as bob:
        response = bob.get_manifest(repo, "v1")
        assert response.status_code == 200, response.text
        assert response.content == image.body
        for digest, data in image.blobs.items():
            assert bob.get_blob(repo, digest).content == data
        catalog = bob.request("GET", "/v2/_catalog")
        assert catalog.status_code == 200
        assert repo in catalog.json()["repositories"]
    with basic_registry.client("bob", "wrong") as impostor:
        _assert_basic_challenge(impostor.get_manifest(repo, "v1"))


@pytest.mark.skipif(DISTRIBUTION, reason="Distribution 2.8 reads the htpasswd file once")
def test_htpasswd_file_edited_while_running(
    registry_factory: ServerFactory, tmp_path: Path, repo: str
) -> None:
    basic_registry = _basic_setup(registry_factory, tmp_path / "htpasswd")
    with basic_registry.client("carol", "singer") as carol:
        _assert_basic_challenge(carol.request("GET", "/v2/"))
        with basic_registry.path.open("a") as out:
            out.write(_htpasswd_line("carol", "singer"))
        # Every worker sees the change on its next request.
        for _ in range(6):
            assert carol.request("GET", "/v2/").status_code == 200
        carol.push_image(repo, "by-carol")
    basic_registry.path.write_text(_htpasswd_line("alice", "wonderland"))
    with basic_registry.client("carol", "singer") as carol:
        for _ in range(6):
            _assert_basic_challenge(carol.request("GET", "/v2/"))


@pytest.mark.skipif(DISTRIBUTION, reason="Distribution 2.8 reads the file at the first request")
def test_htpasswd_invalid_file_refuses_to_start(
    registry_factory: ServerFactory, tmp_path: Path
) -> None:
    path = tmp_path / "htpasswd"
    path.write_text("# users\nalice-without-a-hash\n")
    server = registry_factory(
        {"auth": {"htpasswd": {"realm": REALM, "path": str(path)}}}, run=False
    )
    with pytest.raises(pytest.fail.Exception, match=r"exited at start-up[\s\S]*line 2"):
        server.start()


def test_htpasswd_missing_file_is_created_with_a_logged_password(
    registry_factory: ServerFactory, tmp_path: Path
) -> None:
    path = tmp_path / "auth" / "htpasswd"
    server = registry_factory({"auth": {"htpasswd": {"realm": REALM, "path": str(path)}}})
    lines = [line for line in path.read_text().splitlines() if line.strip()]
    assert len(lines) == 1
    assert lines[0].startswith("docker:$2")
    logged = server.stderr_path.read_text() + server.stdout_path.read_text()
    passwords = set(re.findall(r"password[ =]\"?([A-Za-z0-9_-]{32,})", logged))
    assert len(passwords) == 1, logged[-2000:]
    with server.client() as client:
        client.http.auth = ("docker", passwords.pop())
        assert client.request("GET", "/v2/").status_code == 200


@pytest.mark.clients
def test_htpasswd_with_skopeo(basic_registry: BasicSetup, repo: str, tmp_path: Path) -> None:
    skopeo = Skopeo(host_of(basic_registry.server.url), tmp_path / "skopeo")
    image = _image(repo)
    layout = write_layout(tmp_path / "layout", {"v1": image})
    with pytest.raises(CommandFailed):
        skopeo.copy(f"oci:{layout}:v1", skopeo.ref(repo, "v1"))
    with pytest.raises(CommandFailed):
        skopeo.copy(f"oci:{layout}:v1", skopeo.ref(repo, "v1"), "--dest-creds", "alice:wrong")
    skopeo.copy(f"oci:{layout}:v1", skopeo.ref(repo, "v1"), "--dest-creds", "alice:wonderland")
    inspected = skopeo.inspect(skopeo.ref(repo, "v1"), "--creds", "bob:builder")
    assert inspected["Digest"] == image.digest
    with basic_registry.client("alice", "wonderland") as alice:
        assert alice.get_manifest(repo, "v1").content == image.manifest.data


@pytest.mark.clients
def test_htpasswd_with_podman_login(basic_registry: BasicSetup, repo: str, tmp_path: Path) -> None:
    host = host_of(basic_registry.server.url)
    with Podman.session(tmp_path / "podman") as podman:
        with pytest.raises(CommandFailed):
            podman("login", "--tls-verify=false", "-u", "alice", "-p", "wrong", host)
        podman("login", "--tls-verify=false", "-u", "alice", "-p", "wonderland", host)
        # The stored credentials are used by the next command.
        layout = write_layout(tmp_path / "layout", {"v1": _image(repo)})
        image_id = podman.text("pull", "--quiet", f"oci:{layout}:v1").splitlines()[-1]
        podman("push", "--tls-verify=false", image_id, f"{host}/{repo}:v1")
        podman("logout", host)
    with basic_registry.client("alice", "wonderland") as alice:
        assert alice.get_manifest(repo, "v1").status_code == 200


# token ------------------------------------------------------------------------------------------

Policy = Callable[[str, str, str], bool]
"""(user, resource type, resource name) -> may the user have what was asked."""


@dataclass
class TokenServer:
    """``GET /token`` behind Basic auth, minting with ``issuer``."""

    issuer: Issuer
    users: dict[str, str]
    policy: Policy
    requests: list[dict[str, list[str]]] = field(default_factory=list)
    url: str = ""

    def serve(self) -> Iterator[TokenServer]:
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                query = parse_qs(parts.query)
                outer.requests.append(query)
                user = outer.authenticate(self.headers.get("Authorization", ""))
                if parts.path != "/token" or user is None:
                    self.send_response(401 if user is None else 404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                scopes = [a for text in query.get("scope", []) for a in parse_scope(text)]
                grants = [
                    (a.type, a.name, sorted(a.actions))
                    for a in scopes
                    if outer.policy(user, a.type, a.name)
                ]
                token = outer.issuer.mint(grants, subject=user)
                body = json.dumps(
                    {
                        "token": token,
                        "access_token": token,
                        "expires_in": 300,
                        "issued_at": datetime.now(UTC).isoformat(),
                    }
                ).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{server.server_address[1]}/token"
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            server.shutdown()
            server.server_close()
            thread.join()

    def authenticate(self, header: str) -> str | None:
        scheme, _, encoded = header.partition(" ")
        if scheme.lower() != "basic":
            return None
        try:
            user, _, password = base64.b64decode(encoded).decode().partition(":")
        except ValueError:
            return None
        return user if self.users.get(user) == password and password else None


@dataclass
class TokenSetup:
    server: RegistryServer
    issuer: Issuer
    tokens: TokenServer

    def client(self, token: str | None = None) -> RegistryClient:
        client = self.server.client()
        if token is not None:
            client.http.headers["Authorization"] = f"Bearer {token}"
        return client

    def challenge(self, scope: str | None, error: str | None = None) -> str:
        value = f'Bearer realm="{self.tokens.url}",service="{SERVICE}"'
        if scope is not None:
            value += f',scope="{scope}"'
        if error is not None:
            value += f',error="{error}"'
        return value


@pytest.fixture(scope="module")
def signer() -> SigningKey:
    return SigningKey.create("ec")


@pytest.fixture(scope="module")
def token_registry(
    module_factory: ServerFactory, signer: SigningKey, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TokenSetup]:
    issuer = Issuer(signer)
    bundle = issuer.write_bundle(tmp_path_factory.mktemp("token") / "bundle.pem")

    def policy(user: str, kind: str, name: str) -> bool:
        # alice may do anything; bob only reads outside his own namespace.
        return user == "alice" or (kind == "repository" and name.startswith("e2e/"))

    tokens = TokenServer(issuer, {"alice": "wonderland", "bob": "builder"}, policy)
    with contextlib.contextmanager(tokens.serve)() as running:
        config = {
            "auth": {
                "token": {
                    "realm": running.url,
                    "service": SERVICE,
                    "issuer": ISSUER,
                    "rootcertbundle": str(bundle),
                }
            }
        }
        yield TokenSetup(module_factory(config), issuer, running)


def _sorted_actions(challenge: str) -> str:
    """The challenge with each scope's actions sorted (Distribution keeps them unordered)."""
    head, sep, rest = challenge.partition(',scope="')
    if not sep:
        return challenge
    scope, _, tail = rest.partition('"')
    scopes = []
    for item in scope.split(" "):
        resource, _, actions = item.rpartition(":")
        scopes.append(f"{resource}:{','.join(sorted(actions.split(',')))}")
    return f'{head},scope="{" ".join(scopes)}"{tail}'


def _check_challenge(response: httpx.Response, expected: str) -> None:
    assert_error(response, 401, "UNAUTHORIZED")
    challenge = response.headers["WWW-Authenticate"]
    assert (_sorted_actions(challenge) if DISTRIBUTION else challenge) == expected


def test_token_required_challenges_name_the_exact_scope(
    token_registry: TokenSetup, repo: str
) -> None:
    setup = token_registry
    with setup.client() as client:
        _check_challenge(client.request("GET", "/v2/"), setup.challenge(None))
        pull = setup.challenge(f"repository:{repo}:pull")
        _check_challenge(client.get_manifest(repo, "latest"), pull)
        _check_challenge(client.request("GET", f"/v2/{repo}/tags/list"), pull)
        _check_challenge(client.get_blob(repo, digest_of(b"x")), pull)
        push = setup.challenge(f"repository:{repo}:pull,push")
        _check_challenge(client.request("POST", f"/v2/{repo}/blobs/uploads/"), push)
        _check_challenge(client.put_manifest(repo, "v1", b"{}"), push)
        catalog = setup.challenge("registry:catalog:*")
        _check_challenge(client.request("GET", "/v2/_catalog"), catalog)


def test_token_grants_what_it_lists(token_registry: TokenSetup, repo: str) -> None:
    setup = token_registry
    full = setup.issuer.mint([("repository", repo, ["pull", "push"])])
    with setup.client(full) as client:
        assert client.request("GET", "/v2/").status_code == 200
        image = client.push_image(repo, "v1")
        assert client.get_manifest(repo, "v1").content == image.body
    pull_only = setup.issuer.mint([("repository", repo, ["pull"])])
    with setup.client(pull_only) as client:
        assert client.get_manifest(repo, "v1").status_code == 200
        _check_challenge(
            client.request("POST", f"/v2/{repo}/blobs/uploads/"),
            setup.challenge(f"repository:{repo}:pull,push", "insufficient_scope"),
        )
        _check_challenge(
            client.put_manifest(repo, "v2", image.body),
            setup.challenge(f"repository:{repo}:pull,push", "insufficient_scope"),
        )


def test_token_for_another_repository_is_refused(token_registry: TokenSetup, repo: str) -> None:
    setup = token_registry
    other = setup.issuer.mint([("repository", f"{repo}-other", ["pull", "push"])])
    with setup.client(other) as client:
        _check_challenge(
            client.get_manifest(repo, "latest"),
            setup.challenge(f"repository:{repo}:pull", "insufficient_scope"),
        )


def test_catalog_needs_registry_catalog_scope(token_registry: TokenSetup, repo: str) -> None:
    setup = token_registry
    repo_token = setup.issuer.mint([("repository", repo, ["*"])])
    with setup.client(repo_token) as client:
        client.push_image(repo, "v1")
        _check_challenge(
            client.request("GET", "/v2/_catalog"),
            setup.challenge("registry:catalog:*", "insufficient_scope"),
        )
    catalog_token = setup.issuer.mint([("registry", "catalog", ["*"])])
    with setup.client(catalog_token) as client:
        response = client.request("GET", "/v2/_catalog")
        assert response.status_code == 200
        assert repo in response.json()["repositories"]


def test_expired_and_forged_tokens_are_invalid(token_registry: TokenSetup, repo: str) -> None:
    setup = token_registry
    scope = [("repository", repo, ["pull"])]
    expected = setup.challenge(f"repository:{repo}:pull", "invalid_token")
    expired = setup.issuer.mint(scope, lifetime=-600)
    stranger = Issuer(SigningKey.create("ec")).mint(scope)
    wrong_service = Issuer(setup.issuer.signer, service="another-registry").mint(scope)
    for token in (expired, stranger, wrong_service, "not-a-token"):
        with setup.client(token) as client:
            _check_challenge(client.get_manifest(repo, "latest"), expected)


@pytest.mark.skipif(
    DISTRIBUTION, reason="Distribution asks for pull on the source and refuses the request"
)
def test_mount_from_an_uncovered_repository_falls_back_to_an_upload(
    token_registry: TokenSetup, repo: str
) -> None:
    setup = token_registry
    source, target = f"{repo}-source", f"{repo}-target"
    writer = setup.issuer.mint([("repository", source, ["pull", "push"])])
    with setup.client(writer) as client:
        digest = client.push_blob(source, b"layer to mount")
    narrow = setup.issuer.mint([("repository", target, ["pull", "push"])])
    with setup.client(narrow) as client:
        response = client.request(
            "POST", f"/v2/{target}/blobs/uploads/", params={"mount": digest, "from": source}
        )
        assert response.status_code == 202, response.text
        assert not client.blob_exists(target, digest)
    wide = setup.issuer.mint(
        [("repository", target, ["pull", "push"]), ("repository", source, ["pull"])]
    )
    with setup.client(wide) as client:
        response = client.request(
            "POST", f"/v2/{target}/blobs/uploads/", params={"mount": digest, "from": source}
        )
        assert response.status_code == 201, response.text
        assert client.blob_exists(target, digest)


@pytest.mark.clients
def test_skopeo_gets_tokens_from_the_realm(
    token_registry: TokenSetup, repo: str, tmp_path: Path
) -> None:
    setup = token_registry
    skopeo = Skopeo(host_of(setup.server.url), tmp_path / "skopeo")
    image = _image(repo)
    layout = write_layout(tmp_path / "layout", {"v1": image})
    source, dest = f"oci:{layout}:v1", skopeo.ref(repo, "v1")
    with pytest.raises(CommandFailed):
        skopeo.copy(source, dest, "--dest-creds", "alice:wrong")
    skopeo.copy(source, dest, "--dest-creds", "alice:wonderland")
    asked = [scope for query in setup.tokens.requests for scope in query.get("scope", [])]
    assert f"repository:{repo}:pull,push" in asked
    assert all(query.get("service") == [SERVICE] for query in setup.tokens.requests)
    # bob may read it, not write it.
    assert skopeo.inspect(dest, "--creds", "bob:builder")["Digest"] == image.digest
    with pytest.raises(CommandFailed):
        skopeo.copy(source, skopeo.ref("private/app", "v1"), "--dest-creds", "bob:builder")
    reader = setup.issuer.mint([("repository", repo, ["pull"])])
    with setup.client(reader) as client:
        assert client.get_manifest(repo, "v1").content == image.manifest.data
        for digest, data in image.blobs.items():
            assert client.get_blob(repo, digest).content == data


def test_token_cache_does_not_outlive_the_token(token_registry: TokenSetup, repo: str) -> None:
    setup = token_registry
    scope = [("repository", repo, ["pull"])]
    # exp in 1 s; Distribution's leeway of 60 s keeps it usable well past that, so use a
    # token already past exp by more than the leeway once it is 2 s old.
    almost = setup.issuer.mint(scope, lifetime=-58)
    with setup.client(almost) as client:
        for _ in range(4):  # both workers verify and remember it
            assert client.get_manifest(repo, "latest").status_code == 404
        time.sleep(2.5)
        _check_challenge(
            client.get_manifest(repo, "latest"),
            setup.challenge(f"repository:{repo}:pull", "invalid_token"),
        )
