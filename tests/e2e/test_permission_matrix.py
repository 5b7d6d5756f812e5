"""The registry's permission matrix over real HTTP (``auth.builtin``, the token flow).

Eleven callers, a public and a private repository of one organization, six operations: every
cell of ``EXPECTED`` is one test. Each operation is done as a client does it: ``/token`` with
Basic credentials for exactly the scopes the operation needs, then the request with the Bearer
token. A caller whose login the token server refuses (an expired or a revoked access token)
has the refusal as its outcome, and its credentials sent straight to the registry are refused
too.

Outcomes: ``ok`` (done; checked by reading the result back), ``hidden`` (the catalog answers
but does not list the repository), ``no-mount`` (a cross-repository mount answered with a new
upload session, ``202``, and nothing mounted), or the error's ``status CODE``. The registry
answers every refusal on ``/v2/`` with ``401 UNAUTHORIZED`` and a challenge naming the scope
needed (as Distribution does under token auth), whether or not the repository exists: every
refusal on the private repository is also compared with the same request on a repository that
does not exist, and must differ by nothing but the name.
"""

from __future__ import annotations

import json
import os
import re
import secrets
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import httpx
import jwt
import pytest

from dockyard.identity.base import IdentityStore, TokenScope
from dockyard.identity.tokens import new_secret, secret_hash

from .conftest import DISTRIBUTION, _factory
from .manage_site import ADMIN, Hub, basic, hub_fixture
from .registry import OCI_CONFIG, Image, RegistryClient, descriptor, digest_of, image_manifest
from .test_builtin_auth import Site, _same_shape

pytestmark = pytest.mark.skipif(DISTRIBUTION, reason="auth.builtin is Dockyard's own")

OK, HIDDEN, NO_MOUNT = "ok", "hidden", "no-mount"
NOAUTH = "401 UNAUTHORIZED"
OPERATIONS = ("pull", "push", "delete", "mount", "catalog", "tags")
VISIBILITIES = ("public", "private")

# caller -> operation -> (on the public repository, on the private one).
EXPECTED: Mapping[str, Mapping[str, tuple[str, str]]] = {
    "anonymous": {
        "pull": (OK, NOAUTH),
        "push": (NOAUTH, NOAUTH),
        "delete": (NOAUTH, NOAUTH),
        "mount": (NOAUTH, NOAUTH),  # may push nowhere
        "catalog": (OK, HIDDEN),
        "tags": (OK, NOAUTH),
    },
    "owner": {
        "pull": (OK, OK),
        "push": (OK, OK),
        "delete": (OK, OK),
        "mount": (OK, OK),
        "catalog": (OK, OK),
        "tags": (OK, OK),
    },
    "team-read": {
        "pull": (OK, OK),
        "push": (NOAUTH, NOAUTH),
        "delete": (NOAUTH, NOAUTH),
        "mount": (OK, OK),  # into its own namespace
        "catalog": (OK, OK),
        "tags": (OK, OK),
    },
    "team-write": {
        "pull": (OK, OK),
        "push": (OK, OK),
        "delete": (NOAUTH, NOAUTH),
        "mount": (OK, OK),
        "catalog": (OK, OK),
        "tags": (OK, OK),
    },
    "other-user": {
        "pull": (OK, NOAUTH),
        "push": (NOAUTH, NOAUTH),
        "delete": (NOAUTH, NOAUTH),
        "mount": (OK, NO_MOUNT),  # into its own namespace
        "catalog": (OK, HIDDEN),
        "tags": (OK, NOAUTH),
    },
    "site-admin": {
        "pull": (OK, OK),
        "push": (OK, OK),
        "delete": (OK, OK),
        "mount": (OK, OK),
        "catalog": (OK, OK),
        "tags": (OK, OK),
    },
    "robot": {
        "pull": (OK, OK),
        "push": (OK, OK),
        "delete": (NOAUTH, NOAUTH),  # write, not admin
        "mount": (OK, OK),
        "catalog": (OK, OK),
        "tags": (OK, OK),
    },
    "pat-read": {
        "pull": (OK, OK),
        "push": (NOAUTH, NOAUTH),
        "delete": (NOAUTH, NOAUTH),
        "mount": (NOAUTH, NOAUTH),  # its scope allows pushing nowhere
        "catalog": (OK, OK),
        "tags": (OK, OK),
    },
    "pat-expired": dict.fromkeys(OPERATIONS, (NOAUTH, NOAUTH)),
    "pat-revoked": dict.fromkeys(OPERATIONS, (NOAUTH, NOAUTH)),
    # The owner's token for another repository of the organization, used on these.
    "other-repo-token": {
        "pull": (NOAUTH, NOAUTH),
        "push": (NOAUTH, NOAUTH),
        "delete": (NOAUTH, NOAUTH),
        "mount": (NO_MOUNT, NO_MOUNT),  # into the token's repository: the source is not in it
        "catalog": (NOAUTH, NOAUTH),
        "tags": (NOAUTH, NOAUTH),
    },
}

