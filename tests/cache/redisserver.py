"""Redis for tests: the machine's server, or private ``redis-server`` processes that a test may
kill, pause and restart, alone, as a primary and replica under a Sentinel, or as a Cluster.

``DOCKYARD_TEST_REDIS`` (default ``127.0.0.1:6379``) names the shared server; tests keep to a
key prefix of their own there and delete it afterwards. Where it does not answer, a private
server stands in for it.
"""

from __future__ import annotations

import contextlib
import os
import random
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import pytest
from redis import Redis as SyncRedis

from dockyard.cache.redis import RedisCache

__all__ = [
    "MASTER",
    "SHARED",
    "ClusterSetup",
    "RedisServer",
    "SentinelSetup",
    "delete_prefix",
    "private_cluster",
    "private_redis",
    "private_sentinel",
    "shared_redis",
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


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _free_cluster_port() -> int:
    """A free port whose cluster bus port (10000 above it, so at most 65535) is free too."""
    while True:
        port = random.randint(20000, 55535)
        try:
            with socket.socket() as first, socket.socket() as bus:
                first.bind(("127.0.0.1", port))
                bus.bind(("127.0.0.1", port + 10000))
        except OSError:
            continue
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
    with tempfile.TemporaryFile() as log, _started(log) as server:
        yield server


@contextlib.contextmanager
def _started(log: IO[bytes], *extra: str, config: str | None = None) -> Iterator[RedisServer]:
    """A private server with ``extra`` arguments, on a free port (retried if it was taken),
    in a directory of its own: a replica writes the data it receives to disk."""
    free = _free_cluster_port if "--cluster-enabled" in extra else _free_port
    with tempfile.TemporaryDirectory() as directory:
        for _ in range(_ATTEMPTS):
            server = RedisServer(free(), log, "--dir", directory, *extra, config=config)
            if server.start():
                try:
                    yield server
                finally:
                    server.stop()
                return
    log.seek(0)
    raise RuntimeError("redis-server did not start:\n" + log.read().decode()[-2000:])


def _wait(condition: Callable[[], bool], what: str, seconds: float = 20.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not within {seconds:g} s")
        time.sleep(0.05)


@dataclass
class SentinelSetup:
    """A primary, its replica and one Sentinel watching them as ``MASTER``."""

    primary: RedisServer
    replica: RedisServer
    sentinel: RedisServer

    def current_primary(self) -> int:
        """The port of the server the Sentinel names as primary now."""
        with SyncRedis(port=self.sentinel.port) as sentinel:
            _host, port = sentinel.sentinel_get_master_addr_by_name(MASTER)
        return int(port)


MASTER = "dockyard"


@contextlib.contextmanager
def private_sentinel() -> Iterator[SentinelSetup]:
    """A primary, a replica and a Sentinel (skips the test without Redis)."""
    if shutil.which("redis-server") is None:
        pytest.skip(SKIP_REASON)
    with contextlib.ExitStack() as stack:
        log = stack.enter_context(tempfile.TemporaryFile())
        scratch = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        primary = stack.enter_context(_started(log))
        follows = ("--replicaof", "127.0.0.1", str(primary.port))
        replica = stack.enter_context(_started(log, *follows))
        direct = stack.enter_context(SyncRedis(port=replica.port))
        _wait(lambda: direct.info("replication")["master_link_status"] == "up", "replica")
        # Sentinel rewrites its configuration file: it gets one of its own.
        config = scratch / "sentinel.conf"
        config.write_text(
            f"sentinel monitor {MASTER} 127.0.0.1 {primary.port} 1\n"
            f"sentinel down-after-milliseconds {MASTER} 1000\n"
            f"sentinel failover-timeout {MASTER} 5000\n"
        )
        sentinel = stack.enter_context(_started(log, "--sentinel", config=str(config)))
        watcher = stack.enter_context(SyncRedis(port=sentinel.port))
        # A replica the Sentinel has not yet reached is no candidate for a failover.
        _wait(
            lambda: any(
                each["flags"] == "slave" and each["master-link-status"] == "ok"
                for each in watcher.sentinel_slaves(MASTER)
            ),
            "the sentinel's replica",
        )
        yield SentinelSetup(primary, replica, sentinel)


_SLOTS = 16384


def _cluster_ok(client: SyncRedis) -> bool:
    return bool(client.cluster("INFO")["cluster_state"] == "ok")


@dataclass
class ClusterSetup:
    """Primaries that share the slots; ``replica``, if asked for, follows the first."""

    primaries: list[RedisServer]
    replica: RedisServer | None

    @property
    def addrs(self) -> list[str]:
        return [server.addr for server in self.primaries]


@contextlib.contextmanager
def private_cluster(nodes: int = 3, replica: bool = False) -> Iterator[ClusterSetup]:
    """A Redis Cluster of ``nodes`` primaries, and a replica of the first if asked (skips
    the test without Redis)."""
    if shutil.which("redis-server") is None:
        pytest.skip(SKIP_REASON)
    with contextlib.ExitStack() as stack:
        log = stack.enter_context(tempfile.TemporaryFile())
        servers = [
            stack.enter_context(_started(log, "--cluster-enabled", "yes"))
            for _ in range(nodes + (1 if replica else 0))
        ]
        clients = [stack.enter_context(SyncRedis(port=s.port)) for s in servers]
        share = _SLOTS // nodes
        for index, client in enumerate(clients[:nodes]):
            last = _SLOTS - 1 if index == nodes - 1 else (index + 1) * share - 1
            client.execute_command("CLUSTER ADDSLOTSRANGE", index * share, last)
        for client in clients[1:]:
            client.execute_command("CLUSTER MEET", "127.0.0.1", servers[0].port)
        for client in clients:
            _wait(lambda c=client: _cluster_ok(c), "cluster_state:ok")  # type: ignore[misc]
        follower = None
        if replica:
            follower = servers[nodes]
            first = clients[0].execute_command("CLUSTER MYID").decode()
            # It must have heard of the first primary before it can follow it.
            _wait(
                lambda: any(
                    node["node_id"] == first for node in clients[nodes].cluster("NODES").values()
                ),
                "the replica learning of the first primary",
            )
            clients[nodes].execute_command("CLUSTER REPLICATE", first)
            _wait(
                lambda: clients[nodes].info("replication").get("master_link_status") == "up",
                "the cluster replica",
            )
        yield ClusterSetup(servers[:nodes], follower)


@contextlib.contextmanager
def shared_redis() -> Iterator[str]:
    """The shared server's address, or a private server's where it does not answer."""
    host, _, port = SHARED.rpartition(":")
    if _ping(host, int(port)):
        yield SHARED
        return
    with private_redis() as server:
        yield server.addr


def unique_prefix() -> str:
    return f"dockyard-test-{secrets.token_hex(6)}"


async def delete_prefix(cache: RedisCache, prefix: str) -> None:
    """Delete every key under ``prefix``."""
    client = cache.client
    keys = [key async for key in client.scan_iter(match=f"{prefix}*", count=1000)]
    if keys:
        await client.delete(*keys)
