"""A real ``dockyard serve`` with ``auth.builtin`` for the management API tests: a site
administrator made with ``dockyard user add --admin``, then everyone else made over the API,
each with a personal access token (cheap to check, unlike a password)."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml

from auth.builtin_setup import write_key

from .conftest import RegistryServer, ServerFactory

API = "/api/v1"
ADMIN, ADMIN_PASSWORD = "root", "root-password"


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def dockyard(
    server: RegistryServer, *args: str, stdin: str = ""
) -> subprocess.CompletedProcess[str]:
    """``dockyard ARGS`` on the server's config (written first, as ``start`` writes it)."""
    server.config_path.write_text(yaml.safe_dump(server.config))
    env = {k: v for k, v in os.environ.items() if not k.startswith("REGISTRY_")}
    env["DOCKYARD_CONFIG"] = str(server.config_path)
    return subprocess.run(
        [sys.executable, "-m", "dockyard", *args],
        input=stdin,
        env=env,
        capture_output=True,
        timeout=60,
        check=False,
        text=True,
    )


def builtin_config(key: Path, **options: Any) -> dict[str, Any]:
    return {"auth": {"builtin": {"signingkeys": [str(key)], **options}}}


@dataclass
class Hub:
    server: RegistryServer
    tokens: dict[str, str] = field(default_factory=dict)
    passwords: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return self.server.url

    def request(
        self, who: str | None, method: str, path: str, *, auth: str | None = None, **kwargs: Any
    ) -> httpx.Response:
        """``method`` on ``/api/v1`` + ``path`` as ``who`` (with its token; None: nobody)."""
        headers = dict(kwargs.pop("headers", {}))
        if auth is not None:
            headers["Authorization"] = auth
        elif who is not None:
            headers["Authorization"] = f"Bearer {self.tokens[who]}"
        return httpx.request(
            method, f"{self.url}{API}{path}", headers=headers, timeout=30, **kwargs
        )

    def ok(self, who: str | None, method: str, path: str, **kwargs: Any) -> Any:
        response = self.request(who, method, path, **kwargs)
        assert response.status_code < 300, (method, path, response.status_code, response.text)
        return response.json() if response.content else None

    def add_user(self, name: str, *, admin: bool = False) -> str:
        """A user made by the admin over the API, with an all-scopes token of its own."""
        password = f"{name}-password"
        self.ok(
            ADMIN, "POST", "/users", json={"name": name, "password": password, "is_admin": admin}
        )
        self.passwords[name] = password
        created = self.ok(
            None,
            "POST",
            "/user/tokens",
            auth=basic(name, password),
            json={"name": "main", "scopes": ["read", "write", "delete"]},
        )
        self.tokens[name] = created["secret"]
        return name


def start_hub(
    factory: ServerFactory, key: Path, config: dict[str, Any] | None = None, **options: Any
) -> Hub:
    """A started server with ``auth.builtin`` (``options``) and ``config`` merged in."""
    server = factory({**builtin_config(key, **options), **(config or {})}, run=False)
    done = dockyard(
        server, "user", "add", ADMIN, "--admin", "--password-stdin", stdin=ADMIN_PASSWORD + "\n"
    )
    assert done.returncode == 0, done.stderr
    server.start()
    hub = Hub(server)
    hub.passwords[ADMIN] = ADMIN_PASSWORD
    created = hub.ok(
        None,
        "POST",
        "/user/tokens",
        auth=basic(ADMIN, ADMIN_PASSWORD),
        json={"name": "main", "scopes": ["delete"]},
    )
    hub.tokens[ADMIN] = created["secret"]
    return hub


def hub_fixture(
    factory_gen: Iterator[ServerFactory],
    keys: Path,
    config: dict[str, Any] | None = None,
    **options: Any,
) -> Iterator[Hub]:
    start = next(factory_gen)
    yield start_hub(start, write_key(keys / "signing.pem"), config, **options)
