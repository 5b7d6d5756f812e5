"""Open the shared cache from the config's ``redis`` section, written as Distribution writes it.

Both of Distribution's layouts are read::

    redis:                        # 2.x                 redis:                    # 3.x
      addr: redis:6379                                    addrs: [redis:6379]
      username: registry                                  username: registry
      password: secret                                    password: secret
      db: 0                                               db: 0
      dialtimeout: 250ms                                  dialtimeout: 250ms
      readtimeout: 100ms                                  readtimeout: 100ms
      writetimeout: 100ms                                 writetimeout: 100ms
      pool:                                               poolsize: 64
        maxactive: 64                                     maxidleconns: 16
        maxidle: 16                                       connmaxidletime: 300s
        idletimeout: 300s                                 tls:
      tls:                                                  certificate: /client.crt
        enabled: true                                       key: /client.key
                                                            clientcas: [/ca.pem]

Timeouts left out (or 0, as Go reads them) are short, since every cache call waits for them
when Redis is down: 250 ms to connect, 100 ms to read or write. A bare number is seconds.
``maxactive``/``poolsize`` bound the connections (default, or 0: 64); the idle-connection
settings are accepted and left to redis-py, which keeps no idle timer.

As in Distribution 3.x, ``mastername`` makes ``addrs`` the Sentinels that know the primary
of that name (``sentinelusername`` and ``sentinelpassword`` log in to them), and several
``addrs`` without it are nodes of a Redis Cluster (see ``topology``).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from dockyard.cache.base import Cache, CacheError
from dockyard.cache.topology import Address, Connected, Settings, connect
from dockyard.config.durations import duration_seconds
from dockyard.config.fields import parse_tcp_address

__all__ = [
    "DEFAULT_DIAL_TIMEOUT",
    "DEFAULT_IO_TIMEOUT",
    "DEFAULT_POOL_SIZE",
    "RedisConfigError",
    "check_section",
    "open_cache",
    "redis_client",
]

log = logging.getLogger("dockyard.cache")

DEFAULT_DIAL_TIMEOUT = 0.25
DEFAULT_IO_TIMEOUT = 0.1
DEFAULT_POOL_SIZE = 64

_DEFAULT_PORT = 6379
_KEYS = {
    "addr",
    "addrs",
    "username",
    "password",
    "db",
    "dialtimeout",
    "readtimeout",
    "writetimeout",
    "pool",
    "poolsize",
    "mastername",
    "sentinelusername",
    "sentinelpassword",
    "maxidleconns",
    "connmaxidletime",
    "tls",
}
_POOL_KEYS = {"maxidle", "maxactive", "idletimeout"}
_TLS_KEYS = {"enabled", "certificate", "key", "clientcas"}


class RedisConfigError(ValueError):
    """A ``redis`` section that cannot be used; ``path`` is the offending key."""

    def __init__(self, path: str, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"{path}: {reason}")


def _mapping(value: Any, path: str) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise RedisConfigError(path, "expected a mapping")
    return value


def _check_keys(section: Mapping[str, Any], allowed: set[str], path: str) -> None:
    for key in section:
        if key not in allowed:
            raise RedisConfigError(
                f"{path}.{key}", f"unknown key (known: {', '.join(sorted(allowed))})"
            )


def _text(value: Any, path: str) -> str | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise RedisConfigError(path, "expected text")
    return str(value)


def _count(value: Any, path: str) -> int:
    if value is None or value == "":
        return 0
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
        return int(value)
    raise RedisConfigError(path, "expected a whole number, at least 0")


def _seconds(value: Any, default: float, path: str) -> float:
    if value is None or value == "":
        return default
    try:
        seconds = duration_seconds(value)
    except ValueError as error:
        raise RedisConfigError(path, str(error)) from None
    return seconds or default


def _flag(value: Any, path: str) -> bool:
    if value is None:
        return False
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise RedisConfigError(path, "expected true or false")


def _addresses(section: Mapping[str, Any]) -> tuple[Address, ...]:
    addr = _text(section.get("addr"), "redis.addr")
    addrs = section.get("addrs")
    if addrs is not None and not isinstance(addrs, list | tuple):
        addrs = [addrs]
    listed = [a for a in (addrs or []) if a not in (None, "")]
    if addr is not None and listed:
        raise RedisConfigError("redis.addrs", "give either redis.addr or redis.addrs, not both")
    given = [("redis.addr", addr)] if addr is not None else []
    for index, value in enumerate(listed):
        path = f"redis.addrs[{index}]"
        given.append((path, _text(value, path) or ""))
    found: list[Address] = []
    for path, text in given:
        if ":" not in text:
            text = f"{text}:{_DEFAULT_PORT}"
        try:
            host, port = parse_tcp_address(text)
        except ValueError as error:
            raise RedisConfigError(path, str(error)) from None
        found.append((host or "localhost", port))
    return tuple(found)


def _settings(section: Mapping[str, Any]) -> Settings | None:
    _check_keys(section, _KEYS, "redis")
    addresses = _addresses(section)
    if not addresses:
        return None
    pooling = _mapping(section.get("pool"), "redis.pool")
    _check_keys(pooling, _POOL_KEYS, "redis.pool")
    tls = _mapping(section.get("tls"), "redis.tls")
    _check_keys(tls, _TLS_KEYS, "redis.tls")

    mastername = _text(section.get("mastername"), "redis.mastername")
    sentinel_username = _text(section.get("sentinelusername"), "redis.sentinelusername")
    sentinel_password = _text(section.get("sentinelpassword"), "redis.sentinelpassword")
    if mastername is None:
        for name, value in (
            ("sentinelusername", sentinel_username),
            ("sentinelpassword", sentinel_password),
        ):
            if value is not None:
                raise RedisConfigError(f"redis.{name}", "only with redis.mastername (Sentinel)")
    db = _count(section.get("db"), "redis.db")
    if mastername is None and len(addresses) > 1 and db:
        raise RedisConfigError(
            "redis.db", "a Redis Cluster (several redis.addrs) has database 0 only"
        )

    dial = _seconds(section.get("dialtimeout"), DEFAULT_DIAL_TIMEOUT, "redis.dialtimeout")
    read = _seconds(section.get("readtimeout"), DEFAULT_IO_TIMEOUT, "redis.readtimeout")
    write = _seconds(section.get("writetimeout"), DEFAULT_IO_TIMEOUT, "redis.writetimeout")
    _count(pooling.get("maxidle"), "redis.pool.maxidle")
    _seconds(pooling.get("idletimeout"), 0.0, "redis.pool.idletimeout")
    _count(section.get("maxidleconns"), "redis.maxidleconns")
    _seconds(section.get("connmaxidletime"), 0.0, "redis.connmaxidletime")
    max_connections = _count(pooling.get("maxactive"), "redis.pool.maxactive") or _count(
        section.get("poolsize"), "redis.poolsize"
    )

    certificate = _text(tls.get("certificate"), "redis.tls.certificate")
    key = _text(tls.get("key"), "redis.tls.key")
    clientcas = tls.get("clientcas") or []
    if not isinstance(clientcas, list | tuple):
        clientcas = [clientcas]
    if len(clientcas) > 1:
        raise RedisConfigError("redis.tls.clientcas", "one CA file only")
    ca = _text(clientcas[0], "redis.tls.clientcas[0]") if clientcas else None
    return Settings(
        addresses=addresses,
        mastername=mastername,
        db=db,
        username=_text(section.get("username"), "redis.username"),
        password=_text(section.get("password"), "redis.password"),
        sentinel_username=sentinel_username,
        sentinel_password=sentinel_password,
        dial=dial,
        io=max(read, write),
        pool_size=max_connections or DEFAULT_POOL_SIZE,
        tls=_flag(tls.get("enabled"), "redis.tls.enabled") or certificate is not None,
        certificate=certificate,
        key=key,
        ca=ca,
    )


def check_section(section: Mapping[str, Any] | None) -> None:
    """Raise ``RedisConfigError`` if the section is malformed; no connection is made."""
    _settings(_mapping(section, "redis"))


def redis_client(section: Mapping[str, Any]) -> tuple[Connected, float] | None:
    """A client for the section and the bound on one call; None when no address is
    configured. Connects lazily. ``RedisConfigError`` names the offending key."""
    settings = _settings(section)
    if settings is None:
        return None
    return connect(settings), settings.dial + settings.io


async def open_cache(redis_section: Mapping[str, Any] | None) -> Cache | None:
    """The cache the ``redis`` section describes, or None when it names no address.

    Redis need not be up: the registry starts and runs without it, and uses it once it
    answers. ``RedisConfigError`` names the offending key of a malformed section."""
    made = redis_client(_mapping(redis_section, "redis"))
    if made is None:
        return None
    from dockyard.cache.redis import RedisCache

    connected, timeout = made
    cache = RedisCache(
        connected.client,
        timeout=timeout,
        name=connected.name,
        moved=connected.moved,
        limit=connected.limit,
    )
    try:
        await cache.get("dockyard:ping")
    except CacheError as error:
        log.warning(
            "%s is not answering yet (%s); going without it until it does", connected.name, error
        )
    return cache
