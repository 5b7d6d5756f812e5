"""Explore (recently pushed, most starred), search with filters, and a star's toggle."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from dockyard.hub.search import Order, SearchQuery
from dockyard.identity.base import InvalidName, check_name
from dockyard.ui.state import Ui
from dockyard.ui.web import PageError, Viewer, render

__all__ = ["explore", "search", "suggest"]

PAGE = 25
SHOWN = 10


async def explore(request: Request, ui: Ui, viewer: Viewer) -> Response:
    found = ui.discovery.search
    return render(
        request,
        viewer,
        "explore.html",
        {
            "recent": await found.recently_pushed(viewer.principal, SHOWN),
            "starred": await found.most_starred(viewer.principal, SHOWN),
        },
    )


def _flag(value: str | None) -> bool | None:
    return {"yes": True, "no": False}.get(value or "")


async def search(request: Request, ui: Ui, viewer: Viewer) -> Response:
    params = request.query_params
    text = params.get("q", "")[:200]
    namespace = params.get("namespace", "").strip() or None
    if namespace is not None:
        try:
            check_name(namespace)
        except InvalidName:
            raise PageError(
                400, "No such namespace: a namespace is a user's or an organization's name."
            ) from None
    try:
        number = max(1, int(params.get("page", "1")))
        order = Order(params.get("order", "name"))
    except ValueError:
        raise PageError(400, "Bad page number or order.") from None
    query = SearchQuery(
        text=text,
        namespace=namespace,
        official=_flag(params.get("official")),
        starred=params.get("starred") == "yes" and viewer.principal is not None,
        order=order,
    )
    found = await ui.discovery.search.search(viewer.principal, query, PAGE, (number - 1) * PAGE)
    pages = max(1, -(-found.total // PAGE))
    return render(
        request,
        viewer,
        "search.html",
        {
            "q": text,
            "query": query,
            "found": found,
            "page": number,
            "pages": pages,
            "order": order.value,
        },
    )


SUGGESTED = 8


async def suggest(request: Request, ui: Ui, viewer: Viewer) -> Response:
    """Names for the search box as one types (an htmx fragment): only what the viewer may
    pull, like every other listing."""
    text = request.query_params.get("q", "").strip()[:200]
    names = []
    if text:
        found = await ui.discovery.search.search(
            viewer.principal, SearchQuery(text=text), SUGGESTED
        )
        names = [r.name for r in found.results]
    return render(request, viewer, "_suggest.html", {"names": names, "q": text})
