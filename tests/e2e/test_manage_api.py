"""The management REST API (``/api/v1``) over real HTTP against a real ``dockyard serve`` with
``auth.builtin``: authentication, each resource, who may do what (a matrix), private
repositories staying invisible, the audit trail, and bad input answered in the registry's
JSON error format, never with a 500."""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from .conftest import DISTRIBUTION, ServerFactory, _factory
from .manage_site import ADMIN, Hub, basic, hub_fixture
from .registry import assert_error

pytestmark = pytest.mark.skipif(DISTRIBUTION, reason="the management API is Dockyard's own")


@pytest.fixture(scope="module")
def hub(
    tmp_path_factory: pytest.TempPathFactory, unused_tcp_port_factory: Callable[[], int]
) -> Iterator[Hub]:
    factory = _factory(lambda: tmp_path_factory.mktemp("manage"), unused_tcp_port_factory)
    # Garbage collected at once, so that a deleted repository's bytes are seen to go.
    gc = {"gc": {"interval": "1s", "grace": "1s"}}
    keys = tmp_path_factory.mktemp("keys")
    gen = hub_fixture(factory, keys, gc)
    yield next(gen)
    factory.close()


@pytest.fixture
def tag() -> str:
    return secrets.token_hex(3)


def _user(hub: Hub, prefix: str) -> str:
    return hub.add_user(f"{prefix}-{secrets.token_hex(3)}")


# -- the API exists only under auth.builtin -------------------------------------------------------


def test_without_builtin_auth_every_route_is_404(registry_factory: ServerFactory) -> None:
    server = registry_factory()
    for path in ("/api/v1/openapi.json", "/api/v1/users", "/api/v1/repositories/a/b"):
        response = httpx.get(server.url + path)
        assert_error(response, 404, "NOT_FOUND")
    assert_error(httpx.post(server.url + "/api/v1/users", json={}), 404, "NOT_FOUND")


def test_openapi_document_describes_every_operation(hub: Hub) -> None:
    document = httpx.get(f"{hub.url}/api/v1/openapi.json").json()
    assert document["openapi"] == "3.1.0"
    paths = document["paths"]
    assert set(paths["/api/v1/repositories/{name}"]) == {"get", "patch", "delete"}
    assert "post" in paths["/api/v1/organizations/{organization}/robots"]
    create = paths["/api/v1/repositories"]["post"]
    schema = create["requestBody"]["content"]["application/json"]["schema"]
    assert schema == {"$ref": "#/components/schemas/RepositoryCreate"}
    fields = document["components"]["schemas"]["RepositoryCreate"]["properties"]
    assert set(fields) == {"name", "visibility", "description"}
    ids = [op["operationId"] for item in paths.values() for op in item.values()]
    assert len(ids) == len(set(ids)) >= 30


# -- authentication -------------------------------------------------------------------------------


def test_authentication_schemes(hub: Hub) -> None:
    alice = _user(hub, "alice")
    password = hub.passwords[alice]
    answer = hub.request(None, "GET", "/user")
    assert_error(answer, 401, "UNAUTHORIZED")
    assert answer.headers["WWW-Authenticate"].startswith("Basic realm=")
    assert hub.ok(None, "GET", "/user", auth=basic(alice, password))["name"] == alice
    assert hub.ok(None, "GET", "/user", auth=basic(alice, hub.tokens[alice]))["name"] == alice
    assert hub.ok(alice, "GET", "/user")["name"] == alice  # Bearer <token>
    for bad in (
        basic(alice, "wrong"),
        basic("nobody-at-all", "x"),
        basic(ADMIN, hub.tokens[alice]),  # another user's token
        "Basic !!!not-base64",
        "Bearer not-a-token",
        "Bearer dyt_" + "x" * 43,
        "Bearer " + "a" * 5000,
        "Digest whatever",
    ):
        assert_error(hub.request(None, "GET", "/user", auth=bad), 401, "UNAUTHORIZED")
    # The registry's own JWTs are not accepted here.
    jwt = httpx.get(
        f"{hub.url}/token", params={"service": "dockyard"}, auth=(alice, password)
    ).json()["token"]
    assert_error(hub.request(None, "GET", "/user", auth=f"Bearer {jwt}"), 401, "UNAUTHORIZED")
    failures = hub.ok(ADMIN, "GET", "/audit", params={"action": "api.login", "actor": alice})
    assert {e["outcome"] for e in failures["events"]} == {"failure"}


