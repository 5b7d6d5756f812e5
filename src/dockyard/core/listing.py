"""Paginated listings: tags of a repository and the catalog of repositories."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from dockyard.auth.base import RepositoryFilter
from dockyard.errors import NameUnknown, PaginationInvalid
from dockyard.metadata.base import MetadataStore

__all__ = ["MAX_PAGE", "Page", "Pagination", "catalog", "tags"]

_Fetch = Callable[[int], Awaitable[list[str]]]

# A request may ask for any n; a page never holds more than this (a Link header says more).
MAX_PAGE = 10_000
# Names read at once when a filter may drop some of them.
VISIBLE_BATCH = 200


@dataclass(frozen=True, slots=True)
class Pagination:
    n: int | None
    last: str | None

    @classmethod
    def parse(cls, n: str | None, last: str | None) -> Pagination:
        if n is None or n == "":
            return cls(None, last or None)
        if not n.isdigit() or len(n) > 18:
            raise PaginationInvalid(detail={"n": n[:40]})
        return cls(int(n), last or None)


@dataclass(frozen=True, slots=True)
class Page:
    items: list[str]
    # The n to put in the next page's link, or None when this is the last page.
    next_n: int | None


async def tags(metadata: MetadataStore, repository: str, page: Pagination) -> Page:
    found = await _page(page, lambda limit: metadata.list_tags(repository, limit, page.last))
    # A tag proves the repository exists: only an empty page costs a second query.
    if not found.items and not await metadata.repository_exists(repository):
        raise NameUnknown(detail={"name": repository})
    return found


async def catalog(
    metadata: MetadataStore,
    page: Pagination,
    default_n: int = 100,
    visible: RepositoryFilter | None = None,
) -> Page:
    """A page of repository names; with ``visible``, only those it keeps (the names it drops
    are read and passed over, so a page costs more the more the caller may not see)."""
    if page.n is None:
        page = Pagination(default_n, page.last)
    if visible is None:
        return await _page(page, lambda limit: metadata.list_repositories(limit, page.last))
    return await _page(page, lambda limit: _visible(metadata, visible, limit, page.last))


async def _visible(
    metadata: MetadataStore, visible: RepositoryFilter, limit: int, last: str | None
) -> list[str]:
    found: list[str] = []
    batch = max(limit, VISIBLE_BATCH)
    while len(found) < limit:
        names = await metadata.list_repositories(batch, last)
        found.extend(await visible(names))
        if len(names) < batch:
            break
        last = names[-1]
    return found[:limit]


async def _page(page: Pagination, fetch: _Fetch) -> Page:
    if page.n == 0:
        return Page([], None)
    want = MAX_PAGE if page.n is None else min(page.n, MAX_PAGE)
    items = await fetch(want + 1)
    if len(items) <= want:
        return Page(items, None)
    return Page(items[:want], page.n if page.n is not None else want)
