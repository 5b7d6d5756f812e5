"""Whether an account is an administrator's or disabled is for site administrators and the
user itself to see: to another signed-in user, ``GET /api/v1/users/{name}`` shows the public
fields with those two null, and the OpenAPI document says they may be."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator

import httpx
import pytest

from .conftest import DISTRIBUTION, _factory
from .manage_site import ADMIN, Hub, hub_fixture
from .registry import assert_error

pytestmark = pytest.mark.skipif(DISTRIBUTION, reason="the management API is Dockyard's own")

PRIVATE = ("is_admin", "disabled")
PUBLIC = ("name", "robot", "created_at")


@pytest.fixture(scope="module")
def hub(
    tmp_path_factory: pytest.TempPathFactory, unused_tcp_port_factory: Callable[[], int]
) -> Iterator[Hub]:
    factory = _factory(lambda: tmp_path_factory.mktemp("privacy"), unused_tcp_port_factory)
    gen = hub_fixture(factory, tmp_path_factory.mktemp("keys"))
    yield next(gen)
    factory.close()


def _user(hub: Hub, prefix: str, *, admin: bool = False) -> str:
    return hub.add_user(f"{prefix}-{secrets.token_hex(3)}", admin=admin)


def test_another_user_sees_only_public_fields(hub: Hub) -> None:
    alice, bob = _user(hub, "alice"), _user(hub, "bob")
    boss = _user(hub, "boss", admin=True)
    for target in (alice, boss, ADMIN):
        seen = hub.ok(bob, "GET", f"/users/{target}")
        assert seen["name"] == target
        assert all(seen[field] is not None for field in PUBLIC)
        assert {field: seen[field] for field in PRIVATE} == {"is_admin": None, "disabled": None}
    # Non-admins may not list users at all, so the list shows nothing of anyone.
    assert_error(hub.request(bob, "GET", "/users"), 403, "DENIED")


def test_self_and_admins_see_the_account_flags(hub: Hub) -> None:
    alice, boss = _user(hub, "alice"), _user(hub, "boss", admin=True)
    own = hub.ok(alice, "GET", f"/users/{alice}")
    assert (own["is_admin"], own["disabled"]) == (False, False)
    assert hub.ok(alice, "GET", "/user") == own
    assert hub.ok(boss, "GET", f"/users/{boss}")["is_admin"] is True
    for admin in (ADMIN, boss):
        seen = hub.ok(admin, "GET", f"/users/{alice}")
        assert (seen["is_admin"], seen["disabled"]) == (False, False)
        assert hub.ok(admin, "GET", f"/users/{boss}")["is_admin"] is True
        listed = {user["name"]: user for user in hub.ok(admin, "GET", "/users")}
        assert listed[alice]["disabled"] is False
        assert listed[boss]["is_admin"] is True


def test_a_disabled_user_is_not_revealed_to_others(hub: Hub) -> None:
    alice, bob = _user(hub, "alice"), _user(hub, "bob")
    hub.ok(ADMIN, "PATCH", f"/users/{alice}", json={"disabled": True})
    try:
        assert hub.ok(bob, "GET", f"/users/{alice}")["disabled"] is None
        assert hub.ok(ADMIN, "GET", f"/users/{alice}")["disabled"] is True
    finally:
        hub.ok(ADMIN, "PATCH", f"/users/{alice}", json={"disabled": False})


def test_openapi_document_says_the_flags_may_be_null(hub: Hub) -> None:
    document = httpx.get(f"{hub.url}/api/v1/openapi.json", timeout=30).json()
    schema = document["components"]["schemas"]["UserOut"]
    assert set(PRIVATE) | set(PUBLIC) <= set(schema["required"])
    for field in PRIVATE:
        kinds = {choice["type"] for choice in schema["properties"][field]["anyOf"]}
        assert kinds == {"boolean", "null"}
    for field in ("robot", "name"):
        assert "anyOf" not in schema["properties"][field]
