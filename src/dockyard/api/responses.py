"""A lean response for whole blobs on a local filesystem.

The size comes from the metadata store, so no ``stat`` is needed; with Granian's
``http.response.pathsend`` extension the kernel sends the file (zero copy), otherwise it is
streamed in large chunks.
"""

from __future__ import annotations

import anyio
from starlette.types import Receive, Scope, Send

__all__ = ["LocalFileResponse"]

_CHUNK = 1 << 20


class LocalFileResponse:
    def __init__(self, path: str, size: int, headers: dict[str, str], media_type: str) -> None:
        self.path = path
        self.size = size
        self.status_code = 200
        raw = {**headers, "Content-Length": str(size), "Content-Type": media_type}
        self.raw_headers = [(k.lower().encode(), v.encode()) for k, v in raw.items()]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send(
            {"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers}
        )
        if "http.response.pathsend" in scope.get("extensions", {}):
            await send({"type": "http.response.pathsend", "path": self.path})
            return
        async with await anyio.open_file(self.path, "rb") as file:
            remaining = self.size
            while remaining > 0:
                chunk = await file.read(min(_CHUNK, remaining))
                if not chunk:
                    break
                remaining -= len(chunk)
                await send(
                    {"type": "http.response.body", "body": chunk, "more_body": remaining > 0}
                )
        if remaining:
            return
        if self.size == 0:
            await send({"type": "http.response.body", "body": b"", "more_body": False})
