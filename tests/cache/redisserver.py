"""Redis for tests: the machine's server, or private ``redis-server`` processes that a test may
kill, pause and restart (``redistopologies`` runs them under a Sentinel, or as a Cluster).

``DOCKYARD_TEST_REDIS`` (default ``127.0.0.1:6379``) names the shared server; tests keep to a
key prefix of their own there and delete it afterwards. Where it does not answer, a private
server stands in for it.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from typing import IO, Any

import pytest

from dockyard.cache.factory import open_cache
from dockyard.cache.redis import RedisCache

__all__ = [
    "SHARED",
    "SKIP_REASON",
    "RedisServer",
    "delete_prefix",
    "free_port",
    "open_redis_cache",
    "private_redis",
    "shared_redis",
    "started",
    "unique_prefix",
]

SHARED = os.environ.get("DOCKYARD_TEST_REDIS", "127.0.0.1:6379")
SKIP_REASON = "install Redis (Debian redis-server)"

_STARTUP_SECONDS = 10.0
_ATTEMPTS = 3


def _ping(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout) as connection:
            connection.sendall(b"PING\r\n")
            return connection.recv(64).startswith(b"+PONG")
    except OSError:
        return False


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class RedisServer:
    """A private ``redis-server`` on 127.0.0.1, keeping nothing on disk."""

    def __init__(self, port: int, log: IO[bytes], *extra: str, config: str | None = None) -> None:
        """``extra``: more of ``redis-server``'s arguments (``--replicaof``, say); ``config``:
        a configuration file, read first."""
        self.port = port
        self._log = log
        self._extra = extra
        self._config = [config] if config else []
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def addr(self) -> str:
        return f"127.0.0.1:{self.port}"

    def section(self, **keys: Any) -> dict[str, Any]:
        """A ``redis`` config section for this server; ``keys`` add to or override it."""
        return {"addr": self.addr, **keys}

    def start(self) -> bool:
        """Start the server; False if it exited at once (its port was taken)."""
        assert self._process is None
        command = ["redis-server", *self._config, "--port", str(self.port), "--bind", "127.0.0.1"]
        command += ["--save", "", "--appendonly", "no", "--daemonize", "no"]
        # A primary would otherwise wait up to 10 s at shutdown for its replicas to catch up.
        command += ["--shutdown-timeout", "0", *self._extra]
        self._process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + _STARTUP_SECONDS
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                self._process = None
                return False
            if _ping("127.0.0.1", self.port):
                return True
            time.sleep(0.02)
        raise TimeoutError(f"redis-server on port {self.port} did not start")

    def kill(self) -> None:
        """End the server at once, as a crash would: its data is gone."""
        if self._process is not None:
            self._process.kill()
            self._process.wait()
            self._process = None

    def restart(self) -> None:
        """Start it again on the same port, empty."""
        self.kill()
        if not self.start():
            raise RuntimeError(f"redis-server could not start again on port {self.port}")

    def pause(self) -> None:
        """Stop it answering without closing anything, as a hung server or a lost network."""
        assert self._process is not None
        self._process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self._process is not None
        self._process.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        if self._process is not None:
            self._process.send_signal(signal.SIGCONT)
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
            self._process = None


@contextlib.contextmanager
def private_redis() -> Iterator[RedisServer]:
    """A private server for the duration of the block (skips the test without Redis)."""
    if shutil.which("redis-server") is None:
        pytest.skip(SKIP_REASON)
    with tempfile.TemporaryFile() as log, started(log) as server:
        yield server


@contextlib.contextmanager
def started(
    log: IO[bytes],
    *extra: str,
    config: str | None = None,
    free_port: Callable[[], int] = free_port,
) -> Iterator[RedisServer]:
    """A private server with ``extra`` arguments, on a port from ``free_port`` (retried if it
    was taken), in a directory of its own: a replica writes the data it receives to disk."""
    with tempfile.TemporaryDirectory() as directory:
        for _ in range(_ATTEMPTS):
            server = RedisServer(free_port(), log, "--dir", directory, *extra, config=config)
            if server.start():
                try:
                    yield server
                finally:
                    server.stop()
                return
    log.seek(0)
    raise RuntimeError("redis-server did not start:\n" + log.read().decode()[-2000:])


@contextlib.contextmanager
def shared_redis() -> Iterator[str]:
    """The shared server's address, or a private server's where it does not answer."""
    host, _, port = SHARED.rpartition(":")
    if _ping(host, int(port)):
        yield SHARED
        return
    with private_redis() as server:
        yield server.addr


async def open_redis_cache(section: dict[str, Any]) -> RedisCache:
    """The ``RedisCache`` a ``redis`` config section opens."""
    cache = await open_cache(section)
    assert isinstance(cache, RedisCache)
    return cache


def unique_prefix() -> str:
    return f"dockyard-test-{secrets.token_hex(6)}"


async def delete_prefix(cache: RedisCache, prefix: str) -> None:
    """Delete every key under ``prefix``."""
    client = cache.client
    keys = [key async for key in client.scan_iter(match=f"{prefix}*", count=1000)]
    if keys:
        await client.delete(*keys)
