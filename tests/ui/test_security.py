"""The UI's security over real HTTP: CSRF tokens, cookie flags, private repositories
invisible to those who may not see them, routes of the registry not shadowed."""

from __future__ import annotations

import base64
import json
import secrets
import ssl
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from auth.builtin_setup import write_key
from certificates import self_signed
from dockyard.ui.sessions import Session, SessionCodec
from e2e.conftest import _factory

from .conftest import USERS, Hub, csrf_of, hub_config


def create_repository(hub: Hub, user: str, name: str, visibility: str = "private") -> None:
    with hub.http() as client:
        hub.sign_in(client, user)
        csrf = csrf_of(client.get("/new").text)
        namespace, _, short = name.rpartition("/")
        response = client.post(
            "/new",
            data={
                "csrf": csrf,
                "namespace": namespace,
                "name": short,
                "visibility": visibility,
                "description": f"{short} for tests",
            },
        )
        assert response.status_code == 303, response.text
        assert response.headers["location"] == f"/r/{name}"


@pytest.fixture
def suffix() -> str:
    return secrets.token_hex(3)


# -- CSRF ------------------------------------------------------------------------------------------


def test_a_post_without_the_session_token_is_refused(hub: Hub, suffix: str) -> None:
    with hub.http() as client:
        hub.sign_in(client, "alice")
        for data in ({}, {"csrf": "forged"}):
            response = client.post("/organizations/new", data={"name": f"org{suffix}", **data})
            assert response.status_code == 403
            assert "did not come from this site" in response.text
        # Nothing was created.
        assert client.get(f"/u/org{suffix}").status_code == 404
        # The token of another session is no better.
        with hub.http() as other:
            hub.sign_in(other, "bob")
            foreign = csrf_of(other.get("/organizations/new").text)
        response = client.post("/organizations/new", data={"name": f"org{suffix}", "csrf": foreign})
        assert response.status_code == 403
        # With this session's token (as a field, or as htmx's header) it works.
        csrf = csrf_of(client.get("/organizations/new").text)
        response = client.post("/organizations/new", data={"name": f"org{suffix}", "csrf": csrf})
        assert response.status_code == 303
        response = client.post(
            "/organizations/new",
            data={"name": f"org2{suffix}"},
            headers={"X-CSRF-Token": csrf, "HX-Request": "true"},
        )
        assert response.status_code == 204
        assert response.headers["HX-Redirect"] == f"/u/org2{suffix}"


def test_signing_in_needs_the_token_and_gives_a_new_one(hub: Hub) -> None:
    with hub.http() as client:
        response = client.post("/login", data={"username": "alice", "password": USERS["alice"]})
        assert response.status_code == 403
        before = csrf_of(client.get("/login").text)
        response = client.post(
            "/login", data={"csrf": before, "username": "alice", "password": USERS["alice"]}
        )
        assert response.status_code == 303
        after = csrf_of(client.get("/new").text)
        assert after != before


def test_a_wrong_password_and_an_access_token_do_not_sign_in(hub: Hub) -> None:
    with hub.http() as client:
        csrf = csrf_of(client.get("/login").text)
        response = client.post(
            "/login", data={"csrf": csrf, "username": "alice", "password": "wrong"}
        )
        assert response.status_code == 401
        assert "Wrong user name or password" in response.text
        # A personal access token is for clients, not for the UI.
        hub.sign_in(client, "alice")
        csrf = csrf_of(client.get("/settings/tokens").text)
        created = client.post(
            "/settings/tokens",
            data={"csrf": csrf, "name": f"t{secrets.token_hex(3)}", "scopes": "read"},
        )
        assert created.status_code == 200
        secret = created.text.split('<code id="secret">')[1].split("<")[0]
    with hub.http() as fresh:
        csrf = csrf_of(fresh.get("/login").text)
        response = fresh.post(
            "/login", data={"csrf": csrf, "username": "alice", "password": secret}
        )
        assert response.status_code == 401
        assert "not an access token" in response.text


def test_sign_up_when_the_config_allows_it(hub: Hub) -> None:
    name = f"newcomer{secrets.token_hex(3)}"
    with hub.http() as client:
        csrf = csrf_of(client.get("/signup").text)
        form = {"csrf": csrf, "username": name, "password": "long enough", "confirm": "long enough"}
        for bad, message in (
            ({"password": "short", "confirm": "short"}, "at least 8"),
            ({"confirm": "different!"}, "differ"),
            ({"username": "Not A Name"}, "invalid name"),
            ({"username": "alice"}, "taken"),
        ):
            response = client.post("/signup", data={**form, **bad})
            assert response.status_code == 400
            assert message in response.text
        response = client.post("/signup", data=form)
        assert response.status_code == 303
        assert f'data-test="me">{name}<' in client.get("/").text
    with hub.http() as root:
        hub.sign_in(root, "root")
        audit = root.get("/admin/audit", params={"action": "user.signup"}).text
        assert name in audit


