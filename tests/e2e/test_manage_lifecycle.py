"""Storage lifecycle in the management API over real HTTP against a real ``dockyard serve``
with ``auth.builtin``: who may do what (a matrix), private repositories staying invisible,
bad input answered in the registry's JSON error format, usage that is exact after pushes
(a blob shared by two repositories of a namespace counted once), pulls and pushers per tag,
and rules, quotas and retention set over the API taking effect on pushes; the same on
PostgreSQL in brief."""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from .conftest import DISTRIBUTION, _factory
from .manage_site import ADMIN, Hub, hub_fixture
from .registry import (
    OCI_CONFIG,
    OCI_LAYER,
    RegistryClient,
    assert_error,
    descriptor,
    digest_of,
    image_manifest,
)

pytestmark = pytest.mark.skipif(DISTRIBUTION, reason="the management API is Dockyard's own")

# No collector: usage must be what the pushes linked, not what a collection left. No scheduled
# retention: a pass in the server's first minute would race the tests' dry runs.
_QUIET: dict[str, Any] = {"gc": {"enabled": False}, "retention": {"enabled": False}}


@pytest.fixture(scope="module")
def hub(
    tmp_path_factory: pytest.TempPathFactory, unused_tcp_port_factory: Callable[[], int]
) -> Iterator[Hub]:
    factory = _factory(lambda: tmp_path_factory.mktemp("lifecycle-api"), unused_tcp_port_factory)
    yield from hub_fixture(factory, tmp_path_factory.mktemp("keys"), _QUIET)
    factory.close()


def _name(prefix: str) -> str:
    return f"{prefix}{secrets.token_hex(3)}"


def _client(hub: Hub, user: str, repository: str) -> RegistryClient:
    """A registry client holding ``user``'s pull and push token for ``repository``."""
    token = httpx.get(
        f"{hub.url}/token",
        params={"service": "dockyard", "scope": f"repository:{repository}:pull,push"},
        auth=(user, hub.tokens[user]),
        timeout=30,
    ).json()["token"]
    client = RegistryClient(hub.url)
    client.http.headers["Authorization"] = f"Bearer {token}"
    return client


def _push(client: RegistryClient, repository: str, tag: str, *layers: bytes) -> tuple[str, int]:
    """Push an image of ``layers``; its manifest digest and the bytes of its blobs."""
    config = json.dumps({"repository": repository, "tag": tag, "n": secrets.token_hex(4)}).encode()
    for blob in (config, *layers):
        client.push_blob(repository, blob)
    body = image_manifest(
        descriptor(OCI_CONFIG, config), [descriptor(OCI_LAYER, layer) for layer in layers]
    )
    return client.push_manifest(repository, tag, body), len(config) + sum(map(len, layers))


@pytest.fixture(scope="module")
def site(hub: Hub) -> dict[str, str]:
    """An organization with an owner, a member (default permission none), a user granted read
    on its private repository, an outsider; a private and a public repository, pushed to."""
    names = {role: hub.add_user(_name(role)) for role in ("owner", "member", "reader", "outsider")}
    org = _name("org")
    hub.ok(names["owner"], "POST", "/organizations", json={"name": org})
    hub.ok(names["owner"], "PUT", f"/organizations/{org}/members/{names['member']}", json={})
    private, public = f"{org}/secret", f"{org}/open"
    hub.ok(names["owner"], "POST", "/repositories", json={"name": private, "visibility": "private"})
    hub.ok(names["owner"], "POST", "/repositories", json={"name": public, "visibility": "public"})
    hub.ok(
        names["owner"],
        "PUT",
        "/permissions",
        json={"pattern": private, "user": names["reader"], "permission": "read"},
    )
    for repository in (private, public):
        with _client(hub, names["owner"], repository) as client:
            _push(client, repository, "v1", secrets.token_bytes(300))
    return {**names, "org": org, "private": private, "public": public}


# -- who may do what ------------------------------------------------------------------------------

ROLES = ("admin", "owner", "member", "reader", "outsider")


