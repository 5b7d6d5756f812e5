"""Cache hits and misses, counted by the cached metadata store into the Prometheus metrics:
an in-process cache here (the Redis one is scraped end to end in tests/e2e/test_ops.py)."""

from __future__ import annotations

from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from contracts.metadata_suite import linked_image
from dockyard.cache.memory import MemoryCache
from dockyard.metadata.cached import CachedMetadataStore
from dockyard.metadata.factory import open_store
from dockyard.observability.metrics import Metrics


def lookups(metrics: Metrics) -> dict[tuple[str, str, str], float]:
    counts = {}
    for family in text_string_to_metric_families(metrics.exposition().decode()):
        for sample in family.samples:
            if sample.name == "dockyard_cache_lookups_total":
                labels = sample.labels
                counts[labels["cache"], labels["kind"], labels["result"]] = sample.value
    return counts


async def test_hits_and_misses_of_an_in_memory_cache(tmp_path: Path) -> None:
    metrics = Metrics()
    inner = await open_store(f"sqlite:///{tmp_path / 'metadata.db'}")
    store = CachedMetadataStore(inner, MemoryCache(), stats=metrics.cache_stats("memory"))
    try:
        image = await linked_image(store, "repo", "one", ["latest"])
        # The first read sets the cache up, the second fills it: both from the database.
        for _ in range(2):
            assert await store.get_tagged_manifest("repo", "latest") == image
        assert lookups(metrics) == {("memory", "tag", "miss"): 2.0}
        for _ in range(3):
            assert await store.get_tagged_manifest("repo", "latest") == image
        assert await store.get_tagged_manifest("repo", "absent") is None
        assert await store.get_blob(image.blobs[0]) is not None
        assert lookups(metrics) == {
            ("memory", "tag", "miss"): 3.0,
            ("memory", "tag", "hit"): 3.0,
            ("memory", "blob", "miss"): 1.0,
        }
    finally:
        await store.close()
