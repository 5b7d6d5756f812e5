"""``/v2/<name>/tags/list`` and ``/v2/_catalog``, with ``n``/``last`` pagination."""

from __future__ import annotations

from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from dockyard.api.base import authorize, context, repository
from dockyard.auth.base import Access
from dockyard.core import listing

__all__ = ["get_catalog", "get_tags"]


def _link(path: str, page: listing.Page) -> dict[str, str]:
    if page.next_n is None or not page.items:
        return {}
    query = urlencode({"n": page.next_n, "last": page.items[-1]})
    return {"Link": f'<{path}?{query}>; rel="next"'}


async def get_tags(request: Request) -> Response:
    name = repository(request)
    await authorize(request, [Access.repository(name, "pull")])
    pagination = listing.Pagination.parse(
        request.query_params.get("n"), request.query_params.get("last")
    )
    page = await listing.tags(context(request).registry.metadata, name, pagination)
    return JSONResponse(
        {"name": name, "tags": page.items}, headers=_link(f"/v2/{name}/tags/list", page)
    )


async def get_catalog(request: Request) -> Response:
    grant = await authorize(request, [Access.catalog()])
    pagination = listing.Pagination.parse(
        request.query_params.get("n"), request.query_params.get("last")
    )
    page = await listing.catalog(
        context(request).registry.metadata, pagination, visible=grant.visible
    )
    return JSONResponse({"repositories": page.items}, headers=_link("/v2/_catalog", page))