def _matrix() -> list[tuple[str, str, Any, dict[str, int]]]:
    """(method, path, body, expected status per role); {org}, {private}, {public} filled in."""
    admin_only = {"admin": 0, "owner": 403, "member": 403, "reader": 403, "outsider": 403}
    return [
        ("GET", "/immutable-rules", None, {**admin_only, "admin": 200}),
        ("GET", "/retention-policies", None, {**admin_only, "admin": 200}),
        (
            "POST",
            "/retention/run",
            {"dry_run": True, "policy": 999999},
            {**admin_only, "admin": 404},
        ),
        ("DELETE", "/immutable-rules/999999", None, {**admin_only, "admin": 404}),
        ("DELETE", "/retention-policies/999999", None, {**admin_only, "admin": 404}),
        ("PUT", "/quotas/namespaces/{org}", {"limit": "1GiB"}, {**admin_only, "admin": 200}),
        ("PUT", "/quotas/repositories/{private}", {"limit": 10**9}, {**admin_only, "admin": 200}),
        ("GET", "/quotas", None, dict.fromkeys(ROLES, 200)),
        (
            "GET",
            "/usage/namespaces/{org}",
            None,
            {"admin": 200, "owner": 200, "member": 403, "reader": 403, "outsider": 403},
        ),
        (
            "GET",
            "/usage/repositories/{private}",
            None,
            {"admin": 200, "owner": 200, "member": 404, "reader": 200, "outsider": 404},
        ),
        ("GET", "/usage/repositories/{public}", None, dict.fromkeys(ROLES, 200)),
        ("GET", "/usage/repositories/{org}/absent", None, dict.fromkeys(ROLES, 404)),
        ("GET", "/usage/namespaces/nobody{org}", None, dict.fromkeys(ROLES, 404)),
    ]


def test_permission_matrix(hub: Hub, site: dict[str, str]) -> None:
    actors = {role: (ADMIN if role == "admin" else site[role]) for role in ROLES}
    failures = []
    for method, path, body, expected in _matrix():
        path = path.format(**site)
        for role, who in actors.items():
            kwargs = {"json": body} if body is not None else {}
            answer = hub.request(who, method, path, **kwargs)
            want = expected[role] or (201 if method == "POST" else 200)
            if answer.status_code != want:
                failures.append((role, method, path, answer.status_code, want, answer.text[:200]))
            elif want >= 400:
                assert "errors" in answer.json(), answer.text
    assert not failures, failures


def test_private_repository_answers_as_absent(hub: Hub, site: dict[str, str]) -> None:
    hidden = hub.request(site["outsider"], "GET", f"/usage/repositories/{site['private']}")
    absent = hub.request(site["outsider"], "GET", f"/usage/repositories/{site['org']}/nothing")
    assert_error(hidden, 404, "NAME_UNKNOWN")
    assert_error(absent, 404, "NAME_UNKNOWN")
    assert hidden.json()["errors"][0]["message"] == absent.json()["errors"][0]["message"]


def test_quotas_listed_to_their_namespace_owners_only(hub: Hub, site: dict[str, str]) -> None:
    org = site["org"]
    hub.ok(ADMIN, "PUT", f"/quotas/namespaces/{org}", json={"limit": "2GiB"})
    hub.ok(ADMIN, "PUT", f"/quotas/repositories/{site['public']}", json={"limit": 5000})
    mine = {
        (q["scope"], q["name"]): q["limit_bytes"] for q in hub.ok(site["owner"], "GET", "/quotas")
    }
    assert mine[("namespace", org)] == 2 * 1024**3
    assert mine[("repository", site["public"])] == 5000
    for other in ("member", "reader", "outsider"):
        seen = hub.ok(site[other], "GET", "/quotas")
        assert not [q for q in seen if q["name"].startswith(org)], (other, seen)
    everything = {(q["scope"], q["name"]) for q in hub.ok(ADMIN, "GET", "/quotas")}
    assert ("namespace", org) in everything
    # The repository's own usage shows its quota to whoever may read it.
    assert hub.ok(site["outsider"], "GET", f"/usage/repositories/{site['public']}")["quota"] == 5000


def test_read_only_token_changes_nothing(hub: Hub) -> None:
    reader = hub.ok(ADMIN, "POST", "/user/tokens", json={"name": _name("ro"), "scopes": ["read"]})[
        "secret"
    ]
    auth = f"Bearer {reader}"
    assert hub.request(None, "GET", "/immutable-rules", auth=auth).status_code == 200
    body = {"repository_pattern": "x/*", "tag_pattern": "v*"}
    answer = hub.request(None, "POST", "/immutable-rules", auth=auth, json=body)
    assert_error(answer, 403, "DENIED")


# -- bad input ------------------------------------------------------------------------------------

