"""The stars and search endpoints of the management API (``api/manage/stars.py``,
``api/manage/search.py``) in the real application, with its real database."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import yaml

from auth.builtin_setup import write_key
from dockyard.app import create_app
from dockyard.config import load_config
from dockyard.identity.base import Visibility
from dockyard.identity.passwords import Passwords
from dockyard.identity.sql import SqlIdentityStore
from dockyard.metadata.engine import open_database
from dockyard.metadata.migrate import upgrade

PASSWORDS = {"alice": "wonderland", "bob": "builder1"}


async def _populate(url: str) -> None:
    database = open_database(url)
    store = SqlIdentityStore(database)
    hasher = Passwords(time_cost=1, memory_cost=8 * 1024)
    for user, password in PASSWORDS.items():
        await store.create_user(user, hasher.hash(password))
    await store.create_repository("alice/private", Visibility.PRIVATE, "secret things")
    await store.create_repository("alice/public", Visibility.PUBLIC, "open things")
    await database.close()


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    root = tmp_path / "data"
    root.mkdir()
    key = write_key(tmp_path / "key.pem")
    path = tmp_path / "config.yml"
    path.write_text(
        yaml.safe_dump(
            {
                "version": 0.1,
                "storage": {"filesystem": {"rootdirectory": str(root)}},
                "auth": {"builtin": {"signingkeys": [str(key)]}},
            }
        )
    )
    config = load_config(str(path), {})
    await upgrade(config.database_url)
    await _populate(config.database_url)
    app = create_app(config)
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 5000))
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://hub") as http,
    ):
        yield http


async def test_stars(client: httpx.AsyncClient) -> None:
    alice, bob = ("alice", PASSWORDS["alice"]), ("bob", PASSWORDS["bob"])
    starred = await client.put("/api/v1/stars/alice/private", auth=alice)
    assert starred.status_code == 200
    assert starred.json() == {"repository": "alice/private", "star_count": 1, "starred": True}
    assert (await client.put("/api/v1/stars/alice/public", auth=bob)).json()["star_count"] == 1
    # bob may not see the private one: as if it did not exist.
    for method in ("GET", "PUT", "DELETE"):
        response = await client.request(method, "/api/v1/stars/alice/private", auth=bob)
        assert response.status_code == 404
        assert response.json()["errors"][0]["code"] == "NAME_UNKNOWN"
    assert (await client.get("/api/v1/stars", auth=alice)).json() == [
        {"repository": "alice/private", "star_count": 1, "starred": True}
    ]
    unstarred = await client.delete("/api/v1/stars/alice/private", auth=alice)
    assert unstarred.json() == {"repository": "alice/private", "star_count": 0, "starred": False}
    assert (await client.get("/api/v1/stars/alice/public", auth=alice)).json()["star_count"] == 1
    assert (await client.put("/api/v1/stars/alice/public")).status_code == 401


async def test_search(client: httpx.AsyncClient) -> None:
    alice, bob = ("alice", PASSWORDS["alice"]), ("bob", PASSWORDS["bob"])
    mine = (await client.get("/api/v1/search", params={"q": "alice"}, auth=alice)).json()
    assert mine["total"] == 2
    assert [r["name"] for r in mine["results"]] == ["alice/private", "alice/public"]
    assert mine["results"][0]["visibility"] == "private"
    theirs = (await client.get("/api/v1/search", params={"q": "alice"}, auth=bob)).json()
    assert (theirs["total"], [r["name"] for r in theirs["results"]]) == (1, ["alice/public"])
    for params in ({"order": "size"}, {"official": "maybe"}, {"limit": "0"}, {"namespace": "A B"}):
        response = await client.get("/api/v1/search", params=params, auth=alice)
        assert response.status_code == 400, params
        assert response.json()["errors"][0]["code"] == "REQUEST_INVALID"
