"""Private Redis servers in the shapes a production Redis takes: a primary and its replica
under a Sentinel, and a Cluster (optionally with a replica). Each skips its test without
Redis."""

from __future__ import annotations

import contextlib
import random
import shutil
import socket
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from redis import Redis as SyncRedis

from .redisserver import SKIP_REASON, RedisServer, started

__all__ = [
    "MASTER",
    "ClusterSetup",
    "SentinelSetup",
    "fail_over",
    "private_cluster",
    "private_sentinel",
]


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

    def section(self, **keys: Any) -> dict[str, Any]:
        """A ``redis`` config section for the primary; ``keys`` add to or override it."""
        return {"addrs": [self.sentinel.addr], "mastername": MASTER, **keys}

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
        primary = stack.enter_context(started(log))
        follows = ("--replicaof", "127.0.0.1", str(primary.port))
        replica = stack.enter_context(started(log, *follows))
        direct = stack.enter_context(SyncRedis(port=replica.port))
        _wait(lambda: direct.info("replication")["master_link_status"] == "up", "replica")
        # Sentinel rewrites its configuration file: it gets one of its own.
        config = scratch / "sentinel.conf"
        config.write_text(
            f"sentinel monitor {MASTER} 127.0.0.1 {primary.port} 1\n"
            f"sentinel down-after-milliseconds {MASTER} 1000\n"
            f"sentinel failover-timeout {MASTER} 5000\n"
        )
        sentinel = stack.enter_context(started(log, "--sentinel", config=str(config)))
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
            stack.enter_context(
                started(log, "--cluster-enabled", "yes", free_port=_free_cluster_port)
            )
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


def fail_over(setup: SentinelSetup, seconds: float = 30.0) -> int:
    """Have the Sentinel promote the replica; once it names the new primary, its port. (The
    old primary is made a replica some seconds later: until then it still takes writes, as
    after a real failover.)"""
    old = setup.current_primary()
    with SyncRedis(port=setup.sentinel.port) as sentinel:
        sentinel.sentinel_failover(MASTER)
    deadline = time.monotonic() + seconds
    while setup.current_primary() == old:
        assert time.monotonic() < deadline, "the sentinel did not fail over"
        time.sleep(0.05)
    return setup.current_primary()