BAD = [
    ("POST", "/immutable-rules", {"repository_pattern": "a/[bc]", "tag_pattern": "v*"}),
    ("POST", "/immutable-rules", {"repository_pattern": "", "tag_pattern": "v*"}),
    ("POST", "/immutable-rules", {"repository_pattern": "a/*"}),
    ("POST", "/immutable-rules", {"repository_pattern": "a/*", "tag_pattern": 7}),
    ("POST", "/immutable-rules", {"repository_pattern": "a b", "tag_pattern": "v"}),
    ("PUT", "/quotas/namespaces/{org}", {"limit": -1}),
    ("PUT", "/quotas/namespaces/{org}", {"limit": "lots"}),
    ("PUT", "/quotas/namespaces/{org}", {"limit": "-5GB"}),
    ("PUT", "/quotas/namespaces/{org}", {"limit": "99999999999999999999PB"}),
    ("PUT", "/quotas/namespaces/{org}", {"limit": 1 << 63}),
    ("PUT", "/quotas/namespaces/{org}", {"limit": True}),
    ("PUT", "/quotas/namespaces/{org}", {}),
    ("PUT", "/quotas/namespaces/Bad_Name!", {"limit": 5}),
    ("POST", "/retention-policies", {"repository_pattern": "a/*"}),
    ("POST", "/retention-policies", {"repository_pattern": "a/*", "keep_last": 0}),
    ("POST", "/retention-policies", {"repository_pattern": "a/*", "keep_last": -3}),
    ("POST", "/retention-policies", {"repository_pattern": "a/*", "keep_within": "-5d"}),
    ("POST", "/retention-policies", {"repository_pattern": "a/*", "keep_within": "forever"}),
    ("POST", "/retention-policies", {"repository_pattern": "a/*", "keep_within": "9999999999w"}),
    ("POST", "/retention-policies", {"repository_pattern": "a/*", "keep_within": 0}),
    (
        "POST",
        "/retention-policies",
        {"repository_pattern": "a/*", "keep_last": 1, "keep_pattern": "x[y]"},
    ),
    ("POST", "/retention/run", {}),
    ("POST", "/retention/run", {"dry_run": "yes"}),
]


def test_bad_input_is_a_clear_400(hub: Hub, site: dict[str, str]) -> None:
    for method, path, body in BAD:
        answer = hub.request(ADMIN, method, path.format(**site), json=body)
        errors = assert_error(answer, 400, "REQUEST_INVALID")
        assert errors[0]["message"], (path, body)
    # Not JSON at all.
    answer = hub.request(ADMIN, "POST", "/immutable-rules", content=b"{nope")
    assert_error(answer, 400, "REQUEST_INVALID")


def test_unknown_things_are_404(hub: Hub, site: dict[str, str]) -> None:
    org = site["org"]
    assert_error(
        hub.request(ADMIN, "PUT", f"/quotas/repositories/{org}/absent", json={"limit": 5}),
        404,
        "NAME_UNKNOWN",
    )
    assert_error(
        hub.request(ADMIN, "PUT", "/quotas/namespaces/zz-nobody", json={"limit": 5}),
        404,
        "NOT_FOUND",
    )
    assert_error(hub.request(ADMIN, "DELETE", "/immutable-rules/abc"), 404, "NOT_FOUND")
    assert_error(hub.request(ADMIN, "DELETE", "/retention-policies/-1"), 404, "NOT_FOUND")
    hub.request(ADMIN, "DELETE", f"/quotas/repositories/{site['private']}")  # another test's
    assert_error(hub.request(ADMIN, "DELETE", f"/quotas/repositories/{site['private']}"), 404)
    hub.ok(ADMIN, "PUT", f"/quotas/repositories/{site['private']}", json={"limit": 5})
    assert (
        hub.request(ADMIN, "DELETE", f"/quotas/repositories/{site['private']}").status_code == 204
    )
    assert_error(hub.request(ADMIN, "DELETE", f"/quotas/repositories/{site['private']}"), 404)


# -- usage ----------------------------------------------------------------------------------------


def _eventually(check: Callable[[], Any], seconds: float = 15.0) -> Any:
    deadline = time.monotonic() + seconds
    while True:
        result = check()
        if result or time.monotonic() > deadline:
            return result
        time.sleep(0.2)


