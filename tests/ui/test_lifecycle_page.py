"""Storage lifecycle in the UI, in a real headless chromium: a repository's tag rows show who
pushed each tag and when it was last pulled, and its settings show the storage it uses
against its quota."""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from e2e.registry import OCI_CONFIG, OCI_LAYER, RegistryClient, descriptor, image_manifest

from .conftest import USERS, Hub
from .test_browser import sign_in


def _client(hub: Hub, user: str, repository: str) -> RegistryClient:
    token = httpx.get(
        f"{hub.url}/token",
        params={"service": "dockyard", "scope": f"repository:{repository}:pull,push"},
        auth=(user, USERS[user]),
        timeout=30,
    ).json()["token"]
    client = RegistryClient(hub.url)
    client.http.headers["Authorization"] = f"Bearer {token}"
    return client


def _push(client: RegistryClient, repository: str, tag: str, layer: bytes) -> int:
    """Push a one-layer image; the bytes of its blobs."""
    config = json.dumps({"architecture": "amd64", "os": "linux", "tag": tag}).encode()
    client.push_blob(repository, config)
    client.push_blob(repository, layer)
    body = image_manifest(descriptor(OCI_CONFIG, config), [descriptor(OCI_LAYER, layer)])
    client.push_manifest(repository, tag, body)
    return len(config) + len(layer)


def _tag_cells(page: Any, test: str) -> dict[str, str]:
    rows = page.locator("[data-test=tag-row]")
    return {
        rows.nth(i).locator("[data-test=tag]").inner_text(): rows.nth(i)
        .locator(f"[data-test={test}]")
        .inner_text()
        for i in range(rows.count())
    }


def test_tags_show_pusher_and_last_pull_and_settings_show_usage(
    hub: Hub, browser: Any, shots: Callable[[Any, str], Path]
) -> None:
    repository = f"alice/lifecycle{secrets.token_hex(3)}"
    with _client(hub, "alice", repository) as client:
        used = _push(client, repository, "pulled", secrets.token_bytes(3000))
        used += _push(client, repository, "idle", secrets.token_bytes(1000))
        for _ in range(2):
            assert client.get_manifest(repository, "pulled").status_code == 200
    # A quota on the repository, set by a site administrator over the management API.
    answer = httpx.put(
        f"{hub.url}/api/v1/quotas/repositories/{repository}",
        json={"limit": "1MiB"},
        auth=("root", USERS["root"]),
        timeout=30,
    )
    assert answer.status_code == 200, answer.text

    context = browser.new_context()
    page = context.new_page()
    sign_in(page, hub, "alice")
    # Pushers come from the audit log and pulls are flushed every second: both a moment late.
    deadline = time.monotonic() + 20
    while True:
        page.goto(f"{hub.url}/r/{repository}")
        pushers = _tag_cells(page, "pushed-by")
        pulled = _tag_cells(page, "last-pulled")
        if pushers == {"pulled": "alice", "idle": "alice"} and pulled["pulled"] != "never":
            break
        assert time.monotonic() < deadline, (pushers, pulled)
        time.sleep(0.5)
    assert pulled == {"pulled": "just now", "idle": "never"}
    row = page.locator("[data-test=tag-row]", has_text="pulled").first
    assert row.locator("[data-test=last-pulled]").get_attribute("title").startswith("2 pull(s)")
    shots(page, "repository-lifecycle")

    page.goto(f"{hub.url}/r/{repository}/-/settings")
    assert page.locator("[data-test=usage-bytes]").get_attribute("title") == (
        f"{used} bytes in 4 blob(s)"
    )
    assert page.locator("[data-test=usage-quota]").inner_text() == "of 1.0 MiB quota"
    # Alice owns the namespace: she sees its total too.
    assert page.locator("[data-test=namespace-bytes]").count() == 1
    shots(page, "settings-usage")
    context.close()