CELLS = [
    pytest.param(caller, visibility, operation, id=f"{caller}-{visibility}-{operation}")
    for caller in EXPECTED
    for operation in OPERATIONS
    for visibility in VISIBILITIES
]


@dataclass(frozen=True)
class Caller:
    """Credentials for ``/token`` (none: anonymous), or a token already issued."""

    user: str | None = None
    secret: str = ""
    bearer: str | None = None
    # Where this caller mounts to (a repository it may push to, if it may push anywhere).
    mount_target: str = ""


@dataclass
class Matrix:
    hub: Hub
    org: str
    repos: dict[str, str]  # visibility -> name
    images: dict[str, Image]  # visibility -> the image pushed as v1
    ghost: str  # in the organization, never created
    callers: dict[str, Caller] = field(default_factory=dict)
    # Plain HTTP: without a CA bundle to load, a client costs milliseconds, not a tenth of a second.
    http: httpx.Client = field(default_factory=lambda: httpx.Client(verify=False, timeout=30))
    _tokens: dict[tuple[str, tuple[str, ...]], httpx.Response] = field(default_factory=dict)

    def token_response(self, caller: str, scopes: tuple[str, ...]) -> httpx.Response:
        """``/token`` for ``scopes`` as ``caller``, asked once per caller and scopes."""
        key = (caller, scopes)
        if key not in self._tokens:
            who = self.callers[caller]
            headers = {"Authorization": basic(who.user, who.secret)} if who.user else {}
            params = httpx.QueryParams([("service", "dockyard"), *(("scope", s) for s in scopes)])
            self._tokens[key] = self.http.get(
                f"{self.hub.url}/token", params=params, headers=headers
            )
        return self._tokens[key]

    def forget_tokens(self) -> None:
        self._tokens.clear()

    def client(self, caller: str, *scopes: str) -> tuple[RegistryClient, httpx.Response | None]:
        """A client authorized as ``caller`` for ``scopes``, and the token server's refusal
        if it refused (the client then sends the credentials themselves, as Basic)."""
        who = self.callers[caller]
        client = self.hub.server.client(verify=False)
        if who.bearer is not None:
            client.http.headers["Authorization"] = f"Bearer {who.bearer}"
            return client, None
        response = self.token_response(caller, scopes)
        if response.status_code == 200:
            client.http.headers["Authorization"] = f"Bearer {response.json()['token']}"
            return client, None
        assert who.user is not None
        client.http.headers["Authorization"] = basic(who.user, who.secret)
        return client, response

    def owner(self, *scopes: str) -> RegistryClient:
        client, refused = self.client("owner", *scopes)
        assert refused is None
        return client


def _error(response: httpx.Response) -> str:
    """``status CODE`` of an error answer; a refusal on ``/v2/`` must carry the challenge."""
    try:
        code = response.json()["errors"][0]["code"]
    except (ValueError, KeyError, IndexError, TypeError):
        code = f"(not the JSON error format: {response.text[:200]!r})"
    url = response.request.url
    if response.status_code == 401 and url.path.startswith("/v2/"):
        challenge = response.headers["WWW-Authenticate"]
        realm = f"{url.scheme}://{url.netloc.decode()}/token"
        assert challenge.startswith(f'Bearer realm="{realm}",service="dockyard",scope="')
        if response.request.headers.get("Authorization", "").startswith("Bearer "):
            assert challenge.endswith(',error="insufficient_scope"'), challenge
    return f"{response.status_code} {code}"


def _outcome(response: httpx.Response, success: int) -> str:
    return OK if response.status_code == success else _error(response)


def _granted(response: httpx.Response) -> dict[str, list[str]]:
    """The ``access`` claim of a token response, by resource, with the names kept."""
    claims = jwt.decode(response.json()["token"], options={"verify_signature": False})
    return {f"{a['type']}:{a['name']}": a["actions"] for a in claims["access"]}


def _tiny_manifest() -> tuple[bytes, bytes]:
    """A config of a few bytes and an image manifest naming it, unique to each call."""
    config = json.dumps({"nonce": os.urandom(6).hex()}).encode()
    return config, image_manifest(descriptor(OCI_CONFIG, config))


