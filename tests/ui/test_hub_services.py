"""Stars, search and READMEs on both databases (SQLite and PostgreSQL): visibility is the
identity policy's, counts count only what the viewer may see."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from dockyard.hub.search import Discovery, Order, SearchQuery, discovery
from dockyard.identity.authority import Authority
from dockyard.identity.base import Principal, Role, Visibility
from dockyard.identity.sql import SqlIdentityStore
from dockyard.metadata.engine import open_database
from metadata.test_postgres import database_of


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with database_of(request.param, tmp_path, migrate=True) as url:
        yield url


@pytest.fixture
async def found(database_url: str) -> AsyncIterator[Discovery]:
    database = open_database(database_url)
    store = SqlIdentityStore(database)
    for user in ("alice", "bob", "carol"):
        await store.create_user(user, None)
    await store.create_organization("acme", owner="carol")
    await store.set_member("acme", "bob", Role.MEMBER)
    for name, visibility, description in [
        ("alice/app", Visibility.PRIVATE, "alice's app"),
        ("alice/web_site", Visibility.PUBLIC, "a 100% public site"),
        ("acme/api", Visibility.PRIVATE, None),
        ("acme/tools", Visibility.PUBLIC, "tools"),
        ("nginx", Visibility.PUBLIC, "the official one"),
    ]:
        await store.create_repository(name, visibility, description)
    yield discovery(database, Authority(store, Visibility.PRIVATE))
    await database.close()


async def _who(found: Discovery, name: str | None) -> Principal | None:
    return await found.authority.principal(name)


async def _names(found: Discovery, viewer: str | None, **query: Any) -> list[str]:
    page = await found.search.search(await _who(found, viewer), SearchQuery(**query), 50)
    assert page.total == len(page.results)
    return [r.name for r in page.results]


async def test_search_shows_each_viewer_what_it_may_pull(found: Discovery) -> None:
    public = ["acme/tools", "alice/web_site", "nginx"]
    assert await _names(found, None) == public
    assert await _names(found, "alice") == ["acme/tools", "alice/app", "alice/web_site", "nginx"]
    # bob is a member of acme with no default permission: the private one stays hidden.
    assert await _names(found, "bob") == public
    assert await _names(found, "carol") == ["acme/api", "acme/tools", "alice/web_site", "nginx"]


async def test_search_filters(found: Discovery) -> None:
    assert await _names(found, "alice", text="app") == ["alice/app"]
    assert await _names(found, None, text="app") == []
    # LIKE's wildcards are matched literally.
    assert await _names(found, None, text="_") == ["alice/web_site"]
    assert await _names(found, None, text="%") == []
    assert await _names(found, "carol", namespace="acme") == ["acme/api", "acme/tools"]
    assert await _names(found, None, official=True) == ["nginx"]
    assert await _names(found, None, official=False) == ["acme/tools", "alice/web_site"]
    summary = (await found.search.search(None, SearchQuery(text="nginx"), 5)).results[0]
    assert (summary.is_official, summary.description) == (True, "the official one")


async def test_stars_count_and_order(found: Discovery) -> None:
    stars = found.stars
    await stars.star("alice", "nginx")
    await stars.star("alice", "nginx")  # again: no change
    await stars.star("bob", "nginx")
    await stars.star("alice", "acme/tools")
    await stars.star("nobody", "nginx")  # an unknown user stars nothing
    assert await stars.counts(["nginx", "acme/tools", "alice/app"]) == {
        "nginx": 2,
        "acme/tools": 1,
        "alice/app": 0,
    }
    assert await stars.starred("alice") == {"nginx", "acme/tools"}
    assert await _names(found, "alice", starred=True) == ["acme/tools", "nginx"]
    assert await _names(found, None, starred=True) == []
    by_stars = await _names(found, None, order=Order.STARS)
    assert by_stars[:2] == ["nginx", "acme/tools"]
    await stars.unstar("alice", "nginx")
    await stars.unstar("alice", "nginx")
    assert (await stars.counts(["nginx"]))["nginx"] == 1
    assert await stars.forget("nginx") == 1
    assert (await stars.counts(["nginx"]))["nginx"] == 0


async def test_most_starred_hides_private_repositories(found: Discovery) -> None:
    await found.stars.star("alice", "alice/app")
    await found.stars.star("carol", "alice/app")
    await found.stars.star("carol", "acme/tools")
    anonymous = await found.search.most_starred(None, 10)
    assert [(r.name, r.star_count) for r in anonymous] == [("acme/tools", 1)]
    mine = await found.search.most_starred(await _who(found, "alice"), 10)
    assert [(r.name, r.star_count) for r in mine] == [("alice/app", 2), ("acme/tools", 1)]


async def test_readmes(found: Discovery) -> None:
    readmes = found.readmes
    assert await readmes.get("alice/app") is None
    await readmes.set("alice/app", "# one")
    await readmes.set("alice/app", "# two")
    assert await readmes.get("alice/app") == "# two"
    await readmes.set("alice/app", "  ")
    assert await readmes.get("alice/app") is None
    with pytest.raises(ValueError, match="longer"):
        await readmes.set("alice/app", "x" * (256 * 1024 + 1))
