"""``/v2/<name>/manifests/<reference>``: GET, HEAD, PUT and DELETE."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from dockyard.api.base import authorize, content_length, context, location, repository
from dockyard.auth.base import Access
from dockyard.core.manifests import MAX_MANIFEST_SIZE, Reference
from dockyard.errors import ManifestTooLarge, ManifestUnknown
from dockyard.mediatypes import DOCKER_MANIFEST_LIST, OCI_INDEX, OCI_MANIFEST

__all__ = ["delete_manifest", "get_manifest", "put_manifest"]

# Distribution refuses to serve these types to clients whose Accept header excludes them.
_NEGOTIATED = frozenset({OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST_LIST})


def _accepts(request: Request, media_type: str) -> bool:
    values = request.headers.getlist("accept")
    if not values or media_type not in _NEGOTIATED:
        return True
    accepted = {
        part.split(";", 1)[0].strip().lower() for value in values for part in value.split(",")
    }
    accepted.discard("")
    return not accepted or "*/*" in accepted or media_type in accepted


async def get_manifest(request: Request) -> Response:
    name = repository(request)
    reference = Reference.parse(request.path_params["reference"])
    await authorize(request, [Access.repository(name, "pull")])
    manifests = context(request).registry.manifests
    record = await manifests.get(name, reference)
    if not _accepts(request, record.media_type):
        raise ManifestUnknown(
            message=f"manifest of type {record.media_type} not acceptable to the client"
        )
    headers = {
        "Docker-Content-Digest": record.digest,
        "ETag": f'"{record.digest}"',
        "Content-Type": record.media_type,
        "Content-Length": str(record.size),
    }
    head = request.method == "HEAD"
    manifests.served(record, reference, head=head)
    if head:
        return Response(status_code=200, headers=headers)
    return Response(record.payload, status_code=200, headers=headers)


async def _read_payload(request: Request) -> bytes:
    length = content_length(request)
    if length is not None and length > MAX_MANIFEST_SIZE:
        raise ManifestTooLarge(detail={"limit": MAX_MANIFEST_SIZE})
    payload = bytearray()
    async for chunk in request.stream():
        payload += chunk
        if len(payload) > MAX_MANIFEST_SIZE:
            raise ManifestTooLarge(detail={"limit": MAX_MANIFEST_SIZE})
    return bytes(payload)


async def put_manifest(request: Request) -> Response:
    name = repository(request)
    reference = Reference.parse(request.path_params["reference"])
    await authorize(request, [Access.repository(name, "pull", "push")])
    payload = await _read_payload(request)
    content_type = request.headers.get("content-type")
    pushed = await context(request).registry.manifests.put(name, reference, payload, content_type)
    headers = {
        "Location": location(request, f"/v2/{name}/manifests/{pushed.digest}"),
        "Docker-Content-Digest": pushed.digest,
        "Content-Length": "0",
    }
    if pushed.subject is not None:
        headers["OCI-Subject"] = pushed.subject
    return Response(status_code=201, headers=headers)


async def delete_manifest(request: Request) -> Response:
    name = repository(request)
    reference = Reference.parse(request.path_params["reference"])
    await authorize(request, [Access.repository(name, "delete")])
    await context(request).registry.manifests.delete(name, reference)
    return Response(status_code=202, headers={"Content-Length": "0"})
