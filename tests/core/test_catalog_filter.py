"""The catalog narrowed by a grant's filter: pages stay full and links stay right however
many names the filter drops."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import pytest

from contracts.metadata_suite import manifest
from dockyard.core import listing
from dockyard.metadata.base import MetadataStore
from dockyard.metadata.factory import open_store

NAMES = [f"r{i:03d}" for i in range(450)]


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[MetadataStore]:
    opened = await open_store(f"sqlite:///{tmp_path / 'm.db'}")
    for name in NAMES:
        await opened.put_manifest(manifest(name, name), [])
    yield opened
    await opened.close()


class Every:
    """Keeps every ``step``-th name, counting the calls it answers."""

    def __init__(self, step: int) -> None:
        self.step = step
        self.calls = 0

    async def __call__(self, names: Sequence[str]) -> Sequence[str]:
        self.calls += 1
        return [n for n in names if int(n[1:]) % self.step == 0]


async def _all_pages(store: MetadataStore, n: int, keep: Every) -> list[list[str]]:
    pages, last = [], None
    while True:
        page = await listing.catalog(store, listing.Pagination(n, last), visible=keep)
        pages.append(page.items)
        if page.next_n is None:
            return pages
        assert page.next_n == n
        last = page.items[-1]


async def test_filtered_pages_are_full_until_the_last(store: MetadataStore) -> None:
    keep = Every(7)
    pages = await _all_pages(store, 10, keep)
    expected = [n for n in NAMES if int(n[1:]) % 7 == 0]
    assert [name for page in pages for name in page] == expected
    assert all(len(page) == 10 for page in pages[:-1])
    assert 0 < len(pages[-1]) <= 10


async def test_sparse_filter_reads_in_batches(store: MetadataStore) -> None:
    keep = Every(400)
    page = await listing.catalog(store, listing.Pagination(None, None), visible=keep)
    assert page.items == ["r000", "r400"]
    assert page.next_n is None
    # 450 names in batches of VISIBLE_BATCH: three calls, not one per name.
    assert keep.calls == -(-len(NAMES) // listing.VISIBLE_BATCH)


async def test_nothing_visible(store: MetadataStore) -> None:
    async def none(names: Sequence[str]) -> Sequence[str]:
        return []

    page = await listing.catalog(store, listing.Pagination(5, None), visible=none)
    assert page.items == []
    assert page.next_n is None


async def test_no_filter_lists_everything(store: MetadataStore) -> None:
    page = await listing.catalog(store, listing.Pagination(1000, None))
    assert page.items == NAMES
