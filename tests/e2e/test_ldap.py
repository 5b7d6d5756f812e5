"""LDAP logins over real HTTP: a ``dockyard serve`` process with ``auth.builtin.ldap`` pointed
at a private slapd (StartTLS, the test CA), its token server, pushes that the directory's
groups allow, a directory that is down, and skopeo pushing as a directory user. The servers
here configure no signing key: the one generated in the data directory is used."""

from __future__ import annotations

import base64
import secrets
import socket
import stat
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest

from auth.slapd import PASSWORDS, Slapd, ldap_options, slapd_server
from dockyard.auth.builtin import GENERATED_KEY
from dockyard.identity.base import Permission, TeamSubject
from dockyard.identity.external import EXTERNAL_PASSWORD

from .clients import CommandFailed, Skopeo, host_of
from .conftest import DISTRIBUTION, ServerFactory, _factory
from .images import build_image, write_layout
from .registry import assert_error
from .test_builtin_auth import Site, _add_user

pytestmark = pytest.mark.skipif(DISTRIBUTION, reason="auth.builtin is Dockyard's own")

LOCAL = {"root": "toor", "bob": "local-bob"}


@pytest.fixture(scope="module")
def slapd(
    tmp_path_factory: pytest.TempPathFactory, unused_tcp_port_factory: Callable[[], int]
) -> Iterator[Slapd]:
    yield from slapd_server(tmp_path_factory.mktemp("slapd"), unused_tcp_port_factory)


def _ldap_config(slapd: Slapd, **overrides: Any) -> dict[str, Any]:
    ldap = ldap_options(slapd, **overrides)
    return {"auth": {"builtin": {"maxfailuresperaccount": 3, "ldap": ldap}}}


def _start(factory: ServerFactory, config: dict[str, Any]) -> Site:
    """A server with the local users, and acme whose developers may push to acme/*."""
    server = factory(config, run=False)
    for user, password in LOCAL.items():
        _add_user(server, user, password, *(["--admin"] if user == "root" else []))
    site = Site(server)

    async def organization(store: Any) -> None:
        await store.create_organization("acme", owner="root")
        await store.create_team("acme", "developers")
        await store.grant("acme/*", TeamSubject("acme", "developers"), Permission.WRITE)

    site.identity(organization)
    server.start()
    return site


@pytest.fixture(scope="module")
def site(
    slapd: Slapd,
    tmp_path_factory: pytest.TempPathFactory,
    unused_tcp_port_factory: Callable[[], int],
) -> Iterator[Site]:
    factory = _factory(lambda: tmp_path_factory.mktemp("ldap-registry"), unused_tcp_port_factory)
    start = next(factory)
    yield _start(start, _ldap_config(slapd))
    factory.close()


def _basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def _token(site: Site, user: str, password: str, *scopes: str) -> httpx.Response:
    query = {"service": "dockyard", "scope": list(scopes)}
    return httpx.get(f"{site.url}/token", params=query, headers=_basic(user, password), timeout=30)


