"""``/v2/<name>/blobs/uploads/``: start, chunk, finish, status, cancel, mount."""

from __future__ import annotations

import re

from starlette.requests import Request
from starlette.responses import Response

from dockyard.api.base import (
    authorize,
    body,
    content_length,
    context,
    digest_param,
    location,
    repository,
)
from dockyard.auth.base import Access
from dockyard.core.uploads import UploadState
from dockyard.errors import BlobUploadUnknown, Denied, RangeInvalid, SizeInvalid, Unauthorized
from dockyard.metadata.base import BlobRecord
from dockyard.reference import validate_name

__all__ = ["cancel_upload", "finish_upload", "patch_upload", "start_upload", "upload_status"]

_CONTENT_RANGE = re.compile(r"(\d{1,18})-(\d{1,18})")
_UUID = re.compile(r"[A-Za-z0-9-]{1,64}")


def _session_headers(request: Request, state: UploadState) -> dict[str, str]:
    end = state.offset - 1 if state.offset else 0
    return {
        "Location": location(request, f"/v2/{state.repository}/blobs/uploads/{state.id}"),
        "Range": f"0-{end}",
        "Docker-Upload-UUID": state.id,
        "Content-Length": "0",
    }


def _created(request: Request, name: str, blob: BlobRecord) -> Response:
    return Response(
        status_code=201,
        headers={
            "Location": location(request, f"/v2/{name}/blobs/{blob.digest}"),
            "Docker-Content-Digest": blob.digest,
            "Content-Length": "0",
        },
    )


def _upload_id(request: Request) -> str:
    upload_id: str = request.path_params["uuid"]
    if _UUID.fullmatch(upload_id) is None:
        raise BlobUploadUnknown(detail={"uuid": upload_id[:80]})
    return upload_id


def _chunk_bounds(request: Request) -> tuple[int | None, int | None]:
    """The chunk's start (from Content-Range) and length (from Content-Length)."""
    length = content_length(request)
    header = request.headers.get("content-range")
    if header is None:
        return None, length
    match = _CONTENT_RANGE.fullmatch(header.strip())
    if match is None:
        raise RangeInvalid(message=f"invalid Content-Range: {header[:100]!r}")
    start, end = int(match[1]), int(match[2])
    if end < start:
        raise RangeInvalid(message=f"invalid Content-Range: {header[:100]!r}")
    if length is not None and length != end - start + 1:
        raise SizeInvalid(message="Content-Length does not match Content-Range")
    return start, end - start + 1


def _add_location(request: Request, name: str, upload_id: str, error: RangeInvalid) -> None:
    if "Range" in error.headers:
        path = f"/v2/{name}/blobs/uploads/{upload_id}"
        error.headers.setdefault("Location", location(request, path))


async def start_upload(request: Request) -> Response:
    name = repository(request)
    registry = context(request).registry
    mount = request.query_params.get("mount")
    digest_text = request.query_params.get("digest")
    await authorize(request, [Access.repository(name, "pull", "push")])
    if mount is not None:
        digest = digest_param(mount)
        source = request.query_params.get("from")
        if source and source != name:
            validate_name(source)
            try:
                await authorize(request, [Access.repository(source, "pull")])
                readable = True
            except (Unauthorized, Denied):
                readable = False  # no right to read the source: fall back to a normal upload
            if readable:
                blob = await registry.uploads.mount(name, digest, source)
                if blob is not None:
                    return _created(request, name, blob)
    elif digest_text is not None:
        digest = digest_param(digest_text)
        length = content_length(request)
        if length is not None or request.headers.get("transfer-encoding"):
            blob = await registry.uploads.monolithic(name, digest, body(request), length)
            return _created(request, name, blob)
    state = await registry.uploads.start(name)
    return Response(status_code=202, headers=_session_headers(request, state))


async def patch_upload(request: Request) -> Response:
    name = repository(request)
    upload_id = _upload_id(request)
    await authorize(request, [Access.repository(name, "pull", "push")])
    start, length = _chunk_bounds(request)
    try:
        state = await context(request).registry.uploads.append(
            name, upload_id, body(request), start, length
        )
    except RangeInvalid as error:
        _add_location(request, name, upload_id, error)
        raise
    return Response(status_code=202, headers=_session_headers(request, state))


async def finish_upload(request: Request) -> Response:
    name = repository(request)
    upload_id = _upload_id(request)
    await authorize(request, [Access.repository(name, "pull", "push")])
    digest = digest_param(request.query_params.get("digest", ""))
    start, length = _chunk_bounds(request)
    try:
        blob = await context(request).registry.uploads.finish(
            name, upload_id, digest, body(request), start, length
        )
    except RangeInvalid as error:
        _add_location(request, name, upload_id, error)
        raise
    return _created(request, name, blob)


async def upload_status(request: Request) -> Response:
    name = repository(request)
    upload_id = _upload_id(request)
    await authorize(request, [Access.repository(name, "pull")])
    state = await context(request).registry.uploads.status(name, upload_id)
    headers = _session_headers(request, state)
    del headers["Content-Length"]
    return Response(status_code=204, headers=headers)


async def cancel_upload(request: Request) -> Response:
    name = repository(request)
    upload_id = _upload_id(request)
    await authorize(request, [Access.repository(name, "push")])
    await context(request).registry.uploads.cancel(name, upload_id)
    return Response(status_code=204)