def test_read_scoped_token_may_only_read(hub: Hub) -> None:
    alice = _user(hub, "alice")
    auth = basic(alice, hub.passwords[alice])
    created = hub.ok(
        None, "POST", "/user/tokens", auth=auth, json={"name": "ro", "scopes": ["read"]}
    )
    reader = f"Bearer {created['secret']}"
    assert hub.ok(None, "GET", "/user/tokens", auth=reader)
    answer = hub.request(None, "POST", "/repositories", auth=reader, json={"name": f"{alice}/x"})
    assert_error(answer, 403, "DENIED")


def test_expired_and_revoked_tokens_are_refused(hub: Hub) -> None:
    alice = _user(hub, "alice")
    auth = basic(alice, hub.passwords[alice])
    made = hub.ok(None, "POST", "/user/tokens", auth=auth, json={"name": "t", "scopes": ["write"]})
    bearer = f"Bearer {made['secret']}"
    assert hub.ok(None, "GET", "/user", auth=bearer)["name"] == alice
    listed = {t["name"]: t for t in hub.ok(alice, "GET", "/user/tokens")}
    assert listed["t"]["last_used_at"] is not None
    assert listed["t"]["scopes"] == ["write"]
    assert "secret" not in listed["t"]
    assert hub.request(alice, "DELETE", "/user/tokens/t").status_code == 204
    assert_error(hub.request(None, "GET", "/user", auth=bearer), 401, "UNAUTHORIZED")
    assert_error(hub.request(alice, "DELETE", "/user/tokens/t"), 404, "NOT_FOUND")
    # A token that has expired (set in the store: the API's shortest lifetime is an hour).
    server_db = hub.server.root / "dockyard.db"
    assert server_db.exists()
    short = hub.ok(
        None,
        "POST",
        "/user/tokens",
        auth=auth,
        json={"name": "s", "scopes": ["read"], "expires": "1h"},
    )
    assert short["token"]["expires_at"] is not None
    import sqlite3

    with sqlite3.connect(server_db) as db:
        db.execute(
            "UPDATE access_tokens SET expires_at = '2000-01-01 00:00:00.000000' WHERE name = 's'"
        )
    assert_error(
        hub.request(None, "GET", "/user", auth=f"Bearer {short['secret']}"), 401, "UNAUTHORIZED"
    )


# -- users ----------------------------------------------------------------------------------------


def test_users_managed_by_admins(hub: Hub, tag: str) -> None:
    alice = _user(hub, "alice")
    names = {u["name"] for u in hub.ok(ADMIN, "GET", "/users")}
    assert {ADMIN, alice} <= names
    assert_error(hub.request(alice, "GET", "/users"), 403, "DENIED")
    assert_error(
        hub.request(alice, "POST", "/users", json={"name": f"x-{tag}", "password": "p"}),
        403,
        "DENIED",
    )
    assert hub.ok(alice, "GET", f"/users/{ADMIN}")["is_admin"] is None  # an admin's to see
    assert_error(hub.request(alice, "GET", f"/users/ghost-{tag}"), 404, "NOT_FOUND")
    again = hub.request(ADMIN, "POST", "/users", json={"name": alice, "password": "p"})
    assert_error(again, 409, "CONFLICT")
    # Disabled: its token stops working at once; enabled again, it works again.
    assert hub.ok(ADMIN, "PATCH", f"/users/{alice}", json={"disabled": True})["disabled"] is True
    assert_error(hub.request(alice, "GET", "/user"), 401, "UNAUTHORIZED")
    hub.ok(ADMIN, "PATCH", f"/users/{alice}", json={"disabled": False})
    assert hub.ok(alice, "GET", "/user")["disabled"] is False
    # Made an admin, it may list users.
    assert hub.ok(ADMIN, "PATCH", f"/users/{alice}", json={"is_admin": True})["is_admin"]
    assert hub.ok(alice, "GET", "/users")
    assert_error(
        hub.request(ADMIN, "PATCH", f"/users/{ADMIN}", json={"disabled": True}), 403, "DENIED"
    )
    actions = {
        e["action"] for e in hub.ok(ADMIN, "GET", "/audit", params={"actor": ADMIN})["events"]
    }
    assert {"user.create", "user.disable", "user.enable", "user.admin"} <= actions