def _claims(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    claims: dict[str, Any] = jwt.decode(
        response.json()["token"], options={"verify_signature": False}
    )
    return claims


@pytest.fixture
def tag() -> str:
    return secrets.token_hex(3)


def test_login_through_the_token_server(site: Site, tag: str) -> None:
    claims = _claims(_token(site, "alice", PASSWORDS["alice"], f"repository:alice/app-{tag}:push"))
    assert claims["sub"] == "alice"
    # Her own namespace is hers, as a local user's would be.
    assert claims["access"] == [
        {"type": "repository", "name": f"alice/app-{tag}", "actions": ["push"]}
    ]
    credentials = site.identity(lambda store: store.credentials("alice"))
    assert credentials is not None
    assert credentials.password_hash == EXTERNAL_PASSWORD


@pytest.mark.parametrize(
    ("user", "password"),
    [
        ("alice", "wrong"),
        # eve has this password, outside the user search base.
        ("eve", PASSWORDS["eve"]),
        # An "unauthenticated bind", which this slapd accepts.
        ("alice", ""),
        ("*", PASSWORDS["alice"]),
        # bob is a local account: the directory's bob does not take it over.
        ("bob", PASSWORDS["bob"]),
    ],
)
def test_refused_logins(site: Site, user: str, password: str) -> None:
    response = _token(site, user, password)
    assert_error(response, 401, "UNAUTHORIZED")
    assert response.headers["WWW-Authenticate"].startswith("Basic ")


def test_management_api_takes_directory_passwords(site: Site) -> None:
    me = httpx.get(f"{site.url}/api/v1/user", headers=_basic("alice", PASSWORDS["alice"]))
    assert me.status_code == 200, me.text
    assert me.json()["name"] == "alice"
    wrong = httpx.get(f"{site.url}/api/v1/user", headers=_basic("alice", "wrong"))
    assert_error(wrong, 401, "UNAUTHORIZED")


def test_local_users_still_log_in(site: Site) -> None:
    assert _claims(_token(site, "bob", LOCAL["bob"]))["sub"] == "bob"
    assert _claims(_token(site, "root", LOCAL["root"]))["sub"] == "root"


def test_group_maps_to_a_team_that_may_push(site: Site, tag: str) -> None:
    app = f"acme/app-{tag}"
    scope = f"repository:{app}:pull,push"
    carol = _claims(_token(site, "carol", PASSWORDS["Carol"], scope))
    assert carol["sub"] == "carol"
    assert carol["access"][0]["actions"] == ["pull", "push"]
    assert site.identity(lambda store: store.team_members("acme", "developers")) == ["carol"]
    second = _token(site, "carol", PASSWORDS["Carol"], scope)
    assert _claims(second)["access"][0]["actions"] == ["pull", "push"], _claims(second)
    with site.client(second.json()["token"]) as client:
        image = client.push_image(app, "v1")
        assert client.get_manifest(app, "v1").status_code == 200
    # dave is in the directory but not in the group: no push, and the push is refused.
    dave = _token(site, "dave", PASSWORDS["dave"], scope)
    assert _claims(dave)["access"][0]["actions"] == []
    with site.client(dave.json()["token"]) as client:
        response = client.request(
            "POST", f"/v2/{app}/blobs/uploads/", headers={"Content-Length": "0"}
        )
        assert_error(response, 401, "UNAUTHORIZED")
        assert_error(client.get_manifest(app, image.digest), 401, "UNAUTHORIZED")


def test_rate_limit_covers_directory_logins(site: Site) -> None:
    for _ in range(3):
        assert_error(_token(site, "dave", "wrong"), 401, "UNAUTHORIZED")
    throttled = _token(site, "dave", PASSWORDS["dave"])
    assert_error(throttled, 429, "TOOMANYREQUESTS")
    assert int(throttled.headers["Retry-After"]) > 0


def test_logins_are_audited(site: Site) -> None:
    _claims(_token(site, "alice", PASSWORDS["alice"]))
    assert_error(_token(site, "alice", "wrong"), 401, "UNAUTHORIZED")
    events = site.identity(lambda store: store.audit_events(actor="alice"))
    outcomes = [(e.outcome, e.detail) for e in events if e.action == "login"]
    assert ("success", "ldap") in outcomes
    assert ("failure", None) in outcomes


def test_generated_signing_key(site: Site) -> None:
    path = site.server.root / GENERATED_KEY
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    jwks = httpx.get(f"{site.url}/token/jwks.json").json()
    assert [key["alg"] for key in jwks["keys"]] == ["ES256"]
    # Both workers sign and verify with the one key: every request with the token is let in.
    token = _token(site, "bob", LOCAL["bob"]).json()["token"]
    with site.client(token) as client:
        assert all(client.request("GET", "/v2/").status_code == 200 for _ in range(20))
    for _ in range(10):
        fresh = _token(site, "bob", LOCAL["bob"]).json()["token"]
        assert jwt.get_unverified_header(fresh)["kid"] == jwks["keys"][0]["kid"]


def test_generated_key_survives_a_restart(site: Site) -> None:
    token = _token(site, "alice", PASSWORDS["alice"]).json()["token"]
    kid = jwt.get_unverified_header(token)["kid"]
    site.server.restart()
    with site.client(token) as client:
        assert client.request("GET", "/v2/").status_code == 200
    again = _token(site, "alice", PASSWORDS["alice"]).json()["token"]
    assert jwt.get_unverified_header(again)["kid"] == kid


def test_directory_down_is_a_clean_503(slapd: Slapd, registry_factory: ServerFactory) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    server = registry_factory(_ldap_config(slapd, url=f"ldap://127.0.0.1:{closed}"))
    site = Site(server)
    response = _token(site, "alice", PASSWORDS["alice"])
    errors = assert_error(response, 503, "UNAVAILABLE")
    assert "directory" in errors[0]["message"]
    assert response.headers["Retry-After"]
    # The cause is in the server's log for the operator.
    assert "user directory is unavailable" in server.stderr()
    assert f"127.0.0.1:{closed}" in server.stderr()
    # The management API, which checks passwords too, answers the same.
    managed = httpx.get(f"{site.url}/api/v1/user", headers=_basic("alice", PASSWORDS["alice"]))
    assert_error(managed, 503, "UNAVAILABLE")
    # Anonymous tokens are still issued.
    anonymous = httpx.get(f"{site.url}/token", params={"service": "dockyard"}, timeout=30)
    assert anonymous.status_code == 200


@pytest.mark.clients
def test_skopeo_pushes_as_a_directory_user(site: Site, tag: str, tmp_path: Path) -> None:
    skopeo = Skopeo(host_of(site.url), tmp_path / "skopeo")
    app = f"acme/skopeo-{tag}"
    image = build_image([{"etc/motd": f"hello from {app}\n".encode()}])
    layout = write_layout(tmp_path / "layout", {"v1": image})
    source, dest = f"oci:{layout}:v1", skopeo.ref(app, "v1")
    with pytest.raises(CommandFailed):
        skopeo.copy(source, dest, "--dest-creds", "carol:wrong")
    with pytest.raises(CommandFailed):
        skopeo.copy(source, dest, "--dest-creds", f"dave:{PASSWORDS['dave']}")
    skopeo.copy(source, dest, "--dest-creds", f"carol:{PASSWORDS['Carol']}")
    assert skopeo.inspect(dest, "--creds", f"carol:{PASSWORDS['Carol']}")["Digest"] == image.digest