# -- the site -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def matrix(
    tmp_path_factory: pytest.TempPathFactory, unused_tcp_port_factory: Callable[[], int]
) -> Iterator[Matrix]:
    factory = _factory(lambda: tmp_path_factory.mktemp("matrix"), unused_tcp_port_factory)
    # The refused logins of the expired and revoked tokens are many: keep them under the limit.
    limits = {"maxfailuresperaccount": 10_000, "maxfailuresperaddress": 10_000}
    # One worker: the cells run one at a time, and a second worker only slows the start.
    one_worker = {"http": {"workers": 1}}
    gen = hub_fixture(factory, tmp_path_factory.mktemp("keys"), one_worker, **limits)
    hub = next(gen)
    built = _build(hub)
    yield built
    built.http.close()
    factory.close()


def _build(hub: Hub) -> Matrix:
    tag = secrets.token_hex(3)
    owner, reader, writer, other = (
        hub.add_user(f"{role}-{tag}") for role in ("owner", "reader", "writer", "other")
    )
    org = f"acme-{tag}"
    hub.ok(owner, "POST", "/organizations", json={"name": org})
    for team, member, level in (("readers", reader, "read"), ("writers", writer, "write")):
        hub.ok(owner, "PUT", f"/organizations/{org}/members/{member}", json={"role": "member"})
        hub.ok(owner, "POST", f"/organizations/{org}/teams", json={"name": team})
        hub.ok(owner, "POST", f"/organizations/{org}/teams/{team}/members", json={"user": member})
        grant = {"pattern": f"{org}/**", "team": f"{org}/{team}", "permission": level}
        hub.ok(owner, "PUT", "/permissions", json=grant)
    robot = hub.ok(owner, "POST", f"/organizations/{org}/robots", json={"name": "ci"})
    robot_name = robot["robot"]["name"]
    grant = {"pattern": f"{org}/**", "user": robot_name, "permission": "write"}
    hub.ok(owner, "PUT", "/permissions", json=grant)
    repos = {v: f"{org}/{v}-app" for v in VISIBILITIES}
    for visibility, name in repos.items():
        hub.ok(owner, "POST", "/repositories", json={"name": name, "visibility": visibility})

    owner_login = basic(owner, hub.passwords[owner])
    tokens = {}
    for name, scopes in (("read", ["read"]), ("revoked", ["read", "write", "delete"])):
        made = hub.ok(
            None, "POST", "/user/tokens", auth=owner_login, json={"name": name, "scopes": scopes}
        )
        tokens[name] = made["secret"]
    # Made in the store as the API makes tokens: one expired a minute ago, its twin in an hour.
    expired, fresh = new_secret(), new_secret()

    async def make_tokens(store: IdentityStore) -> None:
        for name, secret, minutes in (("expired", expired, -1), ("fresh", fresh, 60)):
            expires = datetime.now(UTC) + timedelta(minutes=minutes)
            await store.create_access_token(
                owner, name, secret_hash(secret), frozenset(TokenScope), expires
            )

    Site(hub.server).identity(make_tokens)
    elsewhere = f"{org}/elsewhere"
    matrix = Matrix(hub, org, repos, {}, ghost=f"{org}/ghost")
    matrix.callers = {
        "anonymous": Caller(mount_target=f"{org}/mnt-anonymous"),
        "owner": Caller(owner, hub.passwords[owner], mount_target=f"{org}/mnt-owner"),
        "team-read": Caller(reader, hub.passwords[reader], mount_target=f"{reader}/mnt"),
        "team-write": Caller(writer, hub.passwords[writer], mount_target=f"{org}/mnt-writer"),
        "other-user": Caller(other, hub.passwords[other], mount_target=f"{other}/mnt"),
        "site-admin": Caller(ADMIN, hub.passwords[ADMIN], mount_target=f"{org}/mnt-admin"),
        "robot": Caller(robot_name, robot["secret"], mount_target=f"{org}/mnt-robot"),
        "pat-read": Caller(owner, tokens["read"], mount_target=f"{owner}/mnt-read"),
        "pat-expired": Caller(owner, expired, mount_target=f"{owner}/mnt-expired"),
        "pat-revoked": Caller(owner, tokens["revoked"], mount_target=f"{owner}/mnt-revoked"),
    }
    for visibility, name in repos.items():
        with matrix.owner(f"repository:{name}:pull,push") as client:
            matrix.images[visibility] = client.push_image(name, "v1")
    # The revoked token worked until it was revoked; the expired one's twin works.
    scope = f"repository:{repos['private']}:pull"
    before = matrix.token_response("pat-revoked", (scope,))
    assert _granted(before)[scope.rsplit(":", 1)[0]] == ["pull"]
    matrix.forget_tokens()
    twin = httpx.get(
        f"{hub.url}/token", params={"scope": scope}, headers={"Authorization": basic(owner, fresh)}
    )
    assert _granted(twin)[scope.rsplit(":", 1)[0]] == ["pull"]
    assert hub.request(owner, "DELETE", "/user/tokens/revoked").status_code == 204
    foreign = matrix.token_response("owner", (f"repository:{elsewhere}:pull,push",))
    assert _granted(foreign) == {f"repository:{elsewhere}": ["pull", "push"]}
    matrix.callers["other-repo-token"] = Caller(
        bearer=foreign.json()["token"], mount_target=elsewhere
    )
    return matrix