def test_change_own_password(hub: Hub) -> None:
    alice = _user(hub, "alice")
    old = hub.passwords[alice]
    wrong = hub.request(
        alice, "PUT", "/user/password", json={"current_password": "nope", "new_password": "n"}
    )
    assert_error(wrong, 403, "DENIED")
    done = hub.request(
        alice, "PUT", "/user/password", json={"current_password": old, "new_password": "fresh-one"}
    )
    assert done.status_code == 204
    assert_error(hub.request(None, "GET", "/user", auth=basic(alice, old)), 401, "UNAUTHORIZED")
    assert hub.ok(None, "GET", "/user", auth=basic(alice, "fresh-one"))["name"] == alice


# -- organizations, teams, robots -----------------------------------------------------------------


def test_organizations_teams_and_robots(hub: Hub, tag: str) -> None:
    alice, bob, eve = _user(hub, "alice"), _user(hub, "bob"), _user(hub, "eve")
    org = f"acme-{tag}"
    made = hub.ok(alice, "POST", "/organizations", json={"name": org})
    assert made == {**made, "name": org, "default_permission": "none"}
    assert hub.ok(alice, "GET", f"/organizations/{org}/members") == [
        {"user": alice, "role": "owner"}
    ]
    # A name is one namespace: no user, organization or second organization may take it.
    for who, path, body in (
        (bob, "/organizations", {"name": org}),
        (bob, "/organizations", {"name": alice}),
        (ADMIN, "/users", {"name": org, "password": "p"}),
    ):
        assert_error(hub.request(who, "POST", path, json=body), 409, "CONFLICT")
    # Only owners change it; members read it; others do neither.
    assert_error(
        hub.request(bob, "PUT", f"/organizations/{org}/members/{bob}", json={}), 403, "DENIED"
    )
    assert hub.ok(alice, "PUT", f"/organizations/{org}/members/{bob}", json={"role": "member"})
    assert hub.ok(bob, "GET", f"/organizations/{org}/members")
    assert_error(hub.request(eve, "GET", f"/organizations/{org}/members"), 403, "DENIED")
    assert_error(
        hub.request(bob, "POST", f"/organizations/{org}/teams", json={"name": "ci"}), 403, "DENIED"
    )
    hub.ok(alice, "POST", f"/organizations/{org}/teams", json={"name": "devs"})
    assert_error(
        hub.request(alice, "POST", f"/organizations/{org}/teams", json={"name": "devs"}),
        409,
        "CONFLICT",
    )
    team = hub.ok(alice, "POST", f"/organizations/{org}/teams/devs/members", json={"user": bob})
    assert team["members"] == [bob]
    # Only members of the organization join its teams.
    outsider = hub.request(
        alice, "POST", f"/organizations/{org}/teams/devs/members", json={"user": eve}
    )
    assert_error(outsider, 404, "NOT_FOUND")
    assert [t["name"] for t in hub.ok(bob, "GET", f"/organizations/{org}/teams")] == ["devs"]
    assert_error(hub.request(alice, "GET", f"/organizations/{org}/teams/nope"), 404, "NOT_FOUND")
    assert_error(hub.request(alice, "GET", f"/organizations/nope-{tag}"), 404, "NOT_FOUND")
    hub.ok(alice, "PATCH", f"/organizations/{org}", json={"default_permission": "read"})
    assert hub.ok(eve, "GET", f"/organizations/{org}")["default_permission"] == "read"
    # The last owner cannot leave.
    assert_error(
        hub.request(alice, "DELETE", f"/organizations/{org}/members/{alice}"), 403, "DENIED"
    )
    # Robots: the owner makes one; it logs in with its token, manages nothing of its own.
    robot = hub.ok(alice, "POST", f"/organizations/{org}/robots", json={"name": "ci"})
    assert robot["robot"]["name"] == f"{org}+ci"
    bearer = f"Bearer {robot['secret']}"
    me = hub.ok(None, "GET", "/user", auth=bearer)
    assert me["robot"] is True
    denied = hub.request(
        None, "POST", "/user/tokens", auth=bearer, json={"name": "x", "scopes": ["read"]}
    )
    assert_error(denied, 403, "DENIED")
    assert_error(hub.request(bob, "GET", f"/organizations/{org}/robots"), 403, "DENIED")
    assert [r["name"] for r in hub.ok(alice, "GET", f"/organizations/{org}/robots")] == [
        f"{org}+ci"
    ]
    assert hub.request(alice, "DELETE", f"/organizations/{org}/robots/ci").status_code == 204
    assert_error(hub.request(None, "GET", "/user", auth=bearer), 401, "UNAUTHORIZED")
    # Removing a member also removes it from the teams.
    assert hub.request(alice, "DELETE", f"/organizations/{org}/members/{bob}").status_code == 204
    assert hub.ok(alice, "GET", f"/organizations/{org}/teams/devs")["members"] == []
    actions = [
        e["action"] for e in hub.ok(ADMIN, "GET", "/audit", params={"actor": alice})["events"]
    ]
    for action in (
        "organization.create",
        "organization.member",
        "team.create",
        "team.member",
        "organization.default_permission",
        "robot.create",
        "robot.delete",
        "organization.member.remove",
    ):
        assert action in actions


