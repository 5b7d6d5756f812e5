"""A real ``dockyard serve`` with ``auth.builtin`` and the UI, its users written to its
database first, and a real headless chromium (Debian's) driven by Playwright."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from auth.builtin_setup import write_key
from dockyard.identity.passwords import Passwords
from dockyard.identity.sql import SqlIdentityStore
from dockyard.metadata.engine import open_database
from dockyard.metadata.migrate import upgrade
from e2e.conftest import RegistryServer, _factory

CHROMIUM = "/usr/bin/chromium"
USERS = {"alice": "wonderland", "bob": "builder1", "root": "toor-toor"}
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "ui"


def add_users(server: RegistryServer, users: Mapping[str, str], admins: set[str]) -> None:
    """Users in the server's database, made before it starts (in-process: quicker than a
    ``dockyard user add`` each, which the identity tests cover)."""

    async def run() -> None:
        url = f"sqlite:///{server.root / 'dockyard.db'}"
        server.root.mkdir(parents=True, exist_ok=True)
        await upgrade(url)
        database = open_database(url)
        store = SqlIdentityStore(database)
        passwords = Passwords()
        for name, password in users.items():
            await store.create_user(name, passwords.hash(password), is_admin=name in admins)
        await database.close()

    asyncio.run(run())


@dataclass
class Hub:
    server: RegistryServer

    @property
    def url(self) -> str:
        return self.server.url

    def http(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30, follow_redirects=False)

    def sign_in(self, client: httpx.Client, user: str) -> None:
        """Sign ``client`` in through the login form, as a browser would."""
        page = client.get("/login")
        csrf = csrf_of(page.text)
        response = client.post(
            "/login", data={"csrf": csrf, "username": user, "password": USERS[user], "next": "/"}
        )
        assert response.status_code == 303, response.text


def csrf_of(html: str) -> str:
    marker = 'name="csrf" value="'
    start = html.index(marker) + len(marker)
    return html[start : html.index('"', start)]


def hub_config(key: Path, **ui: Any) -> dict[str, Any]:
    return {
        "auth": {"builtin": {"signingkeys": [str(key)], "defaultvisibility": "private"}},
        "ui": {"signup": True, **ui},
        # No http.secret: the session key then comes from the token signing key, the same
        # in both workers (a session made by one is honoured by the other).
        "http": {"secret": None},
    }


@pytest.fixture(scope="module")
def hub(
    tmp_path_factory: pytest.TempPathFactory, unused_tcp_port_factory: Callable[[], int]
) -> Iterator[Hub]:
    factory = _factory(lambda: tmp_path_factory.mktemp("hub"), unused_tcp_port_factory)
    start = next(factory)
    key = write_key(tmp_path_factory.mktemp("keys") / "signing.pem")
    server = start(hub_config(key), run=False)
    add_users(server, USERS, {"root"})
    server.start()
    yield Hub(server)
    factory.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Headless chromium, or a skip naming what to install."""
    playwright_api = pytest.importorskip(
        "playwright.sync_api", reason="pip install playwright (the Python package)"
    )
    if not Path(CHROMIUM).exists():
        pytest.skip("chromium is not installed (apt-get install chromium)")
    with playwright_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=["--no-sandbox"]
        )
        yield launched
        launched.close()


@pytest.fixture
def shots(tmp_path: Path) -> Callable[[Any, str], Path]:
    """Save a page's screenshot under the test's tmp dir, with a copy under test-artifacts/."""

    def take(page: Any, name: str) -> Path:
        path = tmp_path / "screenshots" / f"{name}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(path), full_page=True)
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, ARTIFACTS / path.name)
        return path

    return take