# -- cookies ---------------------------------------------------------------------------------------


def _cookie_flags(response: httpx.Response) -> set[str]:
    header = response.headers["set-cookie"]
    assert header.startswith("dockyard_session=")
    return {part.strip().lower() for part in header.split(";")[1:]}


def test_the_session_cookie_is_httponly_and_samesite(hub: Hub) -> None:
    with hub.http() as client:
        flags = _cookie_flags(client.get("/login"))
        assert {"httponly", "samesite=lax", "path=/"} <= flags
        assert "secure" not in flags
    with hub.http() as client:
        # A header from a client that is no trusted proxy does not make the request TLS.
        flags = _cookie_flags(client.get("/login", headers={"X-Forwarded-Proto": "https"}))
        assert "secure" not in flags


def test_every_worker_honours_a_session(hub: Hub) -> None:
    # Two workers, no http.secret: each derives the same key from the token signing key.
    with hub.http() as client:
        hub.sign_in(client, "alice")
        cookie = client.cookies["dockyard_session"]
    # A new connection each time, so that both workers answer some.
    answers = {
        httpx.get(
            f"{hub.url}/settings/tokens", headers={"Cookie": f"dockyard_session={cookie}"}
        ).status_code
        for _ in range(30)
    }
    assert answers == {200}


def test_a_forged_or_tampered_cookie_is_no_session(hub: Hub) -> None:
    with hub.http() as client:
        hub.sign_in(client, "alice")
        cookie = client.cookies["dockyard_session"]
        assert client.get("/settings/tokens").status_code == 200
        _, _, rest = cookie.partition(".")
        # The same signature on another user's name; a session signed with another key.
        as_root = base64.urlsafe_b64encode(json.dumps({"u": "root", "c": "x"}).encode())
        forged = SessionCodec(b"not the key", 3600).dump(Session("root", "x"))
        for value in (as_root.decode().rstrip("=") + "." + rest, forged, cookie[:-2]):
            client.cookies.clear()
            client.cookies.set("dockyard_session", value)
            response = client.get("/settings/tokens")
            assert response.status_code == 303
            assert response.headers["location"].startswith("/login")


# -- visibility ------------------------------------------------------------------------------------


def test_a_private_repository_is_not_found_by_others(hub: Hub, suffix: str) -> None:
    private, public = f"alice/secret{suffix}", f"alice/open{suffix}"
    create_repository(hub, "alice", private)
    create_repository(hub, "alice", public, "public")
    paths = [
        f"/r/{private}",
        f"/r/{private}/-/settings",
        f"/r/{private}/-/tags/latest",
        f"/r/{private}/-/tags/latest/delete",
    ]
    with hub.http() as bob, hub.http() as anonymous:
        hub.sign_in(bob, "bob")
        for path in paths:
            assert bob.get(path).status_code == 404, path
        assert anonymous.get(f"/r/{private}").status_code == 404
        assert bob.get(f"/r/{public}").status_code == 200
        # Starring it answers as for a repository that does not exist.
        csrf = csrf_of(bob.get("/").text)
        assert bob.post(f"/r/{private}/-/star", data={"csrf": csrf}).status_code == 404
        assert bob.post(f"/r/nobody/none{suffix}/-/star", data={"csrf": csrf}).status_code == 404
        # Search, suggestions and the user's page list the public one only.
        for client in (bob, anonymous):
            found = client.get("/search", params={"q": suffix}).text
            assert f"/r/{public}" in found
            assert private not in found
            assert ">1 repository<" in found
            suggested = client.get("/search/suggest", params={"q": suffix}).text
            assert public in suggested
            assert private not in suggested
            assert private not in client.get("/u/alice").text
    with hub.http() as root:
        hub.sign_in(root, "root")
        assert root.get(f"/r/{private}").status_code == 200
    with hub.http() as alice:
        hub.sign_in(alice, "alice")
        assert private in alice.get("/search/suggest", params={"q": suffix}).text
        # Starred by its owner, it is "most starred" for the owner only.
        csrf = csrf_of(alice.get(f"/r/{private}").text)
        for name in (private, public):
            assert alice.post(f"/r/{name}/-/star", data={"csrf": csrf}).status_code == 303
        assert private in alice.get("/explore").text
    with hub.http() as anonymous:
        explore = anonymous.get("/explore").text
        assert public in explore
        assert private not in explore


