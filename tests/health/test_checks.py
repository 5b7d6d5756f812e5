"""Health checks: thresholds, the first run before serving, and each probe against the real
thing (files, a TCP listener, an HTTP server, the filesystem driver, a SQLite store)."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from dockyard.config import HealthConfig
from dockyard.health.checks import (
    HealthChecks,
    PeriodicCheck,
    configured_checks,
    database_probe,
    file_probe,
    http_probe,
    storage_probe,
    tcp_probe,
)
from dockyard.metadata.engine import DatabaseUnavailable
from dockyard.metadata.factory import open_store
from dockyard.storage.filesystem import FilesystemDriver


async def passes() -> None:
    return None


def test_threshold_counts_consecutive_failures() -> None:
    check = PeriodicCheck("c", passes, interval=1, threshold=3)
    check.record("down")
    check.record("down")
    assert check.failure is None
    check.record("still down")
    assert check.failure == "still down"
    check.record("down again")
    assert check.failure == "down again"
    check.record(None)
    assert check.failure is None
    check.record("down")
    assert check.failure is None  # one failure after a success is not enough


def test_zero_threshold_and_interval_take_distributions_defaults() -> None:
    check = PeriodicCheck("c", passes, interval=0, threshold=0)
    assert (check.interval, check.threshold) == (10.0, 1)
    check.record("down")
    assert check.failure == "down"


async def test_checks_run_before_serving_and_then_at_their_interval(tmp_path: Path) -> None:
    drain = tmp_path / "drain"
    drain.touch()
    checks = HealthChecks([PeriodicCheck(str(drain), file_probe(str(drain)), interval=0.05)])
    await checks.start()
    try:
        assert checks.failing() == {str(drain): "file exists"}
        drain.unlink()
        for _ in range(100):
            if not checks.failing():
                break
            await asyncio.sleep(0.01)
        assert checks.failing() == {}
    finally:
        await checks.stop()


async def test_a_slow_first_run_does_not_hold_start_up() -> None:
    async def slow() -> None:
        await asyncio.sleep(30)

    checks = HealthChecks([PeriodicCheck("slow", slow, interval=60)])
    loop = asyncio.get_running_loop()
    started = loop.time()
    await checks.start()
    assert loop.time() - started < 2.0
    assert checks.failing() == {}
    await checks.stop()


async def test_file_probe(tmp_path: Path) -> None:
    probe = file_probe(str(tmp_path / "f"))
    await probe()
    (tmp_path / "f").touch()
    with pytest.raises(Exception, match=r"^file exists$"):
        await probe()


async def test_tcp_probe() -> None:
    with socket.create_server(("127.0.0.1", 0)) as listener:
        addr = f"127.0.0.1:{listener.getsockname()[1]}"
        await tcp_probe(addr, 1.0)()
    with pytest.raises(Exception, match=f"^{addr}: connection failed"):
        await tcp_probe(addr, 1.0)()
    with pytest.raises(Exception, match="connection failed"):
        await tcp_probe("not an address", 1.0)()


class _Service:
    def __init__(self) -> None:
        self.status = 204
        self.seen: list[tuple[str, dict[str, str]]] = []
        service = self

        class Handler(BaseHTTPRequestHandler):
            def do_HEAD(self) -> None:
                service.seen.append((self.command, dict(self.headers)))
                self.send_response(service.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.uri = f"http://127.0.0.1:{self.server.server_port}/up"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def service() -> Iterator[_Service]:
    running = _Service()
    yield running
    running.server.shutdown()
    running.server.server_close()


async def test_http_probe(service: _Service) -> None:
    probe = http_probe(service.uri, 204, 2.0, {"Authorization": ["Basic abc"]})
    await probe()
    assert service.seen[0][0] == "HEAD"
    assert service.seen[0][1]["Authorization"] == "Basic abc"
    service.status = 503
    with pytest.raises(Exception, match="downstream service returned unexpected status: 503"):
        await probe()
    service.server.shutdown()
    service.server.server_close()
    with pytest.raises(Exception, match=f"^{service.uri}: error while checking"):
        await probe()


async def test_storage_probe(tmp_path: Path) -> None:
    root = tmp_path / "root"
    probe = storage_probe(FilesystemDriver(str(root)))
    await probe()  # no root yet: the backend answers, the first push creates it
    root.mkdir(exist_ok=True)
    await probe()
    root.rmdir()
    (tmp_path / "elsewhere").mkdir()
    root.symlink_to(tmp_path / "elsewhere")
    with pytest.raises(Exception, match="invalid path"):
        await probe()


async def test_database_probe(tmp_path: Path) -> None:
    store = await open_store(f"sqlite:///{tmp_path / 'm.db'}")
    try:
        await database_probe(store, 5.0)()
    finally:
        await store.close()
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]
    # A PostgreSQL server that is not there.
    unreachable = await open_store(f"postgresql://u:p@127.0.0.1:{port}/db", migrate=False)
    try:
        with pytest.raises(DatabaseUnavailable, match=r"Connect call failed|refused"):
            await database_probe(unreachable, 5.0)()
    finally:
        await unreachable.close()


def test_configured_checks_are_named_as_distribution_names_them() -> None:
    health = HealthConfig.model_validate(
        {
            "storagedriver": {"enabled": True, "interval": "5s", "threshold": 3},
            "file": [{"file": "/srv/drain"}],
            "http": [{"uri": "http://db.test/ping", "threshold": 2}],
            "tcp": [{"addr": "redis.test:6379", "interval": "1s"}],
        }
    )
    checks = configured_checks(health, FilesystemDriver("/nonexistent"), "filesystem")
    described = [(c.name, c.interval, c.threshold) for c in checks]
    assert described == [
        ("storagedriver_filesystem", 5.0, 3),
        ("/srv/drain", 10.0, 1),
        ("http://db.test/ping", 10.0, 2),
        ("redis.test:6379", 1.0, 1),
    ]
    assert configured_checks(HealthConfig(), FilesystemDriver("/x"), "filesystem") == []