def test_usage_is_exact_and_shared_blobs_count_once(hub: Hub) -> None:
    alice = hub.add_user(_name("alice"))
    shared, own_a, own_b = (secrets.token_bytes(n) for n in (4000, 1500, 700))
    with _client(hub, alice, f"{alice}/a") as client:
        digest_a, bytes_a = _push(client, f"{alice}/a", "v1", shared, own_a)
    with _client(hub, alice, f"{alice}/b") as client:
        digest_b, bytes_b = _push(client, f"{alice}/b", "v1", shared, own_b)
        # The same image again, under a second tag: no new bytes (and one pull of v1).
        body = client.get_manifest(f"{alice}/b", "v1").content
        client.push_manifest(f"{alice}/b", "again", body)

    space = hub.ok(alice, "GET", f"/usage/namespaces/{alice}")
    repos = {r["repository"]: r for r in space["repositories"]}
    assert repos[f"{alice}/a"]["bytes"] == bytes_a
    assert repos[f"{alice}/b"]["bytes"] == bytes_b
    assert repos[f"{alice}/a"]["blobs"] == repos[f"{alice}/b"]["blobs"] == 3
    assert space["bytes"] == bytes_a + bytes_b - len(shared)
    assert space["blobs"] == 5

    # Pulls by tag are counted (flushed every second); the pusher comes from the audit log.
    with _client(hub, alice, f"{alice}/a") as client:
        for _ in range(3):
            assert client.get_manifest(f"{alice}/a", "v1").status_code == 200

    def counted() -> dict[str, Any] | None:
        usage = hub.ok(alice, "GET", f"/usage/repositories/{alice}/a")
        tag = usage["tags"][0]
        return usage if tag["pulls"] == 3 and tag["pushed_by"] == alice else None

    usage = _eventually(counted)
    assert usage is not None, hub.ok(alice, "GET", f"/usage/repositories/{alice}/a")
    assert usage["bytes"] == bytes_a
    assert usage["namespace"] == alice
    [tag] = usage["tags"]
    assert (tag["tag"], tag["digest"]) == ("v1", digest_a)
    assert tag["last_pulled_at"] is not None
    other = hub.ok(alice, "GET", f"/usage/repositories/{alice}/b")["tags"]
    assert {t["tag"]: (t["digest"], t["pulls"]) for t in other} == {
        "again": (digest_b, 0),
        "v1": (digest_b, 1),
    }
    assert [t["last_pulled_at"] is None for t in other] == [True, False]


# -- rules, quotas and policies take effect -------------------------------------------------------


def test_immutable_rule_over_the_api(hub: Hub) -> None:
    bob = hub.add_user(_name("bob"))
    repository = f"{bob}/app"
    rule = hub.ok(
        ADMIN,
        "POST",
        "/immutable-rules",
        json={"repository_pattern": repository, "tag_pattern": "v*"},
    )
    assert rule["repository_pattern"] == repository
    again = {"repository_pattern": repository, "tag_pattern": "v*"}
    assert_error(hub.request(ADMIN, "POST", "/immutable-rules", json=again), 409, "CONFLICT")
    with _client(hub, bob, repository) as client:
        _push(client, repository, "v1", b"one")
        config, body = b"{}", image_manifest(descriptor(OCI_CONFIG, b"{}"))
        client.push_blob(repository, config)
        assert_error(client.put_manifest(repository, "v1", body), 409, "TAG_IMMUTABLE")
        assert hub.request(ADMIN, "DELETE", f"/immutable-rules/{rule['id']}").status_code == 204
        assert client.put_manifest(repository, "v1", body).status_code == 201
    assert rule["id"] not in [r["id"] for r in hub.ok(ADMIN, "GET", "/immutable-rules")]
    actions = [
        e["action"] for e in hub.ok(ADMIN, "GET", "/audit", params={"actor": ADMIN})["events"]
    ]
    assert {"immutable.create", "immutable.delete"} <= set(actions)


def test_namespace_quota_over_the_api_refuses_pushes(hub: Hub) -> None:
    carol = hub.add_user(_name("carol"))
    repository = f"{carol}/app"
    quota = hub.ok(ADMIN, "PUT", f"/quotas/namespaces/{carol}", json={"limit": "2KiB"})
    assert quota == {**quota, "scope": "namespace", "name": carol, "limit_bytes": 2048}
    with _client(hub, carol, repository) as client:
        client.push_blob(repository, secrets.token_bytes(1500))
        location = client.start_upload(repository).headers["Location"]
        data = secrets.token_bytes(1000)
        answer = client.http.put(
            client.resolve(location, digest=digest_of(data)),
            content=data,
            headers={"Content-Type": "application/octet-stream"},
        )
        assert_error(answer, 403, "DENIED")
    assert hub.ok(carol, "GET", f"/usage/namespaces/{carol}")["quota"] == 2048
    assert hub.request(ADMIN, "DELETE", f"/quotas/namespaces/{carol}").status_code == 204
    assert hub.ok(carol, "GET", f"/usage/namespaces/{carol}")["quota"] is None