# -- the operations -------------------------------------------------------------------------------
# Each does one operation as ``caller`` on ``repo`` and returns its outcome, checking what an
# allowed operation did (and that a refused one did nothing).


def _refusal(refused: httpx.Response, request: Callable[[], httpx.Response]) -> str:
    """A login the token server refused: its answer, and the registry's to the credentials."""
    assert refused.headers["WWW-Authenticate"] == 'Basic realm="dockyard"'
    outcome = _error(refused)
    assert _error(request()) == outcome
    return outcome


def _pull(m: Matrix, caller: str, repo: str, image: Image) -> str:
    client, refused = m.client(caller, f"repository:{repo}:pull")
    with client:
        if refused is not None:
            return _refusal(refused, lambda: client.get_manifest(repo, "v1"))
        response = client.get_manifest(repo, "v1")
        if response.status_code == 200:
            assert response.content == image.body
            for digest, data in image.blobs.items():
                assert client.get_blob(repo, digest).content == data
        return _outcome(response, 200)


def _tags(m: Matrix, caller: str, repo: str, image: Image) -> str:
    client, refused = m.client(caller, f"repository:{repo}:pull")
    with client:
        if refused is not None:
            return _refusal(refused, lambda: client.request("GET", f"/v2/{repo}/tags/list"))
        response = client.request("GET", f"/v2/{repo}/tags/list")
        if response.status_code == 200:
            assert response.json()["name"] == repo
            assert "v1" in response.json()["tags"]
        return _outcome(response, 200)


def _push(m: Matrix, caller: str, repo: str, image: Image) -> str:
    config, body = _tiny_manifest()
    reference = f"pushed-by-{caller}"
    client, refused = m.client(caller, f"repository:{repo}:pull,push")
    with client:
        if refused is not None:
            return _refusal(refused, lambda: client.request("POST", f"/v2/{repo}/blobs/uploads/"))
        started = client.request("POST", f"/v2/{repo}/blobs/uploads/")
        if started.status_code != 202:
            return _outcome(started, 202)
        url = client.resolve(started.headers["Location"], digest=digest_of(config))
        put = client.request("PUT", url, content=config)
        if put.status_code != 201:
            return _outcome(put, 201)
        outcome = _outcome(client.put_manifest(repo, reference, body), 201)
    if outcome == OK:
        with m.owner(f"repository:{repo}:pull") as owner:
            assert owner.get_manifest(repo, reference).content == body
    return outcome


def _delete(m: Matrix, caller: str, repo: str, image: Image) -> str:
    with m.owner(f"repository:{repo}:pull,push") as owner:
        victim = owner.push_image(repo, f"delete-by-{caller}", layers=0)
    client, refused = m.client(caller, f"repository:{repo}:delete")
    path = f"/v2/{repo}/manifests/{victim.digest}"
    with client:
        if refused is not None:
            outcome = _refusal(refused, lambda: client.request("DELETE", path))
        else:
            outcome = _outcome(client.request("DELETE", path), 202)
    with m.owner(f"repository:{repo}:pull") as owner:
        after = owner.get_manifest(repo, victim.digest).status_code
    assert after == (404 if outcome == OK else 200), f"{caller} deleted: {outcome}, then {after}"
    return outcome


def _mount(m: Matrix, caller: str, repo: str, image: Image) -> str:
    who = m.callers[caller]
    target = who.mount_target if who.bearer else f"{who.mount_target}-{repo.rsplit('/')[-1]}"
    layer = next(d for d, data in image.blobs.items() if len(data) == 512)
    query = f"mount={layer}&from={repo}"
    client, refused = m.client(caller, f"repository:{target}:pull,push", f"repository:{repo}:pull")
    path = f"/v2/{target}/blobs/uploads/?{query}"
    with client:
        if refused is not None:
            return _refusal(refused, lambda: client.request("POST", path))
        response = client.request("POST", path)
        present = client.request("HEAD", f"/v2/{target}/blobs/{layer}").status_code
    if response.status_code == 201:
        assert response.headers["Docker-Content-Digest"] == layer
        assert present == 200
        return OK
    if response.status_code == 202:
        # A new session, the same as a mount from a repository that does not exist.
        assert present == 404
        session = httpx.URL(response.headers["Location"]).path
        assert re.fullmatch(f"/v2/{re.escape(target)}/blobs/uploads/[^/?]+", session)
        return NO_MOUNT
    return _outcome(response, 201)


