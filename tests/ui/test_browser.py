"""The hub in a real headless chromium: sign in, create an organization and a private
repository, add a webhook to it, push an image into it with skopeo, receive the webhook on a
test endpoint and see its delivery, read its tags, layers and history, star it, search for it
as its owner and as another user, delete a tag. Screenshots of the main pages are saved (see
``shots``). No script from a README or an image label may run."""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from auth.builtin_setup import write_key
from e2e.clients import Skopeo, host_of
from e2e.conftest import _factory
from events.receiver import Receiver, receiver

from .conftest import USERS, Hub, add_users, hub_config
from .images import COMMANDS, SBOM_TYPE, app_image, layout_with, push_referrer

pytestmark = pytest.mark.clients

HOSTILE_README = """# Hello

<script>window.pwned = "readme-script"</script>
<img src="x" onerror="window.pwned = 'readme-img'">

[click me](javascript:window.pwned='readme-link')

**bold** and a [real link](https://example.org/docs).
"""
HOSTILE_LABEL = (
    '<script>window.pwned="label"</script><img src=x onerror="window.pwned=\'label-img\'">'
)


@pytest.fixture(scope="module")
def hub(
    tmp_path_factory: pytest.TempPathFactory, unused_tcp_port_factory: Callable[[], int]
) -> Iterator[Hub]:
    """The UI's server, whose webhooks may reach the test endpoint on loopback, and retry
    quickly."""
    factory = _factory(lambda: tmp_path_factory.mktemp("hub"), unused_tcp_port_factory)
    start = next(factory)
    config = hub_config(write_key(tmp_path_factory.mktemp("keys") / "signing.pem"))
    config["hub"] = {"webhooks": {"allowprivate": True, "backoff": "100ms", "maxbackoff": "400ms"}}
    server = start(config, run=False)
    add_users(server, USERS, {"root"})
    server.start()
    yield Hub(server)
    factory.close()


@pytest.fixture
def endpoint() -> Iterator[Receiver]:
    with receiver() as found:
        yield found


def payloads(endpoint: Receiver, count: int, timeout: float = 20.0) -> list[dict[str, Any]]:
    """The first ``count`` webhook bodies the endpoint accepted, waiting for them."""
    deadline = time.monotonic() + timeout
    while len(endpoint.accepted) < count:
        assert time.monotonic() < deadline, f"{len(endpoint.accepted)} webhook(s) received"
        time.sleep(0.05)
    with endpoint.lock:
        return [received.body for received in endpoint.accepted[:count]]


def sign_in(page: Any, hub: Hub, user: str) -> None:
    page.goto(f"{hub.url}/login")
    page.fill("input[name=username]", user)
    page.fill("input[name=password]", USERS[user])
    page.click("form.card button[type=submit]")
    page.wait_for_url(f"{hub.url}/")
    assert page.locator("[data-test=me]").inner_text() == user


def not_pwned(page: Any) -> None:
    assert page.evaluate("typeof window.pwned") == "undefined"


