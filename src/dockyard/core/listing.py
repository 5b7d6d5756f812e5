"""Paginated listings: tags of a repository and the catalog of repositories."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from dockyard.errors import NameUnknown, PaginationInvalid
from dockyard.metadata.base import MetadataStore

__all__ = ["MAX_PAGE", "Page", "Pagination", "catalog", "tags"]

_Fetch = Callable[[int], Awaitable[list[str]]]

# A request may ask for any n; a page never holds more than this (a Link header says more).
MAX_PAGE = 10_000


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
    if not await metadata.repository_exists(repository):
        raise NameUnknown(detail={"name": repository})
    return await _page(page, lambda limit: metadata.list_tags(repository, limit, page.last))


async def catalog(metadata: MetadataStore, page: Pagination, default_n: int = 100) -> Page:
    if page.n is None:
        page = Pagination(default_n, page.last)
    return await _page(page, lambda limit: metadata.list_repositories(limit, page.last))


async def _page(page: Pagination, fetch: _Fetch) -> Page:
    if page.n == 0:
        return Page([], None)
    want = MAX_PAGE if page.n is None else min(page.n, MAX_PAGE)
    items = await fetch(want + 1)
    if len(items) <= want:
        return Page(items, None)
    return Page(items[:want], page.n if page.n is not None else want)