# -- repositories: who may do what ----------------------------------------------------------------


def _status(response: httpx.Response) -> str:
    if response.status_code >= 400:
        return f"{response.status_code} {response.json()['errors'][0]['code']}"
    return str(response.status_code)


def test_repository_permission_matrix(hub: Hub, tag: str) -> None:
    owner, reader, writer, other = (_user(hub, p) for p in ("owner", "reader", "writer", "other"))
    org = f"corp-{tag}"
    hub.ok(owner, "POST", "/organizations", json={"name": org})
    for member in (reader, writer):
        hub.ok(owner, "PUT", f"/organizations/{org}/members/{member}", json={"role": "member"})
    for team, member, level in (("readers", reader, "read"), ("writers", writer, "write")):
        hub.ok(owner, "POST", f"/organizations/{org}/teams", json={"name": team})
        hub.ok(owner, "POST", f"/organizations/{org}/teams/{team}/members", json={"user": member})
        hub.ok(
            owner,
            "PUT",
            "/permissions",
            json={"pattern": f"{org}/**", "team": f"{org}/{team}", "permission": level},
        )
    private, public = f"{org}/private", f"{org}/public"
    hub.ok(owner, "POST", "/repositories", json={"name": private, "visibility": "private"})
    hub.ok(owner, "POST", "/repositories", json={"name": public, "visibility": "public"})
    missing = f"{org}/missing"
    callers: dict[str, str | None] = {
        "anonymous": None,
        "owner": owner,
        "reader": reader,
        "writer": writer,
        "other": other,
        "admin": ADMIN,
    }
    ok, unknown, denied, noauth = "200", "404 NAME_UNKNOWN", "403 DENIED", "401 UNAUTHORIZED"
    expected_get = {
        "anonymous": (noauth, noauth, noauth),
        "owner": (ok, ok, unknown),
        "reader": (ok, ok, unknown),
        "writer": (ok, ok, unknown),
        "other": (unknown, ok, unknown),
        "admin": (ok, ok, unknown),
    }
    expected_patch = {
        "anonymous": (noauth, noauth, noauth),
        "owner": (ok, ok, unknown),
        "reader": (denied, denied, unknown),
        "writer": (denied, denied, unknown),
        "other": (unknown, denied, unknown),
        "admin": (ok, ok, unknown),
    }
    found: dict[str, tuple[str, ...]] = {}
    changed: dict[str, tuple[str, ...]] = {}
    for label, who in callers.items():
        found[label] = tuple(
            _status(hub.request(who, "GET", f"/repositories/{name}"))
            for name in (private, public, missing)
        )
        changed[label] = tuple(
            _status(hub.request(who, "PATCH", f"/repositories/{name}", json={"description": label}))
            for name in (private, public, missing)
        )
    assert found == expected_get
    assert changed == expected_patch
    # The private repository and a missing one look exactly alike to an outsider.
    answers = [hub.request(other, "DELETE", f"/repositories/{name}") for name in (private, missing)]
    assert answers[0].text.replace(private, "N") == answers[1].text.replace(missing, "N")

    # The listing holds what the caller may see.
    def listed(who: str) -> set[str]:
        page = hub.ok(who, "GET", "/repositories", params={"namespace": org})
        return {r["name"] for r in page["repositories"]}

    assert listed(owner) == listed(reader) == listed(ADMIN) == {private, public}
    assert listed(other) == {public}
    assert hub.ok(reader, "GET", f"/repositories/{private}")["permission"] == "read"
    assert hub.ok(owner, "GET", f"/repositories/{private}")["permission"] == "admin"


