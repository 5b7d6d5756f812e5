"""``dockyard gc`` over a real data directory: a dry run reports and changes nothing, a real
run removes the same garbage."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import yaml
from sqlalchemy import delete
from sqlalchemy.engine import Connection

from dockyard.config import load_config
from dockyard.core.gc import Placements
from dockyard.core.manifests import Reference
from dockyard.core.policy import Policy
from dockyard.core.registry import Registry
from dockyard.digest import Digest
from dockyard.metadata.factory import open_store
from dockyard.metadata.gc import GcStore
from dockyard.metadata.schema import gc_blob_queue, gc_manifest_queue
from dockyard.storage.filesystem import FilesystemDriver
from e2e.registry import OCI_CONFIG, OCI_LAYER, OCI_MANIFEST, descriptor, digest_of
from e2e.registry import image_manifest as image_body


def _files(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in (root / "blobs").rglob("data")}


async def _populate(config_path: Path) -> tuple[tuple[str, list[str], int], str]:
    """Two pushes of one tag (the first left untagged) and a deleted loose blob."""
    config = load_config(str(config_path), {"HOME": str(config_path.parent)})
    assert config.storage.filesystem is not None
    store = await open_store(config.database_url)
    storage = FilesystemDriver(config.storage.filesystem.rootdirectory)
    registry = Registry(
        storage, store, Policy(delete_enabled=True), placements=Placements(GcStore(store.database))
    )

    async def push(data: bytes) -> str:
        async def body() -> AsyncIterator[bytes]:
            yield data

        await registry.uploads.monolithic("app", Digest.parse(digest_of(data)), body(), len(data))
        return digest_of(data)

    try:
        images: list[tuple[str, list[str], int]] = []
        for n in range(2):
            config_blob = json.dumps({"n": n}).encode()
            layer = os.urandom(1000 + n)
            blobs = [await push(config_blob), await push(layer)]
            payload = image_body(
                descriptor(OCI_CONFIG, config_blob), [descriptor(OCI_LAYER, layer)]
            )
            pushed = await registry.manifests.put(
                "app", Reference.parse("latest"), payload, OCI_MANIFEST
            )
            images.append((pushed.digest, blobs, len(config_blob) + len(layer)))
        loose = await push(b"l" * 500)
        await registry.blobs.delete("app", Digest.parse(loose))
    finally:
        await store.close()
    return images[0], loose


def _gc(config_path: Path, *options: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HOME": str(config_path.parent)}
    env.pop("DOCKYARD_CONFIG", None)
    return subprocess.run(
        [sys.executable, "-m", "dockyard", "gc", *options, str(config_path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


def test_gc_dry_run_then_collect(tmp_path: Path) -> None:
    root = tmp_path / "data"
    root.mkdir()
    config_path = tmp_path / "config.yml"
    config_path.write_text(
        yaml.safe_dump(
            {
                "version": "0.1",
                "storage": {"filesystem": {"rootdirectory": str(root)}},
                "gc": {"grace": 0, "enabled": False},
            }
        )
    )
    (old_digest, old_blobs, old_size), loose = asyncio.run(_populate(config_path))
    before = _files(root)

    dry = _gc(config_path, "--dry-run", "--delete-untagged")
    assert dry.returncode == 0, dry.stderr
    lines = dry.stdout.splitlines()
    assert f"manifest app@{old_digest}" in lines
    assert f"blob {loose} 500" in lines
    # The blobs the untagged manifest's removal frees are in the chain.
    for digest in old_blobs:
        assert any(line.startswith(f"blob {digest} ") for line in lines)
    assert lines[-1] == f"would remove 1 manifest(s), 3 blob(s), {500 + old_size} byte(s)"
    assert _files(root) == before

    # Without the flag only the loose blob goes.
    plain = _gc(config_path)
    assert plain.returncode == 0, plain.stderr
    assert plain.stdout.splitlines() == [
        f"blob {loose} 500",
        "removed 0 manifest(s), 1 blob(s), 500 byte(s)",
    ]

    full = _gc(config_path, "--delete-untagged")
    assert full.returncode == 0, full.stderr
    assert full.stdout.splitlines()[-1] == (f"removed 1 manifest(s), 2 blob(s), {old_size} byte(s)")
    remaining = _files(root)
    assert len(remaining) == len(before) - 3
    for digest in old_blobs:
        algorithm, encoded = digest.split(":")
        assert f"blobs/{algorithm}/{encoded[:2]}/{encoded}/data" not in remaining


async def _forget_queues(config_path: Path) -> None:
    config = load_config(str(config_path), {"HOME": str(config_path.parent)})
    store = await open_store(config.database_url)
    try:
        for table in (gc_blob_queue, gc_manifest_queue):
            await store.database.transaction(Connection.execute, delete(table))
    finally:
        await store.close()


def test_gc_rescan_finds_garbage_the_queues_lost(tmp_path: Path) -> None:
    root = tmp_path / "data"
    root.mkdir()
    config_path = tmp_path / "config.yml"
    config_path.write_text(
        yaml.safe_dump(
            {
                "version": "0.1",
                "storage": {"filesystem": {"rootdirectory": str(root)}},
                "gc": {"grace": 0, "enabled": False},
            }
        )
    )
    (old_digest, old_blobs, old_size), loose = asyncio.run(_populate(config_path))
    asyncio.run(_forget_queues(config_path))
    assert _gc(config_path, "--delete-untagged").stdout.splitlines() == [
        "removed 0 manifest(s), 0 blob(s), 0 byte(s)"
    ]

    done = _gc(config_path, "--rescan", "--delete-untagged")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    # Five blobs (two images' config and layer, the loose one), two manifests, no stray bytes.
    assert lines[0] == "rescan queued 5 blob(s), 2 manifest(s), 0 stored blob(s) without a row"
    assert f"manifest app@{old_digest}" in lines
    assert lines[-1] == f"removed 1 manifest(s), 3 blob(s), {old_size + 500} byte(s)"
    remaining = _files(root)
    assert len(remaining) == 2
    assert not {d for d in (*old_blobs, loose) if any(d[7:] in path for path in remaining)}
