"""``GET /api/v1/search``: repositories the caller may pull, by name, namespace, official
or not, starred by the caller or not; totals count only what the caller may see."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict
from starlette.routing import Route

from dockyard.api.manage.base import Call, Operation, Query, routes_of
from dockyard.api.manage.stars import discovery_of
from dockyard.errors import RequestInvalid
from dockyard.hub.search import Order, SearchQuery
from dockyard.identity.base import InvalidName, check_name

__all__ = ["OPERATIONS", "SearchOut", "SearchResult", "routes"]


class SearchResult(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    description: str
    star_count: int
    is_official: bool
    visibility: str | None
    pushed_at: datetime | None
    starred: bool


class SearchOut(BaseModel):
    model_config = ConfigDict(frozen=True)

    total: int
    results: list[SearchResult]


def _flag(call: Call, name: str) -> bool | None:
    value = call.text(name, limit=8)
    if value is None:
        return None
    if value not in ("true", "false"):
        raise RequestInvalid(message=f"query parameter {name!r} must be true or false")
    return value == "true"


async def search(call: Call) -> SearchOut:
    namespace = call.text("namespace", limit=64)
    if namespace is not None:
        try:
            check_name(namespace)
        except InvalidName as error:
            raise RequestInvalid(message=str(error)) from None
    order_text = call.text("order", limit=8) or Order.NAME.value
    try:
        order = Order(order_text)
    except ValueError:
        raise RequestInvalid(
            message="query parameter 'order' must be name, pushed or stars"
        ) from None
    query = SearchQuery(
        text=call.text("q", limit=200) or "",
        namespace=namespace,
        official=_flag(call, "official"),
        starred=_flag(call, "starred") is True,
        order=order,
    )
    limit = call.integer("limit", 25, minimum=1, maximum=100) or 25
    offset = call.integer("offset", 0, minimum=0, maximum=100_000) or 0
    found = discovery_of(call.request)
    principal = await found.authority.principal(call.hub.actor.name)
    page = await found.search.search(principal, query, limit, offset)
    return SearchOut(
        total=page.total,
        results=[
            SearchResult(
                name=r.name,
                description=r.description,
                star_count=r.star_count,
                is_official=r.is_official,
                visibility=r.visibility.value if r.visibility else None,
                pushed_at=r.pushed_at,
                starred=r.starred,
            )
            for r in page.results
        ],
    )


OPERATIONS = [
    Operation(
        "GET",
        "/search",
        search,
        "Search the repositories the caller may pull",
        "search",
        None,
        SearchOut,
        200,
        (
            Query("q", description="Text the name contains."),
            Query("namespace", description="Only repositories of this namespace."),
            Query("official", description="true: official only; false: namespaced only."),
            Query("starred", description="true: only those the caller starred."),
            Query("order", description="name (default), pushed or stars."),
            Query("limit", "integer", "At most this many (default 25).", 1, 100),
            Query("offset", "integer", "Skip this many.", 0, 100_000),
        ),
    ),
]


def routes() -> list[Route]:
    return routes_of(OPERATIONS)
