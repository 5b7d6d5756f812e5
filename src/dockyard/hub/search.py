"""Finding repositories: search, explore (recently pushed, most starred), a namespace's list.

Every answer holds only what the viewer may pull (the identity policy decides, through
:class:`~dockyard.identity.authority.Authority`), and its counts count only those, so that
neither a result nor a total tells that a private repository exists.

A repository is known once it has content (``repositories``) or settings (created empty, or
given a visibility). Matching scans at most :data:`MAX_CANDIDATES` names, by name, per query.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from sqlalchemy import ColumnElement, func, literal, select, union

from dockyard.hub.readmes import Readmes
from dockyard.hub.stars import Stars
from dockyard.identity.authority import Authority
from dockyard.identity.base import IdentityStore, Principal, Visibility
from dockyard.identity.policy import namespace_of
from dockyard.metadata.engine import Database
from dockyard.metadata.schema import repositories, repository_settings, tags

__all__ = [
    "MAX_CANDIDATES",
    "Descriptions",
    "Discovery",
    "NoDescriptions",
    "Order",
    "RepositorySummary",
    "Search",
    "SearchPage",
    "SearchQuery",
    "SettingsDescriptions",
    "discovery",
]

MAX_CANDIDATES = 5000
MAX_QUERY = 200


class Descriptions(Protocol):
    """Where repositories' short descriptions are kept (the management service's)."""

    async def descriptions(self, repositories: Sequence[str]) -> dict[str, str]: ...


class NoDescriptions:
    async def descriptions(self, repositories: Sequence[str]) -> dict[str, str]:
        return {}


class Order(enum.StrEnum):
    NAME = "name"
    PUSHED = "pushed"
    STARS = "stars"


@dataclass(frozen=True, slots=True)
class SearchQuery:
    text: str = ""
    namespace: str | None = None
    official: bool | None = None
    """True: official repositories only; False: namespaced ones only; None: both."""
    starred: bool = False
    """Only those the viewer starred."""
    order: Order = Order.NAME


@dataclass(frozen=True, slots=True)
class RepositorySummary:
    name: str
    description: str
    star_count: int
    is_official: bool
    visibility: Visibility | None
    pushed_at: datetime | None
    starred: bool

    @property
    def namespace(self) -> str | None:
        return namespace_of(self.name)


@dataclass(frozen=True, slots=True)
class SearchPage:
    total: int
    results: list[RepositorySummary]


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


class Search:
    def __init__(
        self,
        database: Database,
        authority: Authority,
        stars: Stars,
        descriptions: Descriptions | None = None,
    ) -> None:
        self.database = database
        self.authority = authority
        self.stars = stars
        self.descriptions: Descriptions = descriptions or NoDescriptions()

    async def _candidates(self, text: str, namespace: str | None) -> list[str]:
        def where(column: ColumnElement[str]) -> list[ColumnElement[bool]]:
            out: list[ColumnElement[bool]] = []
            if text:
                out.append(column.like(f"%{_escape(text)}%", escape="\\"))
            if namespace:
                out.append(column.like(f"{_escape(namespace)}/%", escape="\\"))
            if not out:
                out.append(literal(True))
            return out

        content = select(repositories.c.name.label("name")).where(*where(repositories.c.name))
        settings = select(repository_settings.c.repository.label("name")).where(
            *where(repository_settings.c.repository)
        )
        names = union(content, settings).subquery()
        query = select(names.c.name).order_by(names.c.name).limit(MAX_CANDIDATES)
        return [row[0] for row in await self.database.read(query)]

    async def _official(self, names: Sequence[str]) -> set[str]:
        """Those of ``names`` in the site's official namespace: no namespace, or one nobody
        owns (as the policy reads it)."""
        owners = {ns for ns in map(namespace_of, names) if ns is not None}
        owned = await self.authority.store.namespaces(sorted(owners))
        return {n for n in names if (namespace_of(n) or "") not in owned}

    async def _pushed(self, names: Sequence[str]) -> dict[str, datetime]:
        if not names:
            return {}
        rows = await self.database.read(
            select(repositories.c.name, func.max(tags.c.updated_at).label("pushed"))
            .select_from(repositories.join(tags, tags.c.repository_id == repositories.c.id))
            .where(repositories.c.name.in_(list(names)))
            .group_by(repositories.c.name)
        )
        return {row.name: row.pushed for row in rows if row.pushed is not None}

    async def tag_times(self, repository: str) -> dict[str, datetime]:
        """When each tag of ``repository`` was last pushed (the caller checked access)."""
        rows = await self.database.read(
            select(tags.c.name, tags.c.updated_at)
            .select_from(repositories.join(tags, tags.c.repository_id == repositories.c.id))
            .where(repositories.c.name == repository)
        )
        return {row.name: row.updated_at for row in rows}

    async def summarize(
        self, principal: Principal | None, names: Sequence[str]
    ) -> list[RepositorySummary]:
        """Summaries of ``names`` (already filtered for the viewer), in the order given."""
        names = list(names)
        counts = await self.stars.counts(names)
        starred = await self.stars.starred(principal.name, names) if principal else set()
        official = await self._official(names)
        pushed = await self._pushed(names)
        visibilities = await self.authority.store.visibilities(names)
        descriptions = await self.descriptions.descriptions(names)
        return [
            RepositorySummary(
                name=name,
                description=descriptions.get(name, ""),
                star_count=counts.get(name, 0),
                is_official=name in official,
                visibility=visibilities.get(name),
                pushed_at=pushed.get(name),
                starred=name in starred,
            )
            for name in names
        ]

    async def search(
        self, principal: Principal | None, query: SearchQuery, limit: int, offset: int = 0
    ) -> SearchPage:
        text = query.text.strip().lower()[:MAX_QUERY]
        names = await self._candidates(text, query.namespace)
        names = await self.authority.visible(principal, names)
        if query.starred:
            if principal is None:
                return SearchPage(0, [])
            mine = await self.stars.starred(principal.name, names)
            names = [n for n in names if n in mine]
        if query.official is not None:
            official = await self._official(names)
            names = [n for n in names if (n in official) == query.official]
        if query.order is Order.PUSHED:
            pushed = await self._pushed(names)
            names = sorted(names, key=lambda n: (-(pushed[n].timestamp()) if n in pushed else 0, n))
        elif query.order is Order.STARS:
            counts = await self.stars.counts(names)
            names = sorted(names, key=lambda n: (-counts[n], n))
        page = names[max(offset, 0) : max(offset, 0) + max(limit, 0)]
        return SearchPage(len(names), await self.summarize(principal, page))

    async def recently_pushed(
        self, principal: Principal | None, limit: int
    ) -> list[RepositorySummary]:
        """Public repositories (and the viewer's own) most recently pushed to."""
        page = await self.search(principal, SearchQuery(order=Order.PUSHED), limit)
        return [r for r in page.results if r.pushed_at is not None]

    async def most_starred(
        self, principal: Principal | None, limit: int
    ) -> list[RepositorySummary]:
        ranked = await self.stars.most_starred(MAX_CANDIDATES)
        names = await self.authority.visible(principal, [name for name, _ in ranked])
        return await self.summarize(principal, names[:limit])


@dataclass(frozen=True, slots=True)
class Discovery:
    """The hub's own services for finding and marking repositories, built once by the
    composition root (``app.state.discovery``) and shared by the UI and the APIs."""

    authority: Authority
    stars: Stars
    search: Search
    readmes: Readmes


class SettingsDescriptions:
    """Short descriptions from the repositories' settings (the management service's)."""

    def __init__(self, store: IdentityStore) -> None:
        self.store = store

    async def descriptions(self, repositories: Sequence[str]) -> dict[str, str]:
        out: dict[str, str] = {}
        for name in repositories:
            found = await self.store.repository(name)
            if found is not None and found.description:
                out[name] = found.description
        return out


def discovery(database: Database, authority: Authority) -> Discovery:
    stars = Stars(database)
    search = Search(database, authority, stars, SettingsDescriptions(authority.store))
    return Discovery(authority, stars, search, Readmes(database))