def _catalog(m: Matrix, caller: str, repo: str, image: Image) -> str:
    client, refused = m.client(caller, "registry:catalog:*")
    listed: list[str] = []
    with client:
        if refused is not None:
            return _refusal(refused, lambda: client.request("GET", "/v2/_catalog"))
        url = "/v2/_catalog?n=1000"
        while url:
            response = client.request("GET", url)
            if response.status_code != 200:
                return _outcome(response, 200)
            listed += response.json()["repositories"]
            link = re.match(r"<([^>]+)>", response.headers.get("Link", ""))
            url = link.group(1) if link else ""
    assert m.ghost not in listed
    return OK if repo in listed else HIDDEN


OPERATION: Mapping[str, Callable[[Matrix, str, str, Image], str]] = {
    "pull": _pull,
    "push": _push,
    "delete": _delete,
    "mount": _mount,
    "catalog": _catalog,
    "tags": _tags,
}


# -- the same refusal for a private repository and a missing one ----------------------------------


def _request_for(operation: str, repo: str, image: Image) -> tuple[str, str, tuple[str, ...]]:
    """The request a refused operation ended at, and the scopes it was asked with."""
    digest = image.digest
    layer = next(d for d, data in image.blobs.items() if len(data) == 512)
    return {
        "pull": ("GET", f"/v2/{repo}/manifests/v1", (f"repository:{repo}:pull",)),
        "tags": ("GET", f"/v2/{repo}/tags/list", (f"repository:{repo}:pull",)),
        "push": ("POST", f"/v2/{repo}/blobs/uploads/", (f"repository:{repo}:pull,push",)),
        "delete": ("DELETE", f"/v2/{repo}/manifests/{digest}", (f"repository:{repo}:delete",)),
        "mount": ("POST", f"?mount={layer}&from={repo}", (f"repository:{repo}:pull",)),
    }[operation]


def _like_a_missing_repository(m: Matrix, caller: str, operation: str) -> None:
    private, image = m.repos["private"], m.images["private"]
    answers: list[httpx.Response] = []
    grants: list[dict[str, list[str]]] = []
    for repo in (private, m.ghost):
        method, path, scopes = _request_for(operation, repo, image)
        if operation == "mount":
            who = m.callers[caller]
            target = who.mount_target if who.bearer else f"{who.mount_target}-private-app"
            scopes = (f"repository:{target}:pull,push", *scopes)
            path = f"/v2/{target}/blobs/uploads/{path}"
        client, _ = m.client(caller, *scopes)
        with client:
            answers.append(client.request(method, path))
        token = m.token_response(caller, scopes) if m.callers[caller].bearer is None else None
        if token is not None and token.status_code == 200:
            grants.append({k.replace(repo, "NAME"): v for k, v in _granted(token).items()})
    if operation == "mount" and answers[0].status_code == 202:
        # New sessions: the same status and headers but for the session's own id.
        assert [a.status_code for a in answers] == [202, 202]
        assert [sorted(a.headers) for a in answers] == [sorted(answers[1].headers)] * 2
        assert answers[0].content == answers[1].content == b""
    else:
        _same_shape(answers[0], answers[1], private, m.ghost)
    if grants:
        assert grants[0] == grants[1]


# -- the matrix -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("caller", "visibility", "operation"), CELLS)
def test_cell(matrix: Matrix, caller: str, visibility: str, operation: str) -> None:
    expected = EXPECTED[caller][operation][VISIBILITIES.index(visibility)]
    repo, image = matrix.repos[visibility], matrix.images[visibility]
    assert OPERATION[operation](matrix, caller, repo, image) == expected
    if visibility == "private" and expected not in (OK, HIDDEN) and operation != "catalog":
        _like_a_missing_repository(matrix, caller, operation)


def test_the_missing_repository_was_never_created(matrix: Matrix) -> None:
    """Last: the refusals compared with it did not bring it into being."""
    with matrix.owner(f"repository:{matrix.ghost}:pull") as owner:
        response = owner.request("GET", f"/v2/{matrix.ghost}/tags/list")
    assert response.status_code == 404, response.text
    assert response.json()["errors"][0]["code"] == "NAME_UNKNOWN"
