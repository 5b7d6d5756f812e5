"""Repository webhooks over real HTTP: configured through the management API of a real
``dockyard serve``, a skopeo or HTTP push POSTs Docker Hub's payload to an endpoint started
here, retried after failures, with the history of every attempt kept and shown."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from events.receiver import black_hole, post_server

from .clients import Skopeo, host_of
from .conftest import DISTRIBUTION, ServerFactory, _factory
from .images import build_image, write_layout
from .manage_site import ADMIN, Hub, hub_fixture, start_hub
from .registry import RegistryClient, assert_error

pytestmark = pytest.mark.skipif(DISTRIBUTION, reason="webhooks are Dockyard's own")

SIGNATURE = "X-Dockyard-Signature-256"
FAST = {"backoff": "100ms", "maxbackoff": "400ms", "timeout": "2s"}


@dataclass
class Endpoint:
    """A webhook receiver: answers ``failures`` first (one a request), then 200."""

    url: str
    failures: list[int] = field(default_factory=list)
    accepted: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    answered: list[int] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def wait(self, predicate: Callable[[], bool], timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            assert time.monotonic() < deadline, f"timed out; answered {self.answered}"
            time.sleep(0.05)


@contextlib.contextmanager
def endpoint(host: str = "127.0.0.1") -> Iterator[Endpoint]:
    state = Endpoint(url="")

    def answer(headers: dict[str, str], data: bytes) -> int:
        with state.lock:
            status = state.failures.pop(0) if state.failures else 200
            state.answered.append(status)
            if status == 200:
                state.accepted.append((headers, data))
        return status

    with post_server(answer, host, "/hook") as url:
        state.url = url
        yield state


@pytest.fixture(scope="module")
def hub(
    tmp_path_factory: pytest.TempPathFactory, unused_tcp_port_factory: Callable[[], int]
) -> Iterator[Hub]:
    factory = _factory(lambda: tmp_path_factory.mktemp("webhooks"), unused_tcp_port_factory)
    config = {"hub": {"webhooks": {"allowprivate": True, "maxattempts": 6, **FAST}}}
    gen = hub_fixture(factory, tmp_path_factory.mktemp("keys"), config)
    yield next(gen)
    factory.close()


def _user(hub: Hub, prefix: str) -> str:
    return hub.add_user(f"{prefix}-{secrets.token_hex(3)}")


def _repository(hub: Hub, owner: str, visibility: str = "private", **extra: Any) -> str:
    name = f"{owner}/app-{secrets.token_hex(3)}"
    body = {"name": name, "visibility": visibility, **extra}
    hub.ok(owner, "POST", "/repositories", json=body)
    return name


def _pusher(hub: Hub, user: str, repository: str) -> RegistryClient:
    token = httpx.get(
        f"{hub.url}/token",
        params={"service": "dockyard", "scope": f"repository:{repository}:pull,push"},
        auth=(user, hub.tokens[user]),
    ).json()["token"]
    client = hub.server.client()
    client.http.headers["Authorization"] = f"Bearer {token}"
    return client


def _hook(hub: Hub, who: str, repository: str, url: str, **extra: Any) -> dict[str, Any]:
    body = {"repository": repository, "name": f"hook-{secrets.token_hex(2)}", "url": url, **extra}
    created: dict[str, Any] = hub.ok(who, "POST", "/webhooks", json=body)
    return created


def _deliveries(hub: Hub, who: str, webhook: int, **params: Any) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = hub.ok(
        who, "GET", f"/webhooks/{webhook}/deliveries", params=params
    )
    return found


def _wait_deliveries(
    hub: Hub, who: str, webhook: int, predicate: Callable[[list[dict[str, Any]]], bool]
) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 20
    while True:
        found = _deliveries(hub, who, webhook)
        if predicate(found):
            return found
        assert time.monotonic() < deadline, json.dumps(found, indent=1)
        time.sleep(0.1)


def _when(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


# -- delivery --------------------------------------------------------------------------------------


@pytest.mark.clients
def test_skopeo_push_delivers_docker_hub_payload_after_failures(hub: Hub, tmp_path: Path) -> None:
    alice = _user(hub, "alice")
    repository = _repository(hub, alice, description="the app")
    secret = "s3cret-" + secrets.token_hex(4)
    with endpoint() as target:
        target.failures = [500, 503]  # the endpoint is down, then recovers
        hook = _hook(hub, alice, repository, target.url, secret=secret)
        assert hook["secret_set"] is True
        assert "secret" not in hook
        image = build_image([{"etc/motd": b"hello webhooks\n"}])
        skopeo = Skopeo(host_of(hub.url), tmp_path / "skopeo")
        started = int(time.time())
        skopeo.copy(
            f"oci:{write_layout(tmp_path / 'layout', {'v1': image})}:v1",
            skopeo.ref(repository, "v1"),
            "--preserve-digests",
            "--dest-creds",
            f"{alice}:{hub.tokens[alice]}",
        )
        target.wait(lambda: len(target.accepted) == 1)
        time.sleep(0.5)  # nothing more comes: one push, one delivery
        assert target.answered == [500, 503, 200]
    headers, raw = target.accepted[0]
    assert headers["Content-Type"] == "application/json"
    expected = "sha256=" + hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()
    assert headers[SIGNATURE] == expected
    assert headers["X-Dockyard-Event"] == "push"
    payload = json.loads(raw)
    callback = f"{hub.url}/api/v1/webhooks/{hook['id']}/deliveries"
    assert payload["callback_url"] == callback
    push = payload["push_data"]
    assert push["tag"] == "v1"
    assert push["pusher"] == alice
    assert push["images"] == [image.digest]
    assert started - 1 <= push["pushed_at"] <= time.time() + 1
    assert isinstance(push["pushed_at"], int)
    repo = payload["repository"]
    namespace, name = repository.split("/", 1)
    created = hub.ok(alice, "GET", f"/repositories/{repository}")["created_at"]
    assert repo == {
        "comment_count": 0,
        "date_created": int(_when(created).timestamp()),
        "description": "the app",
        "dockerfile": "",
        "full_description": "",
        "is_official": False,
        "is_private": True,
        "is_trusted": False,
        "name": name,
        "namespace": namespace,
        "owner": namespace,
        "repo_name": repository,
        "repo_url": f"{hub.url}/r/{repository}",
        "star_count": 0,
        "status": "Active",
    }
    # The history: one delivery, three attempts, the first two failed.
    (delivery,) = _wait_deliveries(hub, alice, hook["id"], lambda d: bool(d))
    assert delivery["state"] == "delivered"
    assert delivery["attempts"] == 3
    assert delivery["response_code"] == 200
    assert delivery["payload"] == payload
    attempts = delivery["history"]
    assert [a["attempt"] for a in attempts] == [1, 2, 3]
    assert [a["response_code"] for a in attempts] == [500, 503, 200]
    assert [a["error"] for a in attempts] == ["HTTP 500", "HTTP 503", None]
    times = [_when(a["time"]) for a in attempts]
    # Backoff: 100ms after the first failure, 200ms after the second.
    assert (times[1] - times[0]).total_seconds() >= 0.09
    assert (times[2] - times[1]).total_seconds() >= 0.19
    assert _when(delivery["finished_at"]) >= times[2]
    assert delivery["next_attempt_at"] is None


def test_every_webhook_gets_each_tagged_push_and_gives_up_after_the_last_attempt(
    hub: Hub,
) -> None:
    bob = _user(hub, "bob")
    repository = _repository(hub, bob, "public")
    with endpoint() as good, endpoint() as down:
        down.failures = [500] * 100
        ok_hook = _hook(hub, bob, repository, good.url)
        bad_hook = _hook(hub, bob, repository, down.url)
        off_hook = _hook(hub, bob, repository, good.url, active=False)
        with _pusher(hub, bob, repository) as client:
            first = client.push_image(repository, "one")
            client.push_image(repository)  # by digest: no tag, no webhook
            second = client.push_image(repository, "two")
        good.wait(lambda: len(good.accepted) == 2)
        bodies = [json.loads(raw) for _, raw in good.accepted]
        assert sorted(b["push_data"]["tag"] for b in bodies) == ["one", "two"]
        by_tag = {b["push_data"]["tag"]: b for b in bodies}
        assert by_tag["one"]["push_data"]["images"] == [first.digest]
        assert by_tag["two"]["push_data"]["images"] == [second.digest]
        assert by_tag["one"]["repository"]["is_private"] is False
        assert all(SIGNATURE not in headers for headers, _ in good.accepted)
        # The failing webhook neither held up the other nor was given up on early.
        failed = _wait_deliveries(
            hub,
            bob,
            bad_hook["id"],
            lambda d: len(d) == 2 and all(x["state"] == "failed" for x in d),
        )
    assert all(d["attempts"] == 6 for d in failed)
    assert all(len(d["history"]) == 6 for d in failed)
    assert {a["response_code"] for d in failed for a in d["history"]} == {500}
    assert len(_deliveries(hub, bob, ok_hook["id"])) == 2
    assert _deliveries(hub, bob, off_hook["id"]) == []
    assert _deliveries(hub, bob, bad_hook["id"], state="delivered") == []
    assert len(_deliveries(hub, bob, bad_hook["id"], limit=1)) == 1


def test_switching_a_webhook_off_gives_up_its_pending_deliveries(hub: Hub) -> None:
    gina = _user(hub, "gina")
    repository = _repository(hub, gina)
    with black_hole() as url:  # every attempt waits out the 2 s timeout
        hook = _hook(hub, gina, repository, url)
        with _pusher(hub, gina, repository) as client:
            client.push_image(repository, "v1")
        _wait_deliveries(hub, gina, hook["id"], lambda d: bool(d) and d[0]["attempts"] >= 1)
        hub.ok(gina, "PATCH", f"/webhooks/{hook['id']}", json={"active": False})
        (stopped,) = _deliveries(hub, gina, hook["id"])
        assert stopped["state"] == "failed"
        assert stopped["next_attempt_at"] is None
        time.sleep(2.5)  # an attempt under way when it was switched off may still finish
        (later,) = _deliveries(hub, gina, hook["id"])
    assert later["state"] == "failed"
    assert later["attempts"] <= stopped["attempts"] + 1 < 6
    assert all(a["response_code"] is None for a in later["history"])
    assert "timeout" in later["history"][0]["error"].lower()


# -- management -------------------------------------------------------------------------------


def test_create_list_update_delete(hub: Hub) -> None:
    carol = _user(hub, "carol")
    repository = _repository(hub, carol)
    hook = _hook(hub, carol, repository, "https://hooks.example.com/a", secret="x")
    assert hook["repository"] == repository
    assert hook["active"] is True
    assert hook["created_by"] == carol
    assert hub.ok(carol, "GET", "/webhooks", params={"repository": repository}) == [hook]
    assert hub.ok(carol, "GET", f"/webhooks/{hook['id']}") == hook
    changed = hub.ok(
        carol,
        "PATCH",
        f"/webhooks/{hook['id']}",
        json={"url": "http://hooks.example.com/b", "active": False, "secret": ""},
    )
    assert changed["url"] == "http://hooks.example.com/b"
    assert changed["active"] is False
    assert changed["secret_set"] is False
    assert changed["name"] == hook["name"]
    twin = _hook(hub, carol, repository, "https://hooks.example.com/c")
    assert_error(
        hub.request(
            carol,
            "POST",
            "/webhooks",
            json={
                **{"repository": repository},
                "name": twin["name"],
                "url": "https://x.example.com/",
            },
        ),
        409,
        "CONFLICT",
    )
    assert_error(
        hub.request(carol, "PATCH", f"/webhooks/{hook['id']}", json={"name": twin["name"]}),
        409,
        "CONFLICT",
    )
    assert hub.request(carol, "DELETE", f"/webhooks/{hook['id']}").status_code == 204
    assert_error(hub.request(carol, "GET", f"/webhooks/{hook['id']}"), 404, "NOT_FOUND")
    assert hub.ok(carol, "GET", "/webhooks", params={"repository": repository}) == [twin]
    audit = hub.ok(ADMIN, "GET", "/audit", params={"repository": repository})
    actions = {event["action"] for event in audit["events"]}
    assert {"webhook.create", "webhook.update", "webhook.delete"} <= actions
    # Deleting the repository takes its webhooks along; a new one of that name has none.
    assert hub.request(carol, "DELETE", f"/repositories/{repository}").status_code == 204
    assert_error(hub.request(carol, "GET", f"/webhooks/{twin['id']}"), 404, "NOT_FOUND")
    hub.ok(carol, "POST", "/repositories", json={"name": repository})
    assert hub.ok(carol, "GET", "/webhooks", params={"repository": repository}) == []


def test_only_repository_admins_see_or_manage_webhooks(hub: Hub) -> None:
    owner, stranger, reader = (_user(hub, p) for p in ("owner", "stranger", "reader"))
    private = _repository(hub, owner)
    public = _repository(hub, owner, "public")
    secret_hook = _hook(hub, owner, private, "https://hooks.example.com/p")
    public_hook = _hook(hub, owner, public, "https://hooks.example.com/q")
    body = {"repository": private, "name": "mine", "url": "https://evil.example.com/"}
    # A private repository's webhooks do not exist for those who may not see it.
    assert_error(hub.request(stranger, "POST", "/webhooks", json=body), 404, "NAME_UNKNOWN")
    listing = hub.request(stranger, "GET", "/webhooks", params={"repository": private})
    assert_error(listing, 404, "NAME_UNKNOWN")
    one = f"/webhooks/{secret_hook['id']}"
    for method, path in (("GET", one), ("DELETE", one), ("GET", f"{one}/deliveries")):
        assert_error(hub.request(stranger, method, path), 404, "NOT_FOUND")
    assert_error(hub.request(stranger, "PATCH", one, json={"active": False}), 404, "NOT_FOUND")
    assert_error(hub.request(None, "GET", one), 401, "UNAUTHORIZED")
    # Seeing a repository is not enough: only its admins manage its webhooks.
    hub.ok(
        owner,
        "PUT",
        "/permissions",
        json={"pattern": private, "user": reader, "permission": "write"},
    )
    for repository in (private, public):
        body = {"repository": repository, "name": "mine", "url": "https://evil.example.com/"}
        assert_error(hub.request(reader, "POST", "/webhooks", json=body), 403, "DENIED")
        listing = hub.request(reader, "GET", "/webhooks", params={"repository": repository})
        assert_error(listing, 403, "DENIED")
    assert_error(hub.request(reader, "GET", f"/webhooks/{public_hook['id']}"), 403, "DENIED")
    assert_error(hub.request(reader, "DELETE", one), 403, "DENIED")
    # Site administrators and those granted admin may.
    assert hub.ok(ADMIN, "GET", one)["id"] == secret_hook["id"]
    hub.ok(
        owner,
        "PUT",
        "/permissions",
        json={"pattern": private, "user": reader, "permission": "admin"},
    )
    assert hub.ok(reader, "GET", one)["url"] == "https://hooks.example.com/p"
    assert hub.ok(owner, "GET", "/webhooks", params={"repository": private}) == [
        hub.ok(owner, "GET", one)
    ]


@pytest.fixture(scope="module")
def dave_repository(hub: Hub) -> tuple[str, str]:
    """A user and a repository shared by the bad URL cases."""
    user = _user(hub, "dave")
    return user, _repository(hub, user)


@pytest.mark.parametrize(
    "url",
    [
        "ftp://hooks.example.com/x",
        "file:///etc/passwd",
        "javascript:alert(1)",
        "hooks.example.com/no-scheme",
        "http://",
        "http:///path-only",
        "http://hooks.example.com:0/",
        "http://hooks.example.com:99999/",
        "http://hooks example.com/",
        "http://hooks.example.com/\nInjected: header",
        "https://[not-an-address]/",
        "https://hooks.example.com/" + "a" * 2100,
    ],
)
def test_bad_urls_are_refused(hub: Hub, dave_repository: tuple[str, str], url: str) -> None:
    dave, repository = dave_repository
    body = {"repository": repository, "name": "bad", "url": url}
    errors = assert_error(hub.request(dave, "POST", "/webhooks", json=body), 400, "REQUEST_INVALID")
    assert "url" in json.dumps(errors).lower()
    good = _hook(hub, dave, repository, "https://hooks.example.com/ok")
    patch = hub.request(dave, "PATCH", f"/webhooks/{good['id']}", json={"url": url})
    assert_error(patch, 400, "REQUEST_INVALID")
    assert hub.request(dave, "DELETE", f"/webhooks/{good['id']}").status_code == 204


def test_bad_requests_get_json_errors(hub: Hub) -> None:
    erin = _user(hub, "erin")
    repository = _repository(hub, erin)
    for body in (
        {},
        {"repository": repository},
        {"repository": repository, "name": "x"},
        {"repository": repository, "name": "x", "url": 5},
        {"repository": repository, "name": "", "url": "https://a.example.com"},
        {"repository": repository, "name": "x", "url": "https://a.example.com", "extra": 1},
    ):
        assert_error(hub.request(erin, "POST", "/webhooks", json=body), 400, "REQUEST_INVALID")
    assert_error(hub.request(erin, "GET", "/webhooks"), 400, "REQUEST_INVALID")
    for path in (
        "/webhooks/abc",
        "/webhooks/-1",
        "/webhooks/99999999999999999999999",
        "/webhooks/123456789",
    ):
        assert_error(hub.request(erin, "GET", path), 404, "NOT_FOUND")
    hook = _hook(hub, erin, repository, "https://a.example.com/")
    deliveries = f"/webhooks/{hook['id']}/deliveries"
    assert_error(
        hub.request(erin, "GET", deliveries, params={"state": "x"}), 400, "REQUEST_INVALID"
    )
    assert_error(
        hub.request(erin, "GET", deliveries, params={"limit": "0"}), 400, "REQUEST_INVALID"
    )


def test_openapi_document_describes_webhooks(hub: Hub) -> None:
    document = httpx.get(f"{hub.url}/api/v1/openapi.json").json()
    paths = document["paths"]
    assert set(paths["/api/v1/webhooks"]) == {"get", "post"}
    assert set(paths["/api/v1/webhooks/{webhook}"]) == {"get", "patch", "delete"}
    assert set(paths["/api/v1/webhooks/{webhook}/deliveries"]) == {"get"}
    schemas = document["components"]["schemas"]
    assert SIGNATURE in json.dumps(schemas["WebhookCreate"])
    assert {"history", "state", "attempts", "response_code"} <= set(
        schemas["DeliveryOut"]["properties"]
    )


# -- SSRF ----------------------------------------------------------------------------------------


def test_private_targets_are_refused_unless_allowed(
    registry_factory: ServerFactory, tmp_path: Path
) -> None:
    config = {"hub": {"webhooks": {"maxattempts": 2, **FAST}}}
    site = start_hub(registry_factory, _key(tmp_path), config)
    frank = site.add_user("frank")
    repository = _repository(site, frank)
    for url in (
        "http://127.0.0.1:8080/",
        "http://[::1]/",
        "http://10.1.2.3/",
        "http://192.168.0.1/",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::ffff:127.0.0.1]/",
        "http://0.0.0.0/",
    ):
        body = {"repository": repository, "name": "x", "url": url}
        response = site.request(frank, "POST", "/webhooks", json=body)
        errors = assert_error(response, 400, "REQUEST_INVALID")
        assert "allowprivate" in errors[0]["message"], url
    # A name is resolved when each delivery connects: localhost is refused then.
    with endpoint("localhost") as target:
        hook = _hook(site, frank, repository, target.url)
        with _pusher(site, frank, repository) as client:
            client.push_image(repository, "v1")
        (failed,) = _wait_deliveries(
            site, frank, hook["id"], lambda d: bool(d) and d[0]["state"] == "failed"
        )
        assert target.answered == []
    assert [a["response_code"] for a in failed["history"]] == [None, None]
    assert all("allowprivate" in a["error"] for a in failed["history"])


def _key(tmp_path: Path) -> Path:
    from auth.builtin_setup import write_key

    return write_key(tmp_path / "signing.pem")