def test_repository_creation_rules(hub: Hub, tag: str) -> None:
    alice, bob = _user(hub, "alice"), _user(hub, "bob")
    made = hub.ok(
        alice, "POST", "/repositories", json={"name": f"{alice}/app", "description": "mine"}
    )
    assert made["visibility"] == "private"  # the configured default
    assert made["description"] == "mine"
    assert made["namespace"] == alice
    assert not made["official"]
    for who, name, status, code in (
        (bob, f"{alice}/theirs", 403, "DENIED"),  # another user's namespace
        (bob, f"ghost-{tag}/app", 403, "DENIED"),  # nobody's namespace: the site's
        (bob, f"official-{tag}", 403, "DENIED"),  # the official namespace
        (alice, f"{alice}/app", 409, "CONFLICT"),
        (alice, f"{alice}/Bad Name", 400, "REQUEST_INVALID"),
        (alice, "", 400, "REQUEST_INVALID"),
    ):
        assert_error(hub.request(who, "POST", "/repositories", json={"name": name}), status, code)
    official = hub.ok(
        ADMIN, "POST", "/repositories", json={"name": f"official-{tag}", "visibility": "public"}
    )
    assert official["official"] is True
    assert official["namespace"] is None
    assert hub.ok(bob, "GET", f"/repositories/official-{tag}")["permission"] == "read"
    changed = hub.ok(
        alice,
        "PATCH",
        f"/repositories/{alice}/app",
        json={"visibility": "public", "description": ""},
    )
    assert changed["visibility"] == "public"
    assert changed["description"] is None
    events = hub.ok(ADMIN, "GET", "/audit", params={"repository": f"{alice}/app"})["events"]
    assert [e["action"] for e in events] == [
        "repository.create",
        "repository.visibility",
        "repository.description",
    ]


