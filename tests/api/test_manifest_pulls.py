"""A served manifest is told to the core once, and both pull records come from that one call:
the tag's pull count (GET and HEAD by tag) and the pull event (GET, by tag or digest). The real
application, its real database, and a real notification endpoint that refuses everything, so
that every event stays in the outbox to be read."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from sqlalchemy import select

from dockyard.app import create_app
from dockyard.config import Config, load_config
from dockyard.metadata.engine import open_database
from dockyard.metadata.migrate import upgrade
from dockyard.metadata.schema import events, tag_pulls
from e2e.registry import OCI_CONFIG, OCI_LAYER, OCI_MANIFEST, descriptor, digest_of
from e2e.registry import image_manifest as image_body
from events.receiver import Receiver, receiver

REPO = "team/app"


@pytest.fixture
def refusing() -> Iterator[Receiver]:
    with receiver() as state:
        state.status = 503
        yield state


@pytest.fixture
async def config(tmp_path: Path, refusing: Receiver) -> Config:
    root = tmp_path / "data"
    root.mkdir()
    path = tmp_path / "config.yml"
    endpoint = {"name": "listener", "url": refusing.url, "timeout": "1s", "backoff": "1h"}
    path.write_text(
        yaml.safe_dump(
            {
                "version": 0.1,
                "storage": {"filesystem": {"rootdirectory": str(root)}},
                "notifications": {"endpoints": [endpoint]},
            }
        )
    )
    loaded = load_config(str(path), {})
    await upgrade(loaded.database_url)
    return loaded


async def _push_image(client: httpx.AsyncClient, tag: str) -> str:
    config, layer = json.dumps({"nonce": os.urandom(8).hex()}).encode(), os.urandom(300)
    for blob in (config, layer):
        pushed = await client.post(
            f"/v2/{REPO}/blobs/uploads/", params={"digest": digest_of(blob)}, content=blob
        )
        assert pushed.status_code == 201, pushed.text
    payload = image_body(descriptor(OCI_CONFIG, config), [descriptor(OCI_LAYER, layer)])
    put = await client.put(
        f"/v2/{REPO}/manifests/{tag}", content=payload, headers={"Content-Type": OCI_MANIFEST}
    )
    assert put.status_code == 201, put.text
    return digest_of(payload)


async def _recorded(config: Config) -> tuple[dict[str, int], list[dict[str, Any]]]:
    """The stored pull counts per tag, and the pull events in the outbox."""
    database = open_database(config.database_url)
    try:
        counts = await database.read(select(tag_pulls).where(tag_pulls.c.repository == REPO))
        bodies = await database.read(select(events.c.body).order_by(events.c.id))
    finally:
        await database.close()
    pulls = [event for row in bodies if (event := json.loads(row.body))["action"] == "pull"]
    return {row.tag: row.pulls for row in counts}, pulls


async def test_one_call_counts_the_tag_and_emits_the_event(config: Config) -> None:
    app = create_app(config)
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 5000))
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://registry") as client,
    ):
        digest = await _push_image(client, "v1")
        accept = {"Accept": OCI_MANIFEST}
        head = await client.head(f"/v2/{REPO}/manifests/v1", headers=accept)
        assert head.status_code == 200
        by_tag = await client.get(f"/v2/{REPO}/manifests/v1", headers=accept)
        assert by_tag.status_code == 200
        by_digest = await client.get(f"/v2/{REPO}/manifests/{digest}", headers=accept)
        assert by_digest.status_code == 200
        # A HEAD by digest is neither: no tag, and no pull.
        assert (await client.head(f"/v2/{REPO}/manifests/{digest}")).status_code == 200
    # The app has shut down: both batches were written.
    counts, pulls = await _recorded(config)
    # HEAD and GET by tag count; GET by digest does not.
    assert counts == {"v1": 2}
    # GET by tag and GET by digest emit; the HEADs do not.
    assert [(p["target"]["digest"], p["target"].get("tag")) for p in pulls] == [
        (digest, "v1"),
        (digest, None),
    ]
    assert {p["request"]["method"] for p in pulls} == {"GET"}
