"""Personal access tokens, robot accounts and the limit on failed logins, over real HTTP with
real clients: tokens made with ``dockyard token create`` and ``dockyard robot create`` are
used as passwords by skopeo and podman, and the audit log is read with ``dockyard audit``.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import jwt
import pytest
import yaml

from auth.builtin_setup import write_key
from dockyard.identity.base import Permission, TokenScope, UserSubject
from dockyard.identity.tokens import new_secret, secret_hash

from .clients import CommandFailed, Podman, Skopeo, host_of
from .conftest import DISTRIBUTION, ServerFactory, _factory
from .images import build_image, write_layout
from .registry import assert_error
from .test_builtin_auth import USERS, Site, _basic, _builtin_config, _start_site

pytestmark = pytest.mark.skipif(DISTRIBUTION, reason="auth.builtin is Dockyard's own")


def _dockyard(site: Site, *args: str) -> str:
    """A ``dockyard`` command on the server's config; its standard output."""
    server = site.server
    server.config_path.write_text(yaml.safe_dump(server.config))
    env = {k: v for k, v in os.environ.items() if not k.startswith("REGISTRY_")}
    env["DOCKYARD_CONFIG"] = str(server.config_path)
    done = subprocess.run(
        [sys.executable, "-m", "dockyard", *args],
        env=env,
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    return done.stdout.decode()


def _token_response(
    url: str, user: str, password: str, scope: str, *, source: str = "127.0.0.1"
) -> httpx.Response:
    transport = httpx.HTTPTransport(local_address=source)
    with httpx.Client(transport=transport, timeout=30) as http:
        return http.get(
            f"{url}/token",
            params=[("service", "dockyard"), ("scope", scope)],
            headers={"Authorization": _basic(user, password)},
        )


def _actions(response: httpx.Response) -> list[str]:
    assert response.status_code == 200, response.text
    token = response.json()["token"]
    claims = jwt.decode(token, options={"verify_signature": False})
    [access] = claims["access"]
    return list(access["actions"])


@pytest.fixture(scope="module")
def site(
    tmp_path_factory: pytest.TempPathFactory, unused_tcp_port_factory: Callable[[], int]
) -> Iterator[Site]:
    factory = _factory(lambda: tmp_path_factory.mktemp("tokens"), unused_tcp_port_factory)
    start = next(factory)
    key = write_key(tmp_path_factory.mktemp("keys") / "signing.pem")
    yield _start_site(start, _builtin_config(key))
    factory.close()


@pytest.fixture
def tag() -> str:
    return secrets.token_hex(3)


def _image(tmp_path: Path, text: str) -> tuple[str, str]:
    image = build_image([{"etc/motd": text.encode()}])
    layout = write_layout(tmp_path / "layout", {"v1": image})
    return f"oci:{layout}:v1", image.digest


# -- personal access tokens -------------------------------------------------------------------


def test_token_is_listed_and_scopes_cap_what_it_grants(site: Site, tag: str) -> None:
    read = _dockyard(site, "token", "create", "alice", "--name", f"r-{tag}", "--scope", "read")
    secret = read.strip()
    assert secret.startswith("dyt_")
    app = f"alice/capped-{tag}"
    scope = f"repository:{app}:pull,push,delete"
    assert sorted(_actions(_token_response(site.url, "alice", USERS["alice"], scope))) == [
        "delete",
        "pull",
        "push",
    ]
    assert _actions(_token_response(site.url, "alice", secret, scope)) == ["pull"]
    # Another user's name with alice's token is no login.
    assert_error(_token_response(site.url, "bob", secret, scope), 401, "UNAUTHORIZED")
    write = _dockyard(
        site,
        "token",
        "create",
        "alice",
        "--name",
        f"w-{tag}",
        "--scope",
        "write",
        "--expires",
        "30d",
    ).strip()
    assert sorted(_actions(_token_response(site.url, "alice", write, scope))) == ["pull", "push"]
    listed = {
        line.split("\t")[0]: line.split("\t")
        for line in _dockyard(site, "token", "list", "alice").splitlines()
    }
    assert listed[f"r-{tag}"][1] == "read"
    assert listed[f"r-{tag}"][3] == "-"
    assert listed[f"r-{tag}"][4] != "-"  # used just now
    expires = datetime.fromisoformat(listed[f"w-{tag}"][3])
    assert timedelta(days=29) < expires - datetime.now(UTC) <= timedelta(days=30)
    # No refresh token for a token login: it would outlive the token's revocation.
    oauth = httpx.post(
        f"{site.url}/token",
        data={
            "grant_type": "password",
            "username": "alice",
            "password": write,
            "service": "dockyard",
            "access_type": "offline",
            "scope": scope,
        },
    )
    assert oauth.status_code == 200, oauth.text
    assert "refresh_token" not in oauth.json()
    assert oauth.json()["scope"] == f"repository:{app}:pull,push"


@pytest.mark.clients
def test_skopeo_with_a_token_as_password(site: Site, tag: str, tmp_path: Path) -> None:
    skopeo = Skopeo(host_of(site.url), tmp_path / "skopeo")
    app = f"alice/tokened-{tag}"
    source, digest = _image(tmp_path, f"hello from {app}\n")
    dest = skopeo.ref(app, "v1")
    reader = _dockyard(site, "token", "create", "alice", "--name", f"ro-{tag}", "--scope", "read")
    writer = _dockyard(site, "token", "create", "alice", "--name", f"rw-{tag}", "--scope", "write")
    reader, writer = reader.strip(), writer.strip()
    with pytest.raises(CommandFailed):
        skopeo.copy(source, dest, "--dest-creds", f"alice:{reader}")
    skopeo.copy(source, dest, "--dest-creds", f"alice:{writer}")
    assert skopeo.inspect(dest, "--creds", f"alice:{reader}")["Digest"] == digest
    # Revoked: refused at once.
    _dockyard(site, "token", "revoke", "alice", f"ro-{tag}")
    with pytest.raises(CommandFailed) as revoked:
        skopeo.inspect(dest, "--creds", f"alice:{reader}")
    assert b"unauthorized" in revoked.value.completed.stderr.lower()
    # Expired: refused.
    expired = new_secret()
    site.identity(
        lambda store: store.create_access_token(
            "alice",
            f"old-{tag}",
            secret_hash(expired),
            frozenset({TokenScope.READ}),
            datetime.now(UTC) - timedelta(minutes=1),
        )
    )
    with pytest.raises(CommandFailed) as late:
        skopeo.inspect(dest, "--creds", f"alice:{expired}")
    assert b"unauthorized" in late.value.completed.stderr.lower()
    assert skopeo.inspect(dest, "--creds", f"alice:{writer}")["Digest"] == digest


@pytest.mark.clients
def test_podman_login_with_a_token(site: Site, tag: str, tmp_path: Path) -> None:
    host = host_of(site.url)
    token = _dockyard(site, "token", "create", "bob", "--name", f"p-{tag}", "--scope", "write")
    source, _ = _image(tmp_path, "podman")
    with Podman.session(tmp_path / "podman") as podman:
        podman("login", "--tls-verify=false", "-u", "bob", "-p", token.strip(), host)
        image_id = podman.text("pull", "--quiet", source).splitlines()[-1]
        podman("push", "--tls-verify=false", image_id, f"{host}/bob/podman-{tag}:v1")
        podman("logout", host)


# -- robots -----------------------------------------------------------------------------------


@pytest.mark.clients
def test_robot_pushes_to_its_organizations_repository(site: Site, tag: str, tmp_path: Path) -> None:
    org = f"acme{tag}"
    site.identity(lambda store: store.create_organization(org, owner="alice"))
    token = _dockyard(site, "robot", "create", org, "ci").strip()
    robot = f"{org}+ci"
    assert _dockyard(site, "robot", "list", org).split("\t")[0] == robot
    skopeo = Skopeo(host_of(site.url), tmp_path / "skopeo")
    source, digest = _image(tmp_path, f"built by {robot}\n")
    dest = skopeo.ref(f"{org}/app", "v1")
    # Nothing granted yet: the robot may not push.
    with pytest.raises(CommandFailed):
        skopeo.copy(source, dest, "--dest-creds", f"{robot}:{token}")
    site.identity(lambda store: store.grant(f"{org}/**", UserSubject(robot), Permission.WRITE))
    skopeo.copy(source, dest, "--dest-creds", f"{robot}:{token}")
    assert skopeo.inspect(dest, "--creds", f"{robot}:{token}")["Digest"] == digest
    # Only where granted, and never with a password.
    with pytest.raises(CommandFailed):
        skopeo.copy(
            source, skopeo.ref(f"alice/robot-{tag}", "v1"), "--dest-creds", f"{robot}:{token}"
        )
    assert_error(
        _token_response(site.url, robot, "", f"repository:{org}/app:pull"), 401, "UNAUTHORIZED"
    )
    _dockyard(site, "robot", "delete", org, "ci")
    with pytest.raises(CommandFailed):
        skopeo.inspect(dest, "--creds", f"{robot}:{token}")


# -- the limit on failed logins ---------------------------------------------------------------


def test_failures_are_limited_without_locking_the_user_out(
    registry_factory: ServerFactory, tmp_path: Path
) -> None:
    config = _builtin_config(write_key(tmp_path / "key.pem"))
    config["auth"]["builtin"].update(
        {"maxfailuresperaccount": 3, "maxfailuresperaddress": 5, "failurewindow": "10m"}
    )
    site = _start_site(registry_factory, config)
    scope = "repository:alice/app:pull"
    attacker, user = "127.0.0.2", "127.0.0.1"
    for _ in range(3):
        refused = _token_response(site.url, "alice", "guess", scope, source=attacker)
        assert_error(refused, 401, "UNAUTHORIZED")
    # Past the limit: 429 with Retry-After, even for the right password, from there.
    for password in ("guess", USERS["alice"]):
        limited = _token_response(site.url, "alice", password, scope, source=attacker)
        assert_error(limited, 429, "TOOMANYREQUESTS")
        assert 0 < int(limited.headers["Retry-After"]) <= 600
    # The user, from elsewhere, logs in.
    assert _token_response(site.url, "alice", USERS["alice"], scope, source=user).status_code == 200
    # The attacker's address is limited for every account once past its own limit.
    for name in ("bob", "root"):
        _token_response(site.url, name, "guess", scope, source=attacker)
    limited = _token_response(site.url, "bob", USERS["bob"], scope, source=attacker)
    assert_error(limited, 429, "TOOMANYREQUESTS")
    assert _token_response(site.url, "bob", USERS["bob"], scope, source=user).status_code == 200
    # Every attempt is in the audit log.
    lines = [json.loads(line) for line in _dockyard(site, "audit", "export").splitlines()]
    outcomes = [(e["actor"], e["client_address"], e["outcome"]) for e in lines]
    assert (
        outcomes[:5]
        == [("alice", attacker, "failure")] * 3 + [("alice", attacker, "throttled")] * 2
    )
    assert ("alice", user, "success") in outcomes
    listed = _dockyard(site, "audit", "list", "--actor", "bob", "--since", "1h").splitlines()
    assert [line.split("\t")[4] for line in listed] == ["failure", "throttled", "success"]
