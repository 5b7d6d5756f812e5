"""The shared services a cluster of replicas needs, made for one test module: a fresh
PostgreSQL database and a private redis-server; and which Debian packages are missing.

PostgreSQL is the server ``DOCKYARD_TEST_POSTGRES`` names (default
``postgresql://postgres@127.0.0.1:5432/test``, trust auth); a database is created beside it
and dropped afterwards. Redis runs as a child process on a free port, in memory only.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

from sqlalchemy.engine import make_url

__all__ = [
    "POSTGRES_SERVER",
    "find_binary",
    "missing_packages",
    "postgres_database",
    "redis_server",
    "stop_process",
    "wait_for_port",
]

POSTGRES_SERVER = os.environ.get(
    "DOCKYARD_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test"
)
START_TIMEOUT = 15.0
# Debian installs daemons in sbin, which is not on every user's PATH.
_SBIN = ("/usr/sbin", "/usr/local/sbin", "/sbin")


def find_binary(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    for directory in _SBIN:
        candidate = Path(directory) / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return None


def _admin_dsn() -> str:
    return make_url(POSTGRES_SERVER).render_as_string(hide_password=False)


async def _admin(statement: str) -> None:
    import asyncpg

    connection = await asyncpg.connect(_admin_dsn(), timeout=5)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


def _postgres_reachable() -> bool:
    try:
        import asyncpg
    except ImportError:
        return False
    try:
        asyncio.run(_admin("SELECT 1"))
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError):
        return False
    return True


def missing_packages() -> list[str]:
    """The Debian packages (haproxy, postgresql, redis-server) the cluster lacks."""
    missing = []
    if find_binary("haproxy") is None:
        missing.append("haproxy")
    if not _postgres_reachable():
        missing.append("postgresql")
    if find_binary("redis-server") is None:
        missing.append("redis-server")
    return missing


@contextlib.contextmanager
def postgres_database() -> Iterator[str]:
    """The URL of a new, empty database on the test server, dropped afterwards."""
    name = f"dockyard_cluster_{secrets.token_hex(6)}"
    asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(POSTGRES_SERVER).set(database=name).render_as_string(hide_password=False)
    finally:
        asyncio.run(_admin(f'DROP DATABASE "{name}" WITH (FORCE)'))


def wait_for_port(process: subprocess.Popen[bytes], port: int, what: str) -> None:
    """Return once 127.0.0.1:``port`` accepts connections; fail if ``process`` exits first."""
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited at start-up with status {process.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return
        time.sleep(0.05)
    raise TimeoutError(f"{what} did not listen on port {port} within {START_TIMEOUT} s")


def stop_process(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _ping(port: int) -> bool:
    with socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
        sock.sendall(b"PING\r\n")
        return sock.recv(64).startswith(b"+PONG")


@contextlib.contextmanager
def redis_server(port: int, workdir: Path) -> Iterator[str]:
    """A redis-server of this session's own, in memory only; yields its ``HOST:PORT``."""
    binary = find_binary("redis-server")
    assert binary is not None, "redis-server is not installed"
    workdir.mkdir(parents=True, exist_ok=True)
    with (workdir / "redis.log").open("ab") as log:
        process = subprocess.Popen(
            [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly",
             "no", "--dir", str(workdir)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
        )  # fmt: skip
    try:
        wait_for_port(process, port, "redis-server")
        assert _ping(port), "redis-server does not answer PING"
        yield f"127.0.0.1:{port}"
    finally:
        stop_process(process)
