"""A server on the embedded defaults (filesystem, SQLite, no auth) loads none of the heavy
optional libraries: each is imported by the factory of the feature that needs it.

Both processes of ``dockyard serve`` are checked, each in a fresh interpreter: the parent up
to the point where Granian forks the workers (whatever it imports, every worker inherits),
and a worker as Granian builds it (``from_environment``, then the lifespan and a request).
What the parent loaded is frozen out of the garbage collector, so that the workers share it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

# Imported only where the config uses them: LDAP, S3, Redis (which loads OpenTelemetry),
# notifications and webhooks (httpx, with rich and pygments for its command line), Prometheus,
# the UI (Jinja2) and its README pages (markdown-it).
OPTIONAL = (
    "boto3",
    "botocore",
    "httpx",
    "jinja2",
    "ldap3",
    "markdown_it",
    "opentelemetry",
    "prometheus_client",
    "redis",
    "rich",
    "s3transfer",
)
# Only where the schema is migrated: the parent, never a worker.
MIGRATIONS = ("alembic", "mako", "pygments")

# What `dockyard serve` runs before Granian forks the workers, and Granian built.
_PARENT = """
import json, os, sys

import dockyard.cli  # `python -m dockyard`
from dockyard import server
from dockyard.config import read_config

config = read_config(sys.argv[1], os.environ).config
with server.prepared(config, sys.argv[1]) as options:
    from granian import Granian

    Granian(**options)
print(json.dumps(sorted({name.partition(".")[0] for name in sys.modules} | {
    name for name in sys.modules if name.startswith("dockyard.")
})))
"""

# A worker: the app from DOCKYARD_CONFIG, started (lifespan) and answering GET /v2/.
_WORKER = """
import asyncio, json, sys

from dockyard.app import from_environment

app = from_environment()


async def get(path):
    sent = []

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        sent.append(message)

    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
        "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"",
        "root_path": "", "headers": [(b"host", b"localhost")], "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80), "state": {},
    }
    await app(scope, receive, send)
    return sent[0]["status"]


async def main():
    async with app.router.lifespan_context(app):
        status = await get("/v2/")
        print(json.dumps([status, sorted({name.partition(".")[0] for name in sys.modules})]))


asyncio.run(main())
"""


def _run(script: str, config: Path) -> Any:
    done = subprocess.run(
        [sys.executable, "-c", script, str(config)],
        capture_output=True,
        text=True,
        env={**os.environ, "DOCKYARD_CONFIG": str(config)},
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])


def _config(tmp_path: Path, port: int, extra: str = "") -> Path:
    """The config at ``port``: the parent checks that it could listen there."""
    config = tmp_path / "config.yml"
    config.write_text(
        "version: 0.1\n"
        f"http:\n  addr: 127.0.0.1:{port}\n"
        f"storage:\n  filesystem:\n    rootdirectory: {tmp_path / 'data'}\n" + extra
    )
    return config


def _worker(config: Path) -> set[str]:
    status, modules = _run(_WORKER, config)
    assert status in (200, 401)  # 401: auth.builtin asks for a token
    return set(modules)


def test_the_parent_loads_no_optional_library(tmp_path: Path, unused_tcp_port: int) -> None:
    loaded = set(_run(_PARENT, _config(tmp_path, unused_tcp_port)))
    assert (tmp_path / "data" / "dockyard.db").exists()
    assert "granian" in loaded  # the probe ran what serve runs
    # The schema was migrated by a child process: its tooling is not the workers' to inherit.
    assert loaded.isdisjoint(MIGRATIONS), sorted(loaded.intersection(MIGRATIONS))
    # The app's modules too, so that the workers share them rather than load their own.
    assert "dockyard.app" in loaded
    assert loaded.isdisjoint(OPTIONAL), sorted(loaded.intersection(OPTIONAL))


def test_a_worker_loads_no_optional_library(tmp_path: Path, unused_tcp_port: int) -> None:
    config = _config(tmp_path, unused_tcp_port)
    _run(_PARENT, config)  # the schema, as `dockyard serve` migrates it before forking
    loaded = _worker(config)
    assert "sqlalchemy" in loaded  # the probe built and started the app
    unwanted = (*OPTIONAL, *MIGRATIONS)
    assert loaded.isdisjoint(unwanted), sorted(loaded.intersection(unwanted))


_LDAP = """\
auth:
  builtin:
    ldap:
      url: ldap://127.0.0.1:1
      usersearchbase: ou=people,dc=example,dc=com
"""


@pytest.mark.parametrize(
    ("extra", "wanted"),
    [
        pytest.param("redis:\n  addr: 127.0.0.1:1\n", {"redis"}, id="redis"),
        pytest.param(_LDAP, {"ldap3", "jinja2"}, id="ldap-and-ui"),
        pytest.param(
            "notifications:\n  endpoints:\n    - name: hook\n      url: http://127.0.0.1:1/\n",
            {"httpx"},
            id="notifications",
        ),
    ],
)
def test_a_configured_feature_loads_its_library(
    tmp_path: Path, unused_tcp_port: int, extra: str, wanted: set[str]
) -> None:
    config = _config(tmp_path, unused_tcp_port, extra)
    _run(_PARENT, config)
    loaded = _worker(config)
    assert wanted <= loaded, sorted(wanted - loaded)


# The parent as above on S3 storage, then: is botocore's parsed S3 model (which the workers'
# clients reuse) left out of the garbage collector's generations, which gc.freeze() empties?
_FROZEN = """
import gc, json, os, sys

from dockyard import server
from dockyard.config import read_config
from dockyard.storage.s3.client import make_client

config = read_config(sys.argv[1], os.environ).config
with server.prepared(config, sys.argv[1]):
    model = make_client(config.storage.s3).meta.service_model.metadata
    tracked = any(item is model for item in gc.get_objects())
print(json.dumps([gc.get_freeze_count(), tracked]))
"""


def test_the_parent_freezes_what_the_workers_share(tmp_path: Path, unused_tcp_port: int) -> None:
    config = tmp_path / "config.yml"
    config.write_text(
        "version: 0.1\n"
        f"http:\n  addr: 127.0.0.1:{unused_tcp_port}\n"
        f"database:\n  url: sqlite:///{tmp_path / 'meta.db'}\n"
        # Out of reach: the parent starts anyway (and parses the model to probe it).
        "storage:\n  s3:\n    bucket: b\n    regionendpoint: http://127.0.0.1:1\n"
        "    accesskey: a\n    secretkey: s\n"
    )
    frozen, tracked = _run(_FROZEN, config)
    assert frozen > 10_000  # the app's modules, and the S3 model
    assert not tracked
