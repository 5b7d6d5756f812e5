"""``/v2/<name>/blobs/<digest>``: GET, HEAD and DELETE."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response, StreamingResponse

from dockyard.api.base import authorize, context, digest_param, repository
from dockyard.api.ranges import parse_range
from dockyard.api.responses import LocalFileResponse
from dockyard.auth.base import Access
from dockyard.core.blobs import BlobLocation, Blobs
from dockyard.errors import BlobUnknown
from dockyard.mediatypes import OCTET_STREAM
from dockyard.storage.base import PathNotFound

__all__ = ["delete_blob", "get_blob"]


def _headers(location: BlobLocation) -> dict[str, str]:
    return {
        "Docker-Content-Digest": location.digest,
        "Accept-Ranges": "bytes",
        "ETag": f'"{location.digest}"',
        "Cache-Control": "max-age=31536000",
    }


async def get_blob(request: Request) -> Response | LocalFileResponse:
    name = repository(request)
    digest = digest_param(request.path_params["digest"])
    await authorize(request, [Access.repository(name, "pull")])
    blobs = context(request).registry.blobs
    location = await blobs.locate(name, digest)
    headers = _headers(location)
    if request.method == "HEAD":
        headers["Content-Length"] = str(location.size)
        return Response(status_code=200, headers=headers, media_type=OCTET_STREAM)
    # A GET is a pull (a HEAD only asks whether the blob is there).
    blobs.pulled(name, location)
    range_header = request.headers.get("range")
    ranges = parse_range(range_header, location.size) if range_header else None
    if ranges is None:
        redirect = await blobs.redirect_url(location, "GET")
        if redirect is not None:
            # The content never changes, but a presigned URL expires: a cache that kept this
            # answer for the blob's lifetime would hand out a dead link. Without freshness
            # information a 307 is not stored at all (RFC 9111, section 4.2.2).
            del headers["Cache-Control"]
            return RedirectResponse(redirect, status_code=307, headers=headers)
        if location.local_path is not None:
            # Zero-copy send: Granian's pathsend extension serves the file from the kernel.
            return LocalFileResponse(location.local_path, location.size, headers, OCTET_STREAM)
        headers["Content-Length"] = str(location.size)
        return StreamingResponse(
            await _started(_guarded(blobs, location, 0, location.size, location.digest)),
            headers=headers,
            media_type=OCTET_STREAM,
        )
    if len(ranges) == 1:
        first, last = ranges[0]
        headers["Content-Range"] = f"bytes {first}-{last}/{location.size}"
        headers["Content-Length"] = str(last - first + 1)
        return StreamingResponse(
            await _started(_guarded(blobs, location, first, last - first + 1, location.digest)),
            status_code=206,
            headers=headers,
            media_type=OCTET_STREAM,
        )
    boundary = secrets.token_hex(16)
    parts = [
        (
            f"--{boundary}\r\nContent-Type: {OCTET_STREAM}\r\n"
            f"Content-Range: bytes {first}-{last}/{location.size}\r\n\r\n"
        ).encode()
        for first, last in ranges
    ]
    closing = f"\r\n--{boundary}--\r\n".encode()
    total = sum(len(p) for p in parts) + sum(last - first + 1 for first, last in ranges)
    total += 2 * (len(ranges) - 1) + len(closing)
    headers["Content-Length"] = str(total)

    async def multipart() -> AsyncIterator[bytes]:
        for index, ((first, last), head) in enumerate(zip(ranges, parts, strict=True)):
            yield (b"\r\n" + head) if index else head
            async for chunk in _guarded(blobs, location, first, last - first + 1, location.digest):
                yield chunk
        yield closing

    return StreamingResponse(
        multipart(),
        status_code=206,
        headers=headers,
        media_type=f"multipart/byteranges; boundary={boundary}",
    )


async def _started(chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """``chunks``, its first chunk read before the response starts: a store that fails
    before the first byte (the object gone, the store out of reach) fails the request with
    a status of its own instead of a 200 cut short."""
    first = await anext(aiter(chunks), None)

    async def rest() -> AsyncIterator[bytes]:
        if first is None:
            return
        yield first
        async for chunk in chunks:
            yield chunk

    return rest()


async def _guarded(
    blobs: Blobs, location: BlobLocation, offset: int, length: int, digest: str
) -> AsyncIterator[bytes]:
    try:
        async for chunk in blobs.read(location, offset, length):
            yield chunk
    except PathNotFound:
        raise BlobUnknown(detail={"digest": digest}) from None


async def delete_blob(request: Request) -> Response:
    name = repository(request)
    digest = digest_param(request.path_params["digest"])
    await authorize(request, [Access.repository(name, "delete")])
    await context(request).registry.blobs.delete(name, digest)
    return Response(status_code=202, headers={"Content-Length": "0"})