def test_retention_dry_run_then_run(hub: Hub) -> None:
    dave = hub.add_user(_name("dave"))
    repository = f"{dave}/app"
    with _client(hub, dave, repository) as client:
        old, _ = _push(client, repository, "build-1", b"a")
        time.sleep(1.1)  # pushed times are what keep-last orders by
        _push(client, repository, "build-2", b"b")
        _push(client, repository, "stable", b"c")
    policy = hub.ok(
        ADMIN,
        "POST",
        "/retention-policies",
        json={
            "repository_pattern": repository,
            "tag_pattern": "build-*",
            "keep_last": 1,
            "keep_pattern": "stable",
        },
    )
    assert (policy["keep_last"], policy["keep_within"]) == (1, None)
    assert policy["id"] in [p["id"] for p in hub.ok(ADMIN, "GET", "/retention-policies")]
    run = {"dry_run": True, "policy": policy["id"]}
    report = hub.ok(ADMIN, "POST", "/retention/run", json=run)
    expected = [
        {"repository": repository, "tag": "build-1", "digest": old, "policies": [policy["id"]]}
    ]
    assert report == {"dry_run": True, "removed": expected, "kept": 1, "skipped": 0}
    tags = [t["tag"] for t in hub.ok(dave, "GET", f"/usage/repositories/{repository}")["tags"]]
    assert tags == ["build-1", "build-2", "stable"]  # a dry run removes nothing

    report = hub.ok(ADMIN, "POST", "/retention/run", json={**run, "dry_run": False})
    assert report["removed"] == expected
    assert report["dry_run"] is False
    tags = [t["tag"] for t in hub.ok(dave, "GET", f"/usage/repositories/{repository}")["tags"]]
    assert tags == ["build-2", "stable"]
    assert hub.request(ADMIN, "DELETE", f"/retention-policies/{policy['id']}").status_code == 204
    within = hub.ok(
        ADMIN,
        "POST",
        "/retention-policies",
        json={"repository_pattern": f"{dave}/*", "keep_within": "30d"},
    )
    assert within["keep_within"] == 30 * 86400
    hub.request(ADMIN, "DELETE", f"/retention-policies/{within['id']}")


# -- on PostgreSQL --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pg_hub(
    tmp_path_factory: pytest.TempPathFactory, unused_tcp_port_factory: Callable[[], int]
) -> Iterator[Hub]:
    from metadata.test_postgres import fresh_database

    with fresh_database() as url:
        factory = _factory(lambda: tmp_path_factory.mktemp("lifecycle-pg"), unused_tcp_port_factory)
        config = {**_QUIET, "database": {"url": url}}
        yield from hub_fixture(factory, tmp_path_factory.mktemp("keys"), config)
        factory.close()


def test_usage_and_pushers_on_postgresql(pg_hub: Hub) -> None:
    erin = pg_hub.add_user(_name("erin"))
    shared = secrets.token_bytes(2000)
    with _client(pg_hub, erin, f"{erin}/a") as client:
        _, bytes_a = _push(client, f"{erin}/a", "v1", shared)
        assert client.get_manifest(f"{erin}/a", "v1").status_code == 200
    with _client(pg_hub, erin, f"{erin}/b") as client:
        _, bytes_b = _push(client, f"{erin}/b", "v1", shared)
    space = pg_hub.ok(erin, "GET", f"/usage/namespaces/{erin}")
    assert space["bytes"] == bytes_a + bytes_b - len(shared)

    def seen() -> Any:
        [tag] = pg_hub.ok(erin, "GET", f"/usage/repositories/{erin}/a")["tags"]
        return tag if tag["pushed_by"] == erin and tag["pulls"] == 1 else None

    assert _eventually(seen), pg_hub.ok(erin, "GET", f"/usage/repositories/{erin}/a")
    quota = pg_hub.ok(ADMIN, "PUT", f"/quotas/namespaces/{erin}", json={"limit": "1GB"})
    assert quota["limit_bytes"] == 10**9
    rule = {"repository_pattern": f"{erin}/*", "tag_pattern": "v1"}
    made = pg_hub.ok(ADMIN, "POST", "/immutable-rules", json=rule)
    assert_error(pg_hub.request(ADMIN, "POST", "/immutable-rules", json=rule), 409, "CONFLICT")
    assert pg_hub.request(ADMIN, "DELETE", f"/immutable-rules/{made['id']}").status_code == 204
