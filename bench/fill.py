"""Fill a registry with many repositories and tags without its HTTP API, which would take
hours for 100k of them: each registry's own records are written directly.

- Dockyard: rows written through its ``MetadataStore`` (``link_blob`` creates a repository;
  ``put_manifest`` with a batch of tags tags a manifest).
- Distribution: its storage layout under ``<root>/docker/registry/v2/repositories/<name>/``,
  the link files its catalog and tag list read: ``_layers/sha256/<hex>/link`` makes a
  repository, ``_manifests/tags/<tag>/current/link`` and
  ``_manifests/tags/<tag>/index/sha256/<hex>/link`` a tag.

Both link to one small image (:class:`Seed`) pushed through the API first, so each filled
repository serves a real blob and each filled tag a real manifest.
"""

from __future__ import annotations

import asyncio
import itertools
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from dockyard.metadata.factory import open_store
from dockyard.metadata.sql import SqlMetadataStore
from registry import RegistryClient, image_config, image_manifest, sha256

__all__ = ["DistributionFiller", "DockyardFiller", "Filler", "Seed", "push_seed"]

# Concurrent link_blob calls: enough to keep the database's writer busy between hops.
_LINK_CONCURRENCY = 8
# Tags set in one put_manifest transaction.
_TAG_BATCH = 1000


@dataclass(frozen=True, slots=True)
class Seed:
    """The image every filled repository and tag links to."""

    repository: str
    layer: str
    layer_size: int
    manifest: bytes

    @property
    def manifest_digest(self) -> str:
        return sha256(self.manifest)


def push_seed(client: RegistryClient, repository: str) -> Seed:
    """Push one small image by digest (no tag) through the API."""
    layer = os.urandom(1024)
    layer_digest = client.push_bytes(repository, layer)
    config = image_config([layer_digest], "scaling")
    config_digest = client.push_bytes(repository, config)
    manifest = image_manifest((config_digest, len(config)), [(layer_digest, len(layer))])
    client.put_manifest(repository, sha256(manifest), manifest)
    return Seed(repository, layer_digest, len(layer), manifest)


class Filler(Protocol):
    seed: Seed

    def add_repositories(self, names: Sequence[str]) -> None:
        """Create each repository, each serving the seed's layer."""
        ...

    def add_tags(self, tags: Sequence[str]) -> None:
        """Point each tag of the seed's repository at the seed's manifest."""
        ...

    def close(self) -> None: ...


def _batches(items: Iterable[str], size: int) -> Iterator[list[str]]:
    iterator = iter(items)
    while batch := list(itertools.islice(iterator, size)):
        yield batch


class DockyardFiller:
    """Writes through Dockyard's ``MetadataStore``, on an event loop of its own."""

    def __init__(self, database_url: str, seed: Seed) -> None:
        self.seed = seed
        self._runner = asyncio.Runner()
        self._store: SqlMetadataStore = self._runner.run(open_store(database_url))

    async def _link_all(self, names: Sequence[str]) -> None:
        pending = iter(names)

        async def worker() -> None:
            for name in pending:  # shared: each name goes to one worker
                await self._store.link_blob(name, self.seed.layer, self.seed.layer_size)

        await asyncio.gather(*(worker() for _ in range(_LINK_CONCURRENCY)))

    def add_repositories(self, names: Sequence[str]) -> None:
        self._runner.run(self._link_all(names))

    async def _tag_all(self, tags: Sequence[str]) -> None:
        record = await self._store.get_manifest(self.seed.repository, self.seed.manifest_digest)
        if record is None:
            raise RuntimeError(f"the seed manifest is not in {self.seed.repository}")
        for batch in _batches(tags, _TAG_BATCH):
            await self._store.put_manifest(record, batch)

    def add_tags(self, tags: Sequence[str]) -> None:
        self._runner.run(self._tag_all(tags))

    def close(self) -> None:
        try:
            self._runner.run(self._store.close())
        finally:
            self._runner.close()


def _write_link(directory: Path, digest: str) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "link").write_text(digest)


class DistributionFiller:
    """Writes Distribution's storage layout under its filesystem root."""

    def __init__(self, root: Path, seed: Seed) -> None:
        self.seed = seed
        self.repositories = root / "docker" / "registry" / "v2" / "repositories"
        if not (self.repositories / seed.repository).is_dir():
            raise RuntimeError(f"no {seed.repository} under {self.repositories}")

    def add_repositories(self, names: Sequence[str]) -> None:
        algorithm, hex_digest = self.seed.layer.split(":")
        for name in names:
            layer = self.repositories / name / "_layers" / algorithm / hex_digest
            _write_link(layer, self.seed.layer)

    def add_tags(self, tags: Sequence[str]) -> None:
        digest = self.seed.manifest_digest
        algorithm, hex_digest = digest.split(":")
        root = self.repositories / self.seed.repository / "_manifests" / "tags"
        for tag in tags:
            _write_link(root / tag / "current", digest)
            _write_link(root / tag / "index" / algorithm / hex_digest, digest)

    def close(self) -> None:
        pass
