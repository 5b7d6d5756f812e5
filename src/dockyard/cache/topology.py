"""How the registry reaches Redis: one server, the primary that Sentinel watches, or a Cluster.

The choice is Distribution's (go-redis's universal client): ``mastername`` names a primary
that the Sentinels at ``addrs`` know; otherwise several ``addrs`` are nodes of a Redis
Cluster; otherwise the one address is the server. Every client connects lazily and never
retries a failed call: the caller's circuit breaker decides what follows (a Cluster client
still follows ``MOVED`` and ``ASK``, which say where a key lives, not that a call failed).
Callers beyond the pool wait for a connection (within the call's bound) rather than fail, so
that a burst of requests does not look like an outage; a Cluster client, whose pools do not
wait, is given a limit on calls in flight instead (``RedisCache``'s ``limit``).

A failover can lose writes: the replica promoted may not have received the last ones the old
primary acknowledged. The registry's cache must know (a lost token replacement would let
stale entries be served), so at most once every ``WATCH_SECONDS`` a call asks which server is
primary: the Sentinels (and every new connection asks them too), or a Cluster node for the
primary of each slot range. A change is reported by ``moved`` (see ``CacheLost``); in a
Cluster, slots migrated from one primary to another count too, which costs a needless flush.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from redis.asyncio import Redis
    from redis.asyncio.cluster import RedisCluster

__all__ = ["WATCH_SECONDS", "Address", "Connected", "Settings", "connect"]

Address = tuple[str, int]

WATCH_SECONDS = 1.0
"""How often, at most, a call asks the Sentinels which server is primary."""


@dataclass(frozen=True, slots=True)
class Settings:
    """A parsed ``redis`` section."""

    addresses: tuple[Address, ...]
    """The server; or, with ``mastername``, the Sentinels; or some of a Cluster's nodes."""
    mastername: str | None
    db: int
    username: str | None
    password: str | None
    sentinel_username: str | None
    sentinel_password: str | None
    dial: float
    """Seconds to connect."""
    io: float
    """Seconds to wait for a read or a write."""
    pool_size: int
    tls: bool
    certificate: str | None
    key: str | None
    ca: str | None


@dataclass(frozen=True, slots=True)
class Connected:
    client: Redis | RedisCluster
    name: str
    """Which server it is, in messages: ``redis at host:port``."""
    moved: Callable[[], Awaitable[str | None]] | None
    """What changed since last asked, if the primary may have lost acknowledged writes
    (None: never)."""
    limit: int | None = None
    """Calls in flight at most, where the pool does not make callers wait."""


def _every(seconds: float) -> Callable[[], bool]:
    """A test that is true at most once per ``seconds`` (the first time, at once)."""
    last = -seconds

    def due() -> bool:
        nonlocal last
        now = time.monotonic()
        if now - last < seconds:
            return False
        last = now
        return True

    return due


def _shown(address: Address) -> str:
    host, port = address
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def connect(settings: Settings) -> Connected:
    # Imported only when Redis is configured: redis-py (with the OpenTelemetry it loads)
    # weighs some 20 MiB a process.
    from redis.asyncio.retry import Retry
    from redis.backoff import NoBackoff

    common: dict[str, Any] = {
        "username": settings.username,
        "password": settings.password,
        "socket_connect_timeout": settings.dial,
        "socket_timeout": settings.io,
        "retry": Retry(NoBackoff(), 0),
    }
    tls: dict[str, Any] = (
        {
            "ssl_certfile": settings.certificate,
            "ssl_keyfile": settings.key,
            "ssl_ca_certs": settings.ca,
        }
        if settings.tls
        else {}
    )
    places = ",".join(_shown(address) for address in settings.addresses)
    if settings.mastername is not None:
        name = f"redis {settings.mastername} (sentinels at {places})"
        return _sentinel(settings, common, tls, name)
    if len(settings.addresses) > 1:
        return _cluster(settings, common, tls, f"redis cluster at {places}")
    return Connected(_single(settings, common, tls), f"redis at {places}", None)


