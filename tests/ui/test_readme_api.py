"""``/api/v1/readmes`` over real HTTP against a real ``dockyard serve``: whoever may see a
repository reads its README, its admins replace it, and the repository's pages show the
same README (the UI and the API share one service), bad input answered in the JSON error
format."""

from __future__ import annotations

import contextlib
import re
import secrets
from collections.abc import Callable, Iterator

import httpx
import pytest

from dockyard.hub.readmes import MAX_README
from e2e.conftest import _factory
from e2e.manage_site import Hub, basic, hub_fixture


@pytest.fixture(scope="module")
def hub(
    tmp_path_factory: pytest.TempPathFactory, unused_tcp_port_factory: Callable[[], int]
) -> Iterator[Hub]:
    factory = _factory(lambda: tmp_path_factory.mktemp("readmes"), unused_tcp_port_factory)
    yield next(hub_fixture(factory, tmp_path_factory.mktemp("keys")))
    factory.close()


def _code(response: httpx.Response) -> str:
    code: str = response.json()["errors"][0]["code"]
    return code


def _repository(hub: Hub, owner: str, visibility: str) -> str:
    name = f"{owner}/app-{secrets.token_hex(3)}"
    hub.ok(owner, "POST", "/repositories", json={"name": name, "visibility": visibility})
    return name


@contextlib.contextmanager
def _signed_in(hub: Hub, user: str) -> Iterator[httpx.Client]:
    """A client signed in through the login form, as a browser is."""
    with httpx.Client(base_url=hub.url, timeout=30, follow_redirects=False) as client:
        login = client.get("/login")
        csrf = re.search(r'name="csrf" value="([^"]+)"', login.text)
        assert csrf is not None
        data = {"csrf": csrf.group(1), "username": user, "password": hub.passwords[user]}
        assert client.post("/login", data=data).status_code == 303
        yield client


def test_read_and_replace(hub: Hub) -> None:
    owner = hub.add_user(f"owner-{secrets.token_hex(3)}")
    other = hub.add_user(f"other-{secrets.token_hex(3)}")
    private = _repository(hub, owner, "private")
    path = f"/readmes/{private}"

    empty = hub.ok(owner, "GET", path)
    assert empty == {"repository": private, "markdown": "", "updated_at": None}

    text = "# Hello\n\nSee *the docs*.\n"
    put = hub.ok(owner, "PUT", path, json={"markdown": text})
    assert put["markdown"] == text
    assert put["updated_at"] is not None
    assert hub.ok(owner, "GET", path)["markdown"] == text

    # Someone who may not see it: as if it did not exist, for reading and writing.
    for method, body in (("GET", None), ("PUT", {"markdown": "mine now"})):
        refused = hub.request(other, method, path, json=body)
        assert refused.status_code == 404, refused.text
        assert _code(refused) == "NAME_UNKNOWN"
    assert hub.ok(owner, "GET", path)["markdown"] == text

    # A public repository: anyone signed in reads it, only its admins change it.
    public = _repository(hub, owner, "public")
    hub.ok(owner, "PUT", f"/readmes/{public}", json={"markdown": "open"})
    assert hub.ok(other, "GET", f"/readmes/{public}")["markdown"] == "open"
    denied = hub.request(other, "PUT", f"/readmes/{public}", json={"markdown": "defaced"})
    assert denied.status_code == 403
    assert _code(denied) == "DENIED"
    assert hub.ok(owner, "GET", f"/readmes/{public}")["markdown"] == "open"

    # Signed in with nothing: 401; with a read-only token: no change.
    assert hub.request(None, "GET", path).status_code == 401
    reader = hub.ok(
        None,
        "POST",
        "/user/tokens",
        auth=basic(owner, hub.passwords[owner]),
        json={"name": "reader", "scopes": ["read"]},
    )["secret"]
    read_only = hub.request(
        None, "PUT", path, auth=f"Bearer {reader}", json={"markdown": "changed"}
    )
    assert read_only.status_code == 403
    assert hub.request(None, "GET", path, auth=f"Bearer {reader}").json()["markdown"] == text

    # An empty README removes it.
    assert hub.ok(owner, "PUT", path, json={"markdown": ""})["updated_at"] is None
    assert hub.ok(owner, "GET", path) == {"repository": private, "markdown": "", "updated_at": None}


def test_long_readme_and_bad_input(hub: Hub) -> None:
    owner = hub.add_user(f"owner-{secrets.token_hex(3)}")
    path = f"/readmes/{_repository(hub, owner, 'private')}"
    # Longer than other request bodies may be (64 KiB), as long as the UI accepts.
    longest = ("é" * 63 + "\n") * (MAX_README // 64)
    assert len(longest) == MAX_README
    assert hub.ok(owner, "PUT", path, json={"markdown": longest})["markdown"] == longest

    bad_bodies: list[dict[str, object]] = [
        {},
        {"markdown": 7},
        {"markdown": None},
        {"markdown": "x", "extra": True},
        {"markdown": "x" * (MAX_README + 1)},
    ]
    for body in bad_bodies:
        response = hub.request(owner, "PUT", path, json=body)
        assert response.status_code == 400, (body, response.text)
        assert _code(response) == "REQUEST_INVALID"
    for raw in (b"not json", b"[]", b'"text"'):
        response = hub.request(owner, "PUT", path, content=raw)
        assert response.status_code == 400
        assert _code(response) == "REQUEST_INVALID"
    huge = hub.request(owner, "PUT", path, content=b'{"markdown": "' + b"a" * 2_000_000 + b'"}')
    assert huge.status_code == 400
    assert "larger than" in huge.json()["errors"][0]["message"]
    assert hub.ok(owner, "GET", path)["markdown"] == longest

    for name in ("Upper/Case", "a//b", "nobody/here"):
        response = hub.request(owner, "GET", f"/readmes/{name}")
        assert response.status_code == 404, name
        assert _code(response) == "NAME_UNKNOWN"


def test_pages_and_api_share_the_readme(hub: Hub) -> None:
    owner = hub.add_user(f"owner-{secrets.token_hex(3)}")
    name = _repository(hub, owner, "private")
    hub.ok(owner, "PUT", f"/readmes/{name}", json={"markdown": "# From the API"})
    with _signed_in(hub, owner) as browser:
        page = browser.get(f"/r/{name}")
        assert page.status_code == 200
        assert "<h1>From the API</h1>" in page.text
        settings = browser.get(f"/r/{name}/-/settings")
        csrf = re.search(r'name="csrf" value="([^"]+)"', settings.text)
        assert csrf is not None
        form = {
            "csrf": csrf.group(1),
            "visibility": "private",
            "description": "",
            "readme": "From the settings page",
        }
        assert browser.post(f"/r/{name}/-/settings", data=form).status_code == 303
    assert hub.ok(owner, "GET", f"/readmes/{name}")["markdown"] == "From the settings page"

    # A repository deleted over the API and made again starts without the old README.
    hub.ok(owner, "DELETE", f"/repositories/{name}")
    hub.ok(owner, "POST", "/repositories", json={"name": name, "visibility": "private"})
    assert hub.ok(owner, "GET", f"/readmes/{name}")["markdown"] == ""
