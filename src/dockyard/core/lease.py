"""Keep an upload session's lease while a request writes to it.

A lease is short (so a session whose writer died frees up quickly) and renewed in the
background while the request streams. If a renewal finds the lease gone (this process stalled
past the expiry and another request took the session), the writing request is cancelled at
once: two writers must never append to one upload.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import datetime

from dockyard.errors import BlobUploadInvalid
from dockyard.metadata.base import MetadataStore, UploadRecord

__all__ = ["LEASE_SECONDS", "held"]

LEASE_SECONDS = 60.0


class _Lease:
    def __init__(self, metadata: MetadataStore, record: UploadRecord, seconds: float) -> None:
        self.token: datetime | None = record.lease
        self.lost = False
        self._metadata = metadata
        self._id = record.id
        self._seconds = seconds

    async def renew_forever(self, writer: asyncio.Task[object]) -> None:
        while self.token is not None:
            await asyncio.sleep(self._seconds / 3)
            self.token = await self._metadata.renew_upload(self._id, self.token, self._seconds)
            if self.token is None:
                self.lost = True
                writer.cancel()


@contextlib.asynccontextmanager
async def held(
    metadata: MetadataStore, record: UploadRecord, seconds: float = LEASE_SECONDS
) -> AsyncIterator[_Lease]:
    """Renew the lease of ``record`` (just acquired) until the block ends; a lost lease
    cancels the block, which then raises ``BlobUploadInvalid``."""
    lease = _Lease(metadata, record, seconds)
    current = asyncio.current_task()
    assert current is not None
    renewer = asyncio.create_task(lease.renew_forever(current))
    try:
        yield lease
    except asyncio.CancelledError:
        if not lease.lost:
            raise
        current.uncancel()
        raise BlobUploadInvalid(
            message="upload session was taken over by another request"
        ) from None
    finally:
        renewer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await renewer