def _single(settings: Settings, common: dict[str, Any], tls: dict[str, Any]) -> Redis:
    from redis.asyncio import BlockingConnectionPool, Redis
    from redis.asyncio.connection import Connection, SSLConnection

    (host, port) = settings.addresses[0]
    pool = BlockingConnectionPool(
        max_connections=settings.pool_size,
        timeout=settings.dial + settings.io,
        connection_class=SSLConnection if settings.tls else Connection,
        host=host,
        port=port,
        db=settings.db,
        **common,
        **tls,
    )
    return Redis.from_pool(pool)


def _sentinel(
    settings: Settings, common: dict[str, Any], tls: dict[str, Any], name: str
) -> Connected:
    from redis.asyncio import BlockingConnectionPool, Redis
    from redis.asyncio.sentinel import Sentinel, SentinelConnectionPool

    class WaitingSentinelPool(SentinelConnectionPool, BlockingConnectionPool):
        """Connections to whichever server the Sentinels name as primary, from a pool that
        makes callers beyond its size wait; it notes each change of primary in ``moves``."""

        def __init__(self, service_name: str, sentinel_manager: Sentinel, **kwargs: Any):
            self.moves: list[str] = []
            super().__init__(service_name, sentinel_manager, **kwargs)  # type: ignore[no-untyped-call]

        async def get_master_address(self) -> Address:
            before = self.master_address
            address: Address = await super().get_master_address()  # type: ignore[no-untyped-call]
            if before is not None and address != before:
                self.moves.append(f"{_shown(before)} to {_shown(address)}")
            return address

    class SentinelRedis(Redis):
        """The primary's client, which also closes its connections to the Sentinels."""

        async def aclose(self, close_connection_pool: bool | None = None) -> None:
            await super().aclose(close_connection_pool)
            for each in sentinels.sentinels:
                await each.aclose()

    ssl = {"ssl": True, **tls} if settings.tls else {}
    sentinels = Sentinel(  # type: ignore[no-untyped-call]  # redis-py leaves it unannotated
        list(settings.addresses),
        sentinel_kwargs={
            **common,
            "username": settings.sentinel_username,
            "password": settings.sentinel_password,
            **ssl,
        },
    )
    client: Redis = sentinels.master_for(
        settings.mastername or "",
        redis_class=SentinelRedis,
        connection_pool_class=WaitingSentinelPool,
        max_connections=settings.pool_size,
        timeout=settings.dial + settings.io,
        db=settings.db,
        **common,
        **ssl,
    )
    pool = client.connection_pool
    assert isinstance(pool, WaitingSentinelPool)
    due = _every(WATCH_SECONDS)

    async def moved() -> str | None:
        if due():
            await pool.get_master_address()
        if not pool.moves:
            return None
        moves, pool.moves[:] = "; ".join(pool.moves), []
        return f"the primary moved from {moves}: writes it acknowledged may be lost"

    return Connected(client, name, moved)


def _cluster(
    settings: Settings, common: dict[str, Any], tls: dict[str, Any], name: str
) -> Connected:
    from redis.asyncio.cluster import ClusterNode, RedisCluster

    client = RedisCluster(
        startup_nodes=[ClusterNode(host, port) for host, port in settings.addresses],
        max_connections=settings.pool_size,
        ssl=settings.tls,
        **common,
        **tls,
    )
    due = _every(WATCH_SECONDS)
    seen: dict[tuple[int, int], Address] | None = None

    async def moved() -> str | None:
        nonlocal seen
        if not due():
            return None
        # redis-py types the answer as a list; it parses it into a dict by slot range.
        slots: dict[tuple[int, int], dict[str, Any]] = await client.cluster_slots(  # type: ignore[assignment]
            target_nodes=RedisCluster.RANDOM
        )
        primaries = {
            (int(first), int(last)): (str(node["primary"][0]), int(node["primary"][1]))
            for (first, last), node in slots.items()
        }
        before, seen = seen, primaries
        if before is None or before == primaries:
            return None
        changed = sorted(
            k for k in before.keys() | primaries.keys() if before.get(k) != primaries.get(k)
        )
        spans = ", ".join(f"{first}-{last}" for first, last in changed)
        return f"the primaries of slots {spans} changed: writes they acknowledged may be lost"

    return Connected(client, name, moved, settings.pool_size)