def test_the_whole_journey(
    hub: Hub,
    browser: Any,
    shots: Callable[[Any, str], Path],
    tmp_path: Path,
    endpoint: Receiver,
) -> None:
    org = f"acme{secrets.token_hex(3)}"
    repo = f"{org}/app"
    dialogs: list[str] = []
    context = browser.new_context()
    page = context.new_page()

    def on_dialog(dialog: Any) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)

    page.goto(f"{hub.url}/login")
    shots(page, "login")
    sign_in(page, hub, "alice")

    # An organization, with a team.
    page.goto(f"{hub.url}/organizations/new")
    page.fill("input[name=name]", org)
    page.click("form.card button[type=submit]")
    page.wait_for_url(f"{hub.url}/u/{org}")
    page.fill("input[name=team]", "devs")
    page.click("text=Create team")
    page.wait_for_url(f"{hub.url}/u/{org}")
    assert page.locator("[data-test=team] h3").inner_text() == "devs"
    shots(page, "organization")

    # A private repository with a hostile README.
    page.goto(f"{hub.url}/new?namespace={org}")
    page.fill("input[name=name]", "app")
    page.check("input[name=visibility][value=private]")
    page.fill("input[name=description]", "The app, packaged")
    page.fill("textarea[name=readme]", HOSTILE_README)
    page.click("form.card button[type=submit]")
    page.wait_for_url(f"{hub.url}/r/{repo}")
    assert page.locator("[data-test=visibility]").inner_text() == "private"

    # A webhook, from the repository's settings.
    page.goto(f"{hub.url}/r/{repo}/-/settings")
    page.click("[data-test=webhooks]")
    page.wait_for_url(f"{hub.url}/r/{repo}/-/webhooks")
    page.fill("input[name=name]", "ci")
    page.fill("input[name=url]", endpoint.url)
    page.click("text=Add webhook")
    page.wait_for_url(f"{hub.url}/r/{repo}/-/webhooks")
    hook = page.locator("[data-test=webhook]")
    assert hook.count() == 1
    assert endpoint.url in hook.inner_text()

    # Pushed by a real client, with the owner's password, through the token flow.
    image = app_image({"org.opencontainers.image.title": "app", "evil": HOSTILE_LABEL})
    other = app_image({"org.opencontainers.image.title": "app"}, marker="2")
    layout = layout_with(tmp_path / "layout", {"v1": image, "v2": other})
    skopeo = Skopeo(host_of(hub.url), tmp_path / "skopeo")
    for tag in ("v1", "v2"):
        skopeo.copy(
            f"oci:{layout}:{tag}", skopeo.ref(repo, tag), "--dest-creds", "alice:wonderland"
        )

    # An SBOM attached to v1, by the OCI referrers API's subject.
    token = httpx.get(
        f"{hub.url}/token",
        params={"service": "dockyard", "scope": f"repository:{repo}:pull,push"},
        auth=("alice", USERS["alice"]),
    ).json()["token"]
    sbom = push_referrer(hub.url, token, repo, image)

    # The test endpoint received each push in Docker Hub's format, and the page shows it.
    received = {body["push_data"]["tag"]: body for body in payloads(endpoint, 2)}
    assert sorted(received) == ["v1", "v2"]
    namespace, name = repo.split("/")
    for body in received.values():
        assert body["push_data"]["pusher"] == "alice"
        assert body["repository"]["repo_name"] == repo
        assert (body["repository"]["namespace"], body["repository"]["name"]) == (namespace, name)
        assert body["repository"]["is_private"] is True
        assert body["callback_url"].startswith(f"{hub.url}/api/v1/webhooks/")
    assert received["v1"]["push_data"]["images"] == [image.digest]
    page.reload()
    rows = page.locator("[data-test=deliveries] tbody tr")
    assert rows.count() == 2
    assert sorted(row.split("\t")[1] for row in rows.all_inner_texts()) == ["v1", "v2"]
    assert all("delivered" in row and "200" in row for row in rows.all_inner_texts())
    shots(page, "webhooks")

    page.goto(f"{hub.url}/r/{repo}")
    rows = page.locator("[data-test=tag-row]")
    assert sorted(page.locator("[data-test=tag]").all_inner_texts()) == ["v1", "v2"]
    assert rows.count() == 2
    assert "linux/amd64" in rows.first.inner_text()
    pull = page.locator("[data-test=pull]").inner_text()
    assert pull.startswith(f"docker pull {host_of(hub.url)}/{repo}:")
    readme = page.locator("[data-test=readme]")
    assert readme.locator("h1").inner_text() == "Hello"
    assert readme.locator("script").count() == 0
    assert readme.locator("img").count() == 0
    assert readme.locator("a[href^=javascript]").count() == 0
    assert "<script>" in readme.inner_text()  # shown as text, not run
    not_pwned(page)
    shots(page, "repository")

    # The tag page: layers with sizes and the commands that made them, config, labels.
    page.click("[data-test=tag] >> text=v1")
    page.wait_for_url(f"{hub.url}/r/{repo}/-/tags/v1")
    assert page.locator("[data-test=digest]").inner_text() == image.digest
    commands = page.locator("[data-test=layer-command]").all_inner_texts()
    assert [c.strip() for c in commands] == [c.strip() for c in COMMANDS]
    sizes = page.locator("[data-test=layer-size]").all_inner_texts()
    assert len(sizes) == 2
    assert all(re.fullmatch(r"[\d.]+ (B|KiB)", s) for s in sizes)
    assert page.locator("[data-test=entrypoint]").inner_text() == '["/usr/bin/curl"]'
    assert "APP_MODE=production" in page.locator("[data-test=env]").inner_text()
    assert HOSTILE_LABEL in page.locator("[data-test=label-value]").all_inner_texts()
    assert page.locator("[data-test=labels] script").count() == 0
    referrers = page.locator("[data-test=referrers]").inner_text()
    assert SBOM_TYPE in referrers
    assert sbom.removeprefix("sha256:")[:12] in referrers
    not_pwned(page)
    shots(page, "tag")

    # A star, through htmx (the count changes in place).
    page.goto(f"{hub.url}/r/{repo}")
    page.click("[data-test=star]")
    page.wait_for_selector("[data-test=unstar]")
    assert page.locator("[data-test=stars]").inner_text() == "1"
    page.reload()
    assert page.locator("[data-test=unstar] [data-test=stars]").inner_text() == "1"

    # Suggestions as the owner types.
    page.goto(f"{hub.url}/")
    page.fill("header input[name=q]", org)
    page.wait_for_selector("[data-test=suggestions]")
    assert page.locator("[data-test=suggestions] a").all_inner_texts() == [repo]

    # Search as the owner: found, starred.
    page.goto(f"{hub.url}/search?q={org}")
    assert page.locator("ul.repos .name").all_inner_texts() == [repo]
    page.goto(f"{hub.url}/search?q={org}&starred=yes")
    assert page.locator("ul.repos .name").all_inner_texts() == [repo]
    shots(page, "search")

    # Delete a tag, with confirmation.
    page.goto(f"{hub.url}/r/{repo}/-/tags/v2")
    page.click("[data-test=delete-tag]")
    page.wait_for_url(f"{hub.url}/r/{repo}/-/tags/v2/delete")
    shots(page, "delete-tag")
    page.click("[data-test=confirm]")
    page.wait_for_url(f"{hub.url}/r/{repo}")
    assert page.locator("[data-test=tag]").all_inner_texts() == ["v1"]

    # On a phone.
    phone = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
    phone.add_cookies(context.cookies())
    small = phone.new_page()
    small.goto(f"{hub.url}/r/{repo}")
    assert small.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
    shots(small, "repository-phone")
    phone.close()

    # The dark theme follows the system setting.
    dark = browser.new_context(color_scheme="dark")
    dark.add_cookies(context.cookies())
    night = dark.new_page()
    night.goto(f"{hub.url}/r/{repo}/-/tags/v1")
    assert night.evaluate("getComputedStyle(document.body).backgroundColor") == "rgb(15, 20, 26)"
    assert page.evaluate("getComputedStyle(document.body).backgroundColor") == "rgb(255, 255, 255)"
    shots(night, "tag-dark")
    dark.close()

    page.goto(f"{hub.url}/")
    shots(page, "explore")
    assert dialogs == []
    context.close()

    # Another user: neither search nor the page shows that the repository exists.
    bob = browser.new_context()
    other_page = bob.new_page()
    sign_in(other_page, hub, "bob")
    with other_page.expect_response(lambda response: "/search/suggest" in response.url):
        other_page.fill("header input[name=q]", org)
    assert other_page.locator("[data-test=suggestions] a").count() == 0
    other_page.goto(f"{hub.url}/search?q={org}")
    assert other_page.locator("ul.repos .name").count() == 0
    assert other_page.locator("[data-test=count]").inner_text() == "0 repositories"
    response = other_page.goto(f"{hub.url}/r/{repo}")
    assert response.status == 404
    response = other_page.goto(f"{hub.url}/r/{repo}/-/tags/v1")
    assert response.status == 404
    shots(other_page, "not-found")
    bob.close()

    # And the registry agrees that the tag is gone.
    token = httpx.get(
        f"{hub.url}/token",
        params={"service": "dockyard", "scope": f"repository:{repo}:pull"},
        auth=("alice", USERS["alice"]),
    ).json()["token"]
    tags = httpx.get(
        f"{hub.url}/v2/{repo}/tags/list", headers={"Authorization": f"Bearer {token}"}
    ).json()
    assert tags["tags"] == ["v1"]
