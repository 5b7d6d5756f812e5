"""An upload session's lease is renewed while a request writes, and a writer that lost it
stops at once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from dockyard.core.lease import held
from dockyard.errors import BlobUploadInvalid
from dockyard.metadata.base import MetadataStore, UploadBusy, UploadRecord
from dockyard.metadata.factory import open_store


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[MetadataStore]:
    opened = await open_store(f"sqlite:///{tmp_path / 'meta.db'}")
    now = datetime.now(UTC)
    await opened.create_upload(UploadRecord("u", "repo", 0, b"", now, now))
    yield opened
    await opened.close()


async def test_the_lease_outlives_its_first_expiry_while_held(store: MetadataStore) -> None:
    record = await store.acquire_upload("u", 0.3)
    assert record is not None
    async with held(store, record, 0.3):
        await asyncio.sleep(0.8)
        with pytest.raises(UploadBusy):
            await store.acquire_upload("u", 30)
    # Once the block ends nothing renews it: it expires and another request may take it.
    await asyncio.sleep(0.4)
    assert await store.acquire_upload("u", 30) is not None


async def test_a_writer_that_lost_its_lease_is_stopped(store: MetadataStore) -> None:
    stale = await store.acquire_upload("u", 0.1)
    assert stale is not None
    await asyncio.sleep(0.2)
    assert await store.acquire_upload("u", 30) is not None  # another request takes over
    reached_end: list[bool] = []

    async def write_for_a_while() -> None:
        async with held(store, stale, 0.3):
            await asyncio.sleep(2)
            reached_end.append(True)

    with pytest.raises(BlobUploadInvalid, match="taken over"):
        await write_for_a_while()
    assert not reached_end