def test_permission_grants(hub: Hub, tag: str) -> None:
    alice, bob, eve = _user(hub, "alice"), _user(hub, "bob"), _user(hub, "eve")
    repository = f"{alice}/secret"
    hub.ok(alice, "POST", "/repositories", json={"name": repository})
    assert_error(hub.request(bob, "GET", f"/repositories/{repository}"), 404, "NAME_UNKNOWN")
    grant = {"pattern": repository, "user": bob, "permission": "read"}
    # Bob may not grant himself anything on a repository he cannot see.
    assert_error(hub.request(bob, "PUT", "/permissions", json=grant), 404, "NAME_UNKNOWN")
    assert hub.ok(alice, "PUT", "/permissions", json=grant) == {**grant, "team": None}
    assert hub.ok(bob, "GET", f"/repositories/{repository}")["permission"] == "read"
    # Seeing it is not administering it.
    assert_error(
        hub.request(bob, "PUT", "/permissions", json={**grant, "user": eve}), 403, "DENIED"
    )
    assert hub.ok(alice, "GET", "/permissions", params={"repository": repository}) == [
        {**grant, "team": None}
    ]
    # The registry's token server grants the pull too.
    token = httpx.get(
        f"{hub.url}/token",
        params={"service": "dockyard", "scope": f"repository:{repository}:pull,push"},
        auth=(bob, hub.tokens[bob]),
    ).json()["token"]
    import jwt

    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["access"][0]["actions"] == ["pull"]
    hub.ok(alice, "PUT", "/permissions", json={**grant, "permission": "none"})
    assert_error(hub.request(bob, "GET", f"/repositories/{repository}"), 404, "NAME_UNKNOWN")
    # Patterns: inside one's own namespace only (or an organization one owns).
    assert hub.ok(
        alice,
        "PUT",
        "/permissions",
        json={"pattern": f"{alice}/*", "user": bob, "permission": "write"},
    )
    assert hub.ok(bob, "GET", f"/repositories/{repository}")["permission"] == "write"
    for pattern in (f"{eve}/*", "**", f"*/{alice}"):
        bad = hub.request(
            alice,
            "PUT",
            "/permissions",
            json={"pattern": pattern, "user": bob, "permission": "read"},
        )
        assert_error(bad, 403, "DENIED")
    for body, status, code in (
        ({"pattern": repository, "permission": "read"}, 400, "REQUEST_INVALID"),
        (
            {"pattern": repository, "user": bob, "team": "a/b", "permission": "read"},
            400,
            "REQUEST_INVALID",
        ),
        ({"pattern": repository, "team": "nonsense", "permission": "read"}, 400, "REQUEST_INVALID"),
        ({"pattern": "Bad Pattern", "user": bob, "permission": "read"}, 400, "REQUEST_INVALID"),
        ({"pattern": repository, "user": bob, "permission": "owner"}, 400, "REQUEST_INVALID"),
        ({"pattern": repository, "user": f"ghost-{tag}", "permission": "read"}, 404, "NOT_FOUND"),
        (
            {"pattern": repository, "team": f"ghost-{tag}/devs", "permission": "read"},
            404,
            "NOT_FOUND",
        ),
    ):
        assert_error(hub.request(alice, "PUT", "/permissions", json=body), status, code)
    actions = [
        e["action"] for e in hub.ok(ADMIN, "GET", "/audit", params={"actor": alice})["events"]
    ]
    assert actions.count("permission.grant") == 2
    assert actions.count("permission.revoke") == 1


def test_delete_repository_removes_content_and_gc_reclaims_it(hub: Hub, tag: str) -> None:
    alice, bob = _user(hub, "alice"), _user(hub, "bob")
    repository = f"{alice}/doomed"
    token = httpx.get(
        f"{hub.url}/token",
        params={"service": "dockyard", "scope": f"repository:{repository}:pull,push"},
        auth=(alice, hub.tokens[alice]),
    ).json()["token"]
    with hub.server.client() as client:
        client.http.headers["Authorization"] = f"Bearer {token}"
        image = client.push_image(repository, "v1")
        assert client.get_manifest(repository, "v1").status_code == 200
    layer = next(digest for digest, data in image.blobs.items() if len(data) == 512)
    hex_digest = layer.split(":", 1)[1]
    blob_path = hub.server.root / "blobs" / "sha256" / hex_digest[:2] / hex_digest / "data"
    assert blob_path.exists()
    # Seen (pushed content, default private) and not deletable by others.
    assert hub.ok(alice, "GET", f"/repositories/{repository}")["visibility"] == "private"
    assert_error(hub.request(bob, "DELETE", f"/repositories/{repository}"), 404, "NAME_UNKNOWN")
    assert hub.request(alice, "DELETE", f"/repositories/{repository}").status_code == 204
    assert_error(hub.request(alice, "GET", f"/repositories/{repository}"), 404, "NAME_UNKNOWN")
    with hub.server.client() as client:
        client.http.headers["Authorization"] = f"Bearer {token}"
        assert client.get_manifest(repository, "v1").status_code == 404
        assert client.get_manifest(repository, image.digest).status_code == 404
    deadline = time.monotonic() + 30
    while blob_path.exists() and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not blob_path.exists(), "garbage collection did not reclaim the deleted layer"
    event = hub.ok(
        ADMIN, "GET", "/audit", params={"repository": repository, "action": "repository.delete"}
    )
    assert event["events"][0]["actor"] == alice


# -- the audit log --------------------------------------------------------------------------------


