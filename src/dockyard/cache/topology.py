"""How the registry reaches Redis: one server, or the primary that Sentinel watches.

The choice is Distribution's (go-redis's universal client): ``mastername`` names a primary
that the Sentinels at ``addrs`` know; otherwise the one address is the server. Every client
connects lazily and never retries a failed call: the caller's circuit breaker decides what
follows. Callers beyond the pool wait for a connection (within the call's bound) rather than
fail, so that a burst of requests does not look like an outage.

A failover can lose writes: the replica promoted may not have received the last ones the old
primary acknowledged. The registry's cache must know (a lost token replacement would let
stale entries be served), so the Sentinel client asks the Sentinels which server is primary
at most once every ``WATCH_SECONDS`` and on every new connection; a change is reported by
``moved`` (see ``CacheLost``).

Redis Cluster (several ``addrs`` without ``mastername``) is refused: a shard's failover would
have to be told apart from a slot's migration in the client's view of the slots before it
could be reported the same way.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from redis.asyncio import Redis

__all__ = ["WATCH_SECONDS", "Address", "Connected", "Settings", "connect"]

Address = tuple[str, int]

WATCH_SECONDS = 1.0
"""How often, at most, a call asks the Sentinels which server is primary."""


@dataclass(frozen=True, slots=True)
class Settings:
    """A parsed ``redis`` section."""

    addresses: tuple[Address, ...]
    """The server; or, with ``mastername``, the Sentinels."""
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
    client: Redis
    name: str
    """Which server it is, in messages: ``redis at host:port``."""
    moved: Callable[[], Awaitable[str | None]] | None
    """What changed since last asked, if the primary may have lost acknowledged writes
    (None: never)."""


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
        return _sentinel(
            settings, common, tls, f"redis {settings.mastername} (sentinels at {places})"
        )
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
    asked = -WATCH_SECONDS

    async def moved() -> str | None:
        nonlocal asked
        now = time.monotonic()
        if now - asked >= WATCH_SECONDS:
            asked = now
            await pool.get_master_address()
        if not pool.moves:
            return None
        moves, pool.moves[:] = "; ".join(pool.moves), []
        return f"the primary moved from {moves}: writes it acknowledged may be lost"

    return Connected(client, name, moved)
