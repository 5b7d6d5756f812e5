"""The one route table of the registry API."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from dockyard.api import blobs, listing, manage, manifests, referrers, token, uploads
from dockyard.api.base import authorize
from dockyard.api.search import get_search

__all__ = ["routes"]


async def base(request: Request) -> Response:
    await authorize(request, [])
    return JSONResponse({})


def routes() -> list[Route]:
    name = "/v2/{name:path}"
    return [
        Route("/v2/", base, methods=["GET", "HEAD"]),
        Route("/v2/_catalog", listing.get_catalog, methods=["GET"]),
        Route(f"{name}/tags/list", listing.get_tags, methods=["GET"]),
        Route(
            f"{name}/manifests/{{reference}}",
            manifests.get_manifest,
            methods=["GET", "HEAD"],
        ),
        Route(f"{name}/manifests/{{reference}}", manifests.put_manifest, methods=["PUT"]),
        Route(f"{name}/manifests/{{reference}}", manifests.delete_manifest, methods=["DELETE"]),
        Route(f"{name}/blobs/uploads/", uploads.start_upload, methods=["POST"]),
        Route(f"{name}/blobs/uploads", uploads.start_upload, methods=["POST"]),
        Route(f"{name}/blobs/uploads/{{uuid}}", uploads.upload_status, methods=["GET"]),
        Route(f"{name}/blobs/uploads/{{uuid}}", uploads.patch_upload, methods=["PATCH"]),
        Route(f"{name}/blobs/uploads/{{uuid}}", uploads.finish_upload, methods=["PUT"]),
        Route(f"{name}/blobs/uploads/{{uuid}}", uploads.cancel_upload, methods=["DELETE"]),
        Route(f"{name}/blobs/{{digest}}", blobs.get_blob, methods=["GET", "HEAD"]),
        Route(f"{name}/blobs/{{digest}}", blobs.delete_blob, methods=["DELETE"]),
        Route(f"{name}/referrers/{{digest}}", referrers.get_referrers, methods=["GET"]),
        # The token server of auth.builtin (404 under any other auth).
        Route("/token", token.get_token, methods=["GET"]),
        Route("/token", token.post_token, methods=["POST"]),
        Route("/token/jwks.json", token.get_jwks, methods=["GET"]),
        # docker search, in Docker Hub's format (auth.builtin; else 404).
        Route("/v1/search", get_search, methods=["GET"]),
        # The management API of auth.builtin (404 under any other auth).
        *manage.routes(),
    ]