def test_settings_change_who_may_see_a_repository(hub: Hub, suffix: str) -> None:
    name = f"alice/settled{suffix}"
    create_repository(hub, "alice", name)
    with hub.http() as alice, hub.http() as bob:
        hub.sign_in(alice, "alice")
        hub.sign_in(bob, "bob")
        assert bob.get(f"/r/{name}").status_code == 404
        csrf = csrf_of(alice.get(f"/r/{name}/-/settings").text)
        # A grant to bob lets him read it, and not administer it.
        response = alice.post(
            f"/r/{name}/-/permissions", data={"csrf": csrf, "subject": "bob", "permission": "read"}
        )
        assert response.status_code == 303
        assert bob.get(f"/r/{name}").status_code == 200
        assert bob.get(f"/r/{name}/-/settings").status_code == 403
        bad = alice.post(
            f"/r/{name}/-/permissions", data={"csrf": csrf, "subject": "bob", "permission": "all"}
        )
        assert bad.status_code == 400
        # Public, with a README: anyone sees both.
        response = alice.post(
            f"/r/{name}/-/settings",
            data={
                "csrf": csrf,
                "visibility": "public",
                "description": "now open",
                "readme": "*hi*",
            },
        )
        assert response.status_code == 303
        with hub.http() as anonymous:
            page = anonymous.get(f"/r/{name}")
            assert page.status_code == 200
            assert "<em>hi</em>" in page.text
            assert "now open" in page.text
        # Deleting needs the name typed.
        response = alice.post(f"/r/{name}/-/delete", data={"csrf": csrf, "confirm": "no"})
        assert response.status_code == 400
        response = alice.post(f"/r/{name}/-/delete", data={"csrf": csrf, "confirm": name})
        assert response.status_code == 303
        assert alice.get(f"/r/{name}").status_code == 404


def test_organization_members_and_teams(hub: Hub, suffix: str) -> None:
    org = f"crew{suffix}"
    with hub.http() as alice, hub.http() as bob:
        hub.sign_in(alice, "alice")
        hub.sign_in(bob, "bob")
        csrf = csrf_of(alice.get("/organizations/new").text)
        assert alice.post("/organizations/new", data={"csrf": csrf, "name": org}).status_code == 303
        steps = [
            (f"/u/{org}/members", {"user": "bob", "role": "member"}),
            (f"/u/{org}/teams", {"team": "builders"}),
            (f"/u/{org}/teams/builders/members", {"user": "bob"}),
        ]
        for path, data in steps:
            assert alice.post(path, data={"csrf": csrf, **data}).status_code == 303, path
        page = alice.get(f"/u/{org}").text
        assert "builders" in page
        assert "bob" in page
        # bob, a member, sees members and teams but may change nothing.
        bob_csrf = csrf_of(bob.get(f"/u/{org}").text)
        assert "builders" in bob.get(f"/u/{org}").text
        response = bob.post(f"/u/{org}/teams", data={"csrf": bob_csrf, "team": "mine"})
        assert response.status_code == 403
        response = alice.post(f"/u/{org}/teams/builders/members/bob/remove", data={"csrf": csrf})
        assert response.status_code == 303
        assert alice.post(f"/u/{org}/members/bob/remove", data={"csrf": csrf}).status_code == 303
        assert "builders" not in bob.get(f"/u/{org}").text


def test_v1_search_in_docker_hubs_format_honours_visibility(hub: Hub, suffix: str) -> None:
    private, public = f"alice/hidden{suffix}", f"alice/shown{suffix}"
    create_repository(hub, "alice", private)
    create_repository(hub, "alice", public, "public")
    anonymous = httpx.get(f"{hub.url}/v1/search", params={"q": suffix, "n": "10"})
    assert anonymous.status_code == 200
    assert anonymous.json() == {
        "num_results": 1,
        "num_pages": 1,
        "page": 1,
        "page_size": 10,
        "query": suffix,
        "results": [
            {
                "name": public,
                "description": f"shown{suffix} for tests",
                "star_count": 0,
                "is_official": False,
                "is_automated": False,
            }
        ],
    }
    bob = httpx.get(f"{hub.url}/v1/search", params={"q": suffix}, auth=("bob", USERS["bob"]))
    assert [r["name"] for r in bob.json()["results"]] == [public]
    alice = httpx.get(f"{hub.url}/v1/search", params={"q": suffix}, auth=("alice", USERS["alice"]))
    assert alice.json()["num_results"] == 2
    assert [r["name"] for r in alice.json()["results"]] == [private, public]
    # A token from the token server works as well.
    token = httpx.get(
        f"{hub.url}/token", params={"service": "dockyard"}, auth=("alice", USERS["alice"])
    ).json()["token"]
    bearer = httpx.get(
        f"{hub.url}/v1/search",
        params={"q": suffix, "n": "1", "page": "2"},
        headers={"Authorization": f"Bearer {token}"},
    ).json()
    assert (bearer["num_results"], bearer["num_pages"], bearer["page"]) == (2, 2, 2)
    assert [r["name"] for r in bearer["results"]] == [public]


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"n": "0"}, "PAGINATION_NUMBER_INVALID"),
        ({"n": "101"}, "PAGINATION_NUMBER_INVALID"),
        ({"page": "-1"}, "PAGINATION_NUMBER_INVALID"),
        ({"n": "x"}, "PAGINATION_NUMBER_INVALID"),
    ],
)
def test_v1_search_refuses_bad_paging(hub: Hub, params: dict[str, str], code: str) -> None:
    response = httpx.get(f"{hub.url}/v1/search", params={"q": "a", **params})
    assert response.status_code == 400
    assert response.json()["errors"][0]["code"] == code


