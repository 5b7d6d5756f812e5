"""The metered storage driver and metadata store keep their seams' contracts, and count."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from contracts.metadata_suite import MetadataStoreContract
from contracts.storage_suite import StorageDriverContract
from dockyard.metadata.base import MetadataStore
from dockyard.metadata.factory import open_store
from dockyard.observability.metadata import MeteredMetadata
from dockyard.observability.metrics import Metrics
from dockyard.observability.storage import MeteredStorage
from dockyard.storage.base import StorageDriver
from dockyard.storage.filesystem import FilesystemDriver


class TestMeteredStorageContract(StorageDriverContract):
    @pytest.fixture
    def driver(self, tmp_path: Path) -> StorageDriver:
        return MeteredStorage(FilesystemDriver(str(tmp_path)), Metrics())


class TestMeteredMetadataContract(MetadataStoreContract):
    @pytest.fixture
    async def store(self, tmp_path: Path) -> AsyncIterator[MetadataStore]:
        inner = await open_store(f"sqlite:///{tmp_path / 'metadata.db'}")
        store = MeteredMetadata(inner, Metrics())
        yield store
        await store.close()


def values(metrics: Metrics, name: str) -> dict[frozenset[tuple[str, str]], float]:
    out = {}
    for family in text_string_to_metric_families(metrics.exposition().decode()):
        for sample in family.samples:
            if sample.name == name:
                out[frozenset(sample.labels.items())] = sample.value
    return out


def op(operation: str) -> frozenset[tuple[str, str]]:
    return frozenset({("driver", "filesystem"), ("operation", operation)})


async def test_storage_calls_bytes_and_uploads_are_counted(tmp_path: Path) -> None:
    metrics = Metrics()
    storage = MeteredStorage(FilesystemDriver(str(tmp_path)), metrics)
    writer = await storage.writer("uploads/u/data")
    assert values(metrics, "dockyard_uploads_in_progress") == {frozenset(): 1}
    await writer.write(b"x" * 1000)
    await writer.commit()
    assert values(metrics, "dockyard_uploads_in_progress") == {frozenset(): 0}
    failed = await storage.writer("uploads/v/data")
    await failed.commit()
    await failed.cancel()  # after a commit, as a failed request may: its end counts once
    assert values(metrics, "dockyard_uploads_in_progress") == {frozenset(): 0}
    await storage.move("uploads/u/data", "blobs/b/data")
    read = b"".join([chunk async for chunk in storage.reader("blobs/b/data", 10, 90)])
    assert read == b"x" * 90
    await storage.put_content("small", b"abc")
    assert await storage.get_content("small") == b"abc"
    calls = values(metrics, "dockyard_storage_operation_duration_seconds_count")
    for name in ("write", "cancel", "move", "reader", "put_content", "get_content"):
        assert calls[op(name)] == 1, name
    assert calls[op("writer")] == calls[op("commit")] == 2
    moved = values(metrics, "dockyard_storage_bytes_total")
    assert moved[frozenset({("driver", "filesystem"), ("direction", "written")})] == 1003
    assert moved[frozenset({("driver", "filesystem"), ("direction", "read")})] == 93


async def test_metadata_calls_are_timed(tmp_path: Path) -> None:
    metrics = Metrics()
    store = MeteredMetadata(await open_store(f"sqlite:///{tmp_path / 'm.db'}"), metrics)
    try:
        assert await store.list_repositories(10) == []
        assert await store.get_blob("sha256:" + "0" * 64) is None
        assert await store.get_blob("sha256:" + "1" * 64) is None
    finally:
        await store.close()
    calls = values(metrics, "dockyard_metadata_operation_duration_seconds_count")
    assert calls[frozenset({("operation", "list_repositories")})] == 1
    assert calls[frozenset({("operation", "get_blob")})] == 2