def test_audit_query_paging_and_export(hub: Hub) -> None:
    alice = _user(hub, "alice")
    for n in range(5):
        hub.ok(alice, "POST", "/repositories", json={"name": f"{alice}/r{n}"})
    where = {"actor": alice, "action": "repository.create"}
    seen: list[dict[str, Any]] = []
    after: int | None = None
    while True:
        params: dict[str, Any] = {**where, "limit": 2}
        if after is not None:
            params["after"] = after
        page = hub.ok(ADMIN, "GET", "/audit", params=params)
        seen += page["events"]
        after = page["next"]
        if after is None:
            break
    assert [e["repository"] for e in seen] == [f"{alice}/r{n}" for n in range(5)]
    exported = hub.request(ADMIN, "GET", "/audit/export", params=where)
    assert exported.headers["content-type"].startswith("application/x-ndjson")
    lines = [json.loads(line) for line in exported.text.splitlines()]
    assert lines == seen
    assert (
        hub.ok(ADMIN, "GET", "/audit", params={**where, "since": "2999-01-01T00:00:00Z"})["events"]
        == []
    )
    assert len(hub.ok(ADMIN, "GET", "/audit", params={**where, "since": "1h"})["events"]) == 5
    assert_error(hub.request(alice, "GET", "/audit"), 403, "DENIED")
    assert_error(hub.request(alice, "GET", "/audit/export"), 403, "DENIED")
    for params in ({"since": "yesterday"}, {"limit": "0"}, {"limit": "many"}, {"after": "-1"}):
        assert_error(hub.request(ADMIN, "GET", "/audit", params=params), 400, "REQUEST_INVALID")


# -- bad input ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"{not json", "malformed JSON"),
        (b"[1, 2]", "JSON object"),
        (b"", "JSON object"),
        (b"\xff\xfe", "malformed JSON"),
        (
            json.dumps({"name": "x", "password": "p", "is_admin": "yes"}).encode(),
            "invalid request body",
        ),
        (json.dumps({"name": 5, "password": "p"}).encode(), "invalid request body"),
        (json.dumps({"name": "x", "password": "p", "extra": 1}).encode(), "invalid request body"),
        (json.dumps({"name": "x" * 70, "password": "p"}).encode(), "invalid request body"),
        (b'{"name": "x", "password": "' + b"p" * 70000 + b'"}', "larger than"),
    ],
)
def test_bad_bodies_are_400(hub: Hub, content: bytes, problem: str) -> None:
    answer = hub.request(
        ADMIN, "POST", "/users", content=content, headers={"Content-Type": "application/json"}
    )
    assert_error(answer, 400, "REQUEST_INVALID")
    assert problem in answer.json()["errors"][0]["message"]


def test_bad_names_and_unknown_ids(hub: Hub, tag: str) -> None:
    for method, path, body, status, code in (
        ("POST", "/users", {"name": "Not A Name", "password": "p"}, 400, "REQUEST_INVALID"),
        ("POST", "/organizations", {"name": "a+b"}, 400, "REQUEST_INVALID"),
        ("PATCH", f"/users/ghost-{tag}", {"disabled": True}, 404, "NOT_FOUND"),
        ("GET", f"/organizations/ghost-{tag}/teams", None, 404, "NOT_FOUND"),
        ("DELETE", f"/organizations/ghost-{tag}/robots/ci", None, 404, "NOT_FOUND"),
        ("GET", f"/repositories/ghost-{tag}/x", None, 404, "NAME_UNKNOWN"),
        ("GET", "/repositories/..%2F..", None, 404, "NAME_UNKNOWN"),
        ("POST", "/user/tokens", {"name": "t", "scopes": []}, 400, "REQUEST_INVALID"),
        ("POST", "/user/tokens", {"name": "t", "scopes": ["all"]}, 400, "REQUEST_INVALID"),
        (
            "POST",
            "/user/tokens",
            {"name": "t", "scopes": ["read"], "expires": "soon"},
            400,
            "REQUEST_INVALID",
        ),
        ("GET", "/repositories?limit=100000", None, 400, "REQUEST_INVALID"),
        ("PUT", "/users", None, 405, "UNSUPPORTED"),
        ("GET", "/nothing-here", None, 404, "NOT_FOUND"),
    ):
        kwargs: dict[str, Any] = {"json": body} if body is not None else {}
        assert_error(hub.request(ADMIN, method, path, **kwargs), status, code)