def test_v1_search_refuses_wrong_credentials(hub: Hub) -> None:
    response = httpx.get(f"{hub.url}/v1/search", params={"q": "a"}, auth=("alice", "nope"))
    assert response.status_code == 401
    assert response.json()["errors"][0]["code"] == "UNAUTHORIZED"


# -- routes ----------------------------------------------------------------------------------------


def test_the_ui_shadows_none_of_the_registrys_paths(hub: Hub) -> None:
    response = httpx.get(f"{hub.url}/v2/")
    assert response.status_code == 401
    assert response.json()["errors"][0]["code"] == "UNAUTHORIZED"
    for path in ("/v2/nothing/here", "/token/x", "/api/v1/nothing-at-all", "/debug/vars", "/x"):
        response = httpx.get(f"{hub.url}{path}")
        assert response.status_code in (401, 404), path
        assert response.headers["content-type"].startswith("application/json"), path
    page = httpx.get(f"{hub.url}/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "script-src 'self'" in page.headers["content-security-policy"]
    static = httpx.get(f"{hub.url}/static/htmx.min.js")
    assert static.status_code == 200
    assert "htmx" in static.text[:2000]


def test_bad_input_gets_a_page_not_a_server_error(hub: Hub) -> None:
    with hub.http() as client:
        hub.sign_in(client, "alice")
        csrf = csrf_of(client.get("/new").text)
        for data in (
            {"namespace": "bob", "name": "mine", "visibility": "private"},
            {"namespace": "alice", "name": "BAD NAME", "visibility": "private"},
            {"namespace": "", "name": "x" * 300, "visibility": "public"},
        ):
            response = client.post("/new", data={"csrf": csrf, **data})
            assert 400 <= response.status_code < 500, (data, response.status_code)
            assert 'data-test="error"' in response.text
        assert client.get("/search", params={"page": "x"}).status_code == 400
        assert client.get("/search", params={"namespace": "../etc"}).status_code == 400
        assert client.get("/u/NOT_A_NAME").status_code == 404
        assert client.get("/r/a//b").status_code == 404
        huge = client.post(
            "/new",
            content=b"x" * (600 * 1024),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert huge.status_code == 413


# -- configuration ---------------------------------------------------------------------------------


@pytest.fixture
def start(
    tmp_path: Path, unused_tcp_port_factory: Callable[[], int]
) -> Iterator[Callable[..., Hub]]:
    counter = iter(range(100))

    def workdir() -> Path:
        path = tmp_path / f"server{next(counter)}"
        path.mkdir()
        return path

    factory = _factory(workdir, unused_tcp_port_factory)
    begin = next(factory)
    key = write_key(tmp_path / "key.pem")

    def run(extra: dict[str, Any] | None = None, **ui: object) -> Hub:
        return Hub(begin({**hub_config(key, **ui), **(extra or {})}))

    yield run
    factory.close()


def test_the_ui_can_be_turned_off(start: Callable[..., Hub]) -> None:
    off = start(enabled=False)
    response = httpx.get(f"{off.url}/")
    assert response.status_code == 404
    assert response.json()["errors"][0]["code"] == "NOT_FOUND"
    assert httpx.get(f"{off.url}/login").status_code == 404


def test_over_tls_the_cookie_is_secure_and_sign_up_may_be_closed(
    start: Callable[..., Hub], tmp_path: Path
) -> None:
    cert, key = self_signed(tmp_path)
    hub = start({"http": {"tls": {"certificate": str(cert), "key": str(key)}}}, signup=False)
    assert hub.url.startswith("https://")
    trusted = ssl.create_default_context(cafile=str(cert))
    with httpx.Client(base_url=hub.url, verify=trusted, timeout=30) as client:
        login = client.get("/login")
        assert {"secure", "httponly", "samesite=lax"} <= _cookie_flags(login)
        assert "Sign up" not in login.text
        assert client.get("/signup").status_code == 404
