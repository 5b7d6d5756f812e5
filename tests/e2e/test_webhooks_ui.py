"""The webhooks page of a repository, over real HTTP as a browser uses it (signed in through
the login form, forms with their CSRF token): add a webhook, see a push's delivery with its
failed attempts, switch it off, delete it; only the repository's admins get there."""

from __future__ import annotations

import contextlib
import re
import secrets
from collections.abc import Callable, Iterator

import httpx
import pytest

from .conftest import DISTRIBUTION, _factory
from .manage_site import Hub, hub_fixture
from .test_webhooks import FAST, _pusher, _repository, _wait_deliveries, endpoint

pytestmark = pytest.mark.skipif(DISTRIBUTION, reason="webhooks are Dockyard's own")


@pytest.fixture(scope="module")
def hub(
    tmp_path_factory: pytest.TempPathFactory, unused_tcp_port_factory: Callable[[], int]
) -> Iterator[Hub]:
    factory = _factory(lambda: tmp_path_factory.mktemp("webhooks-ui"), unused_tcp_port_factory)
    config = {"hub": {"webhooks": {"allowprivate": True, "maxattempts": 4, **FAST}}}
    gen = hub_fixture(factory, tmp_path_factory.mktemp("keys"), config)
    yield next(gen)
    factory.close()


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found is not None, html[:2000]
    return found.group(1)


@contextlib.contextmanager
def _browser(hub: Hub, user: str) -> Iterator[httpx.Client]:
    """A client signed in through the login form, with the session cookie."""
    with httpx.Client(base_url=hub.url, timeout=30, follow_redirects=False) as client:
        login = client.get("/login")
        data = {
            "csrf": _csrf(login.text),
            "username": user,
            "password": hub.passwords[user],
            "next": "/",
        }
        assert client.post("/login", data=data).status_code == 303
        yield client


def test_webhooks_page(hub: Hub) -> None:
    owner = hub.add_user(f"owner-{secrets.token_hex(3)}")
    other = hub.add_user(f"other-{secrets.token_hex(3)}")
    repository = _repository(hub, owner, "public")
    page = f"/r/{repository}/-/webhooks"
    with _browser(hub, owner) as browser, endpoint() as target:
        settings = browser.get(f"/r/{repository}/-/settings")
        assert page in settings.text
        empty = browser.get(page)
        assert empty.status_code == 200
        assert "No webhooks yet" in empty.text
        assert "X-Dockyard-Signature-256" in empty.text
        csrf = _csrf(empty.text)
        # Without the form's CSRF token nothing is made.
        forged = {"name": "ci", "url": target.url, "active": "on"}
        assert browser.post(page, data=forged).status_code == 403
        assert hub.ok(owner, "GET", "/webhooks", params={"repository": repository}) == []
        bad = browser.post(page, data={**forged, "csrf": csrf, "url": "ftp://x.example.com/"})
        assert bad.status_code == 400
        assert "http:// or https://" in bad.text
        made = browser.post(page, data={**forged, "csrf": csrf, "secret": "k"})
        assert made.status_code == 303
        assert made.headers["location"] == page
        (hook,) = hub.ok(owner, "GET", "/webhooks", params={"repository": repository})
        assert (hook["name"], hook["url"], hook["active"], hook["secret_set"]) == (
            "ci",
            target.url,
            True,
            True,
        )
        target.failures = [502]
        with _pusher(hub, owner, repository) as client:
            client.push_image(repository, "shown")
        _wait_deliveries(hub, owner, hook["id"], lambda d: bool(d) and d[0]["state"] != "pending")
        shown = browser.get(page).text
        assert "shown" in shown
        assert "delivered" in shown
        assert "attempt 1" in shown
        assert "HTTP 502" in shown
        # Others: a repository they may read, but not administer.
        with _browser(hub, other) as stranger:
            assert stranger.get(page).status_code == 403
            toggle = f"{page}/{hook['id']}/toggle"
            token = _csrf(stranger.get("/").text)
            assert stranger.post(toggle, data={"csrf": token}).status_code == 403
        off = browser.post(f"{page}/{hook['id']}/toggle", data={"csrf": csrf})
        assert off.status_code == 303
        assert hub.ok(owner, "GET", f"/webhooks/{hook['id']}")["active"] is False
        assert "Switch on" in browser.get(page).text
        gone = browser.post(f"{page}/{hook['id']}/delete", data={"csrf": csrf})
        assert gone.status_code == 303
        assert browser.get(page).text.count('data-test="webhook"') == 0
        assert browser.post(f"{page}/{hook['id']}/delete", data={"csrf": csrf}).status_code == 404


def test_private_repository_page_is_not_found_for_others(hub: Hub) -> None:
    owner = hub.add_user(f"priv-{secrets.token_hex(3)}")
    other = hub.add_user(f"nosy-{secrets.token_hex(3)}")
    repository = _repository(hub, owner)
    with _browser(hub, other) as browser:
        assert browser.get(f"/r/{repository}/-/webhooks").status_code == 404
    anonymous = httpx.get(f"{hub.url}/r/{repository}/-/webhooks")
    assert anonymous.status_code == 303
    assert anonymous.headers["location"].startswith("/login")
