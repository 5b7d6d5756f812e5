"""``POST /api/v1/signup`` over real HTTP against a real ``dockyard serve``: without
credentials, only where ``ui.signup`` allows it, under the sign-up page's rules (name
grammar, a name nobody has, a password of 8 characters or more), audited."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator

import httpx
import pytest

from e2e.conftest import _factory
from e2e.manage_site import ADMIN, Hub, basic, hub_fixture


@pytest.fixture(scope="module")
def hub(
    tmp_path_factory: pytest.TempPathFactory, unused_tcp_port_factory: Callable[[], int]
) -> Iterator[Hub]:
    factory = _factory(lambda: tmp_path_factory.mktemp("signup"), unused_tcp_port_factory)
    config = {"ui": {"signup": True}}
    yield next(hub_fixture(factory, tmp_path_factory.mktemp("keys"), config))
    factory.close()


def _code(response: httpx.Response) -> str:
    code: str = response.json()["errors"][0]["code"]
    return code


def test_sign_up_without_credentials(hub: Hub) -> None:
    name = f"newcomer{secrets.token_hex(3)}"
    made = hub.request(None, "POST", "/signup", json={"name": name, "password": "long enough"})
    assert made.status_code == 201, made.text
    assert made.json()["name"] == name
    assert made.json()["is_admin"] is False
    # The account works at once, for the API and for the sign-in page.
    me = hub.request(None, "GET", "/user", auth=basic(name, "long enough"))
    assert me.json()["name"] == name
    with httpx.Client(base_url=hub.url, follow_redirects=False) as browser:
        csrf = browser.get("/login").text.split('name="csrf" value="')[1].split('"')[0]
        data = {"csrf": csrf, "username": name, "password": "long enough"}
        assert browser.post("/login", data=data).status_code == 303
    audit = hub.ok(ADMIN, "GET", "/audit", params={"action": "user.signup", "actor": name})
    assert [e["actor"] for e in audit["events"]] == [name]

    # Taken: by a user, or by an organization.
    hub.ok(ADMIN, "POST", "/organizations", json={"name": f"org{name}"})
    for taken in (name, ADMIN, f"org{name}"):
        again = hub.request(None, "POST", "/signup", json={"name": taken, "password": "x" * 8})
        assert again.status_code == 409, taken
        assert _code(again) == "CONFLICT"
        assert again.json()["errors"][0]["message"] == "That name is taken."


def test_bad_input(hub: Hub) -> None:
    name = f"someone{secrets.token_hex(3)}"
    bodies: list[dict[str, object]] = [
        {"name": name, "password": "short"},
        {"name": "Not A Name", "password": "long enough"},
        {"name": "", "password": "long enough"},
        {"name": name},
        {"name": name, "password": 12345678},
        # Nobody makes itself a site administrator.
        {"name": name, "password": "long enough", "is_admin": True},
    ]
    for body in bodies:
        response = hub.request(None, "POST", "/signup", json=body)
        assert response.status_code == 400, (body, response.text)
        assert _code(response) == "REQUEST_INVALID"
    for raw in (b"", b"nonsense", b"[]"):
        response = hub.request(None, "POST", "/signup", content=raw)
        assert response.status_code == 400
        assert _code(response) == "REQUEST_INVALID"
    assert hub.request(ADMIN, "GET", f"/users/{name}").status_code == 404


def test_closed_unless_the_config_allows_it(
    tmp_path_factory: pytest.TempPathFactory, unused_tcp_port_factory: Callable[[], int]
) -> None:
    factory = _factory(lambda: tmp_path_factory.mktemp("closed"), unused_tcp_port_factory)
    try:
        closed = next(hub_fixture(factory, tmp_path_factory.mktemp("keys")))
        body = {"name": "hopeful", "password": "long enough"}
        response = closed.request(None, "POST", "/signup", json=body)
        assert response.status_code == 404
        assert _code(response) == "NOT_FOUND"
        assert "closed" in response.json()["errors"][0]["message"]
        assert closed.request(ADMIN, "GET", "/users/hopeful").status_code == 404
    finally:
        factory.close()
