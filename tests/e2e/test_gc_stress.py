"""Online garbage collection under load: clients push, retag, delete and pull over real HTTP
while the collector runs in a loop with a one-second grace; afterwards every tag pulls whole and a
final collection leaves storage holding exactly the blobs manifests reference."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import random
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from dockyard.metadata.factory import open_store
from dockyard.metadata.schema import blobs, manifest_blobs

from .conftest import DISTRIBUTION, RegistryServer
from .registry import (
    ALL_MANIFEST_TYPES,
    OCI_CONFIG,
    OCI_LAYER,
    RegistryClient,
    descriptor,
    digest_of,
    image_manifest,
)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(DISTRIBUTION, reason="Dockyard's own online garbage collection"),
]

SECONDS = 25.0
CLIENTS = 4
# Layers that every client draws from, so that pushes and deletions of the same digests race.
SHARED_LAYERS = [os.urandom(2048) for _ in range(6)]


def _retry(step: Callable[[], bool], attempts: int = 40) -> None:
    for _ in range(attempts):
        if step():
            return
        time.sleep(0.05)
    raise AssertionError("a push kept failing")


class Client:
    """One client with a repository of its own: what it believes is tagged there."""

    def __init__(self, url: str, index: int, deadline: float) -> None:
        self.http = RegistryClient(url)
        self.repo = f"stress/client{index}"
        self.rng = random.Random(index)
        self.deadline = deadline
        self.tags: dict[str, str] = {}
        self.errors: list[str] = []
        self.pushes = 0
        self.pulls = 0
        self.retries = 0
        self.pushed: set[str] = set()

    def push_image(self, tag: str) -> None:
        config = json.dumps({"nonce": os.urandom(8).hex()}).encode()
        layers = [*self.rng.sample(SHARED_LAYERS, 2), os.urandom(512)]
        body = image_manifest(
            descriptor(OCI_CONFIG, config), [descriptor(OCI_LAYER, la) for la in layers]
        )

        def attempt() -> bool:
            # The collector may take a fresh link between the blob and the manifest push
            # (if they are more than the grace apart): the registry then refuses the
            # manifest, and the client pushes the blobs again, as real clients do.
            for blob in (config, *layers):
                self.pushed.add(self.http.push_blob(self.repo, blob))
            response = self.http.put_manifest(self.repo, tag, body)
            if response.status_code == 201:
                return True
            self.retries += 1
            assert response.status_code == 400, response.text
            assert "MANIFEST_BLOB_UNKNOWN" in response.text, response.text
            return False

        _retry(attempt)
        self.tags[tag] = digest_of(body)
        self.pushes += 1

    def pull(self, tag: str) -> None:
        response = self.http.get_manifest(self.repo, tag, accept=ALL_MANIFEST_TYPES)
        assert response.status_code == 200, f"{self.repo}:{tag}: {response.text}"
        assert digest_of(response.content) == self.tags[tag]
        doc: dict[str, Any] = json.loads(response.content)
        for desc in [doc["config"], *doc["layers"]]:
            blob = self.http.get_blob(self.repo, desc["digest"])
            assert blob.status_code == 200, f"{self.repo} {desc['digest']}: {blob.text}"
            assert "sha256:" + hashlib.sha256(blob.content).hexdigest() == desc["digest"]
        self.pulls += 1

    def step(self) -> None:
        action = self.rng.random()
        if action < 0.35 or not self.tags:
            self.push_image(f"t{self.rng.randrange(4)}")  # new tags and retags
        elif action < 0.45:
            tag = self.rng.choice(sorted(self.tags))
            assert self.http.http.delete(f"/v2/{self.repo}/manifests/{tag}").status_code == 202
            del self.tags[tag]
        elif action < 0.55:
            tag = self.rng.choice(sorted(self.tags))
            digest = self.tags[tag]
            response = self.http.http.delete(f"/v2/{self.repo}/manifests/{digest}")
            assert response.status_code == 202, response.text
            self.tags = {t: d for t, d in self.tags.items() if d != digest}
        elif action < 0.65:
            # A blob pushed and deleted again: garbage at once.
            digest = self.http.push_blob(self.repo, os.urandom(256))
            self.pushed.add(digest)
            assert self.http.http.delete(f"/v2/{self.repo}/blobs/{digest}").status_code == 202
        else:
            self.pull(self.rng.choice(sorted(self.tags)))

    def run(self) -> None:
        try:
            while time.monotonic() < self.deadline:
                self.step()
        except BaseException as error:
            self.errors.append(f"{type(error).__name__}: {error}")
        finally:
            self.http.close()


def _stored_blobs(root: Path) -> set[str]:
    return {f"{p.parts[-4]}:{p.parts[-2]}" for p in (root / "blobs").rglob("data")}


def _database_facts(url: str) -> tuple[set[str], set[str]]:
    """The blobs recorded, and the blobs some manifest references."""

    async def read() -> tuple[set[str], set[str]]:
        store = await open_store(url, migrate=False)
        try:
            rows = await store.database.read(select(blobs.c.digest))
            referenced = await store.database.read(select(manifest_blobs.c.digest))
        finally:
            await store.close()
        return {row.digest for row in rows}, {row.digest for row in referenced}

    return asyncio.run(read())


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest) -> Iterator[str | None]:
    if request.param == "sqlite":
        yield None
        return
    from metadata.test_postgres import fresh_database

    with fresh_database() as url:
        yield url


def test_collection_under_concurrent_pushes_deletes_and_pulls(
    registry_factory: Callable[..., RegistryServer], database_url: str | None
) -> None:
    # One second of grace, not none: with none, a push slower than the collector's period (as
    # on a loaded machine) could lose its fresh links on every attempt. Deleted tags still free
    # shared layers that other clients are pushing again, which is the race under test.
    gc = {"enabled": True, "interval": "200ms", "grace": "1s", "deleteuntagged": True}
    config: dict[str, Any] = {"gc": gc}
    if database_url is not None:
        config["database"] = {"url": database_url}
    server = registry_factory(config)
    url = database_url or f"sqlite:///{server.root / 'dockyard.db'}"
    deadline = time.monotonic() + SECONDS
    clients = [Client(server.url, n, deadline) for n in range(CLIENTS)]
    threads = [threading.Thread(target=c.run) for c in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(SECONDS + 60)
    assert not any(thread.is_alive() for thread in threads)
    assert [error for c in clients for error in c.errors] == []
    assert sum(c.pushes for c in clients) > 20
    assert sum(c.pulls for c in clients) > 20
    server.stop()
    # The collector kept up while the clients ran: most of what they pushed is gone.
    pushed = set().union(*(c.pushed for c in clients))
    during, _ = _database_facts(url)
    assert len(during) < len(pushed) / 2, (len(during), len(pushed))

    # A final collection, with the registry's own command, once the last candidates are due.
    time.sleep(1.5)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REGISTRY_", "DOCKYARD_"))}
    done = subprocess.run(
        [sys.executable, "-m", "dockyard", "gc", "--delete-untagged", str(server.config_path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    rows, referenced = _database_facts(url)
    assert _stored_blobs(server.root) == rows == referenced

    server.start()
    for client in clients:
        client.http = RegistryClient(server.url)
        try:
            for tag in sorted(client.tags):
                client.pull(tag)
            listed = client.http.http.get(f"/v2/{client.repo}/tags/list").json().get("tags") or []
            assert sorted(listed) == sorted(client.tags)
        finally:
            client.http.close()
