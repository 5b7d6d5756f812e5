"""Opening the cache from a ``redis`` section in either of Distribution's layouts."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from redis.asyncio import Redis
from redis.asyncio.connection import SSLConnection

from dockyard.cache.factory import (
    DEFAULT_DIAL_TIMEOUT,
    DEFAULT_IO_TIMEOUT,
    DEFAULT_POOL_SIZE,
    open_cache,
)
from dockyard.cache.redis import RedisCache


@pytest.fixture
async def opened() -> AsyncIterator[list[RedisCache]]:
    caches: list[RedisCache] = []
    yield caches
    for cache in caches:
        await cache.close()


async def _open(opened: list[RedisCache], section: dict[str, Any]) -> dict[str, Any]:
    """The connection settings of the cache the section opens (nothing need be listening)."""
    cache = await open_cache(section)
    assert isinstance(cache, RedisCache)
    opened.append(cache)
    assert isinstance(cache.client, Redis)
    pool = cache.client.connection_pool
    settings = dict(pool.connection_kwargs)
    settings["timeout"] = cache.timeout
    settings["max_connections"] = pool.max_connections
    settings["tls"] = issubclass(pool.connection_class, SSLConnection)
    settings["name"] = repr(cache)
    return settings


@pytest.mark.parametrize("section", [None, {}, {"addr": ""}, {"addrs": []}, {"db": 2}])
async def test_no_address_no_cache(section: dict[str, Any] | None) -> None:
    assert await open_cache(section) is None


async def test_defaults(opened: list[RedisCache]) -> None:
    settings = await _open(opened, {"addr": "127.0.0.1:1"})
    assert (settings["host"], settings["port"], settings["db"]) == ("127.0.0.1", 1, 0)
    assert settings["username"] is settings["password"] is None
    assert settings["socket_connect_timeout"] == DEFAULT_DIAL_TIMEOUT
    assert settings["socket_timeout"] == DEFAULT_IO_TIMEOUT
    assert settings["timeout"] == pytest.approx(DEFAULT_DIAL_TIMEOUT + DEFAULT_IO_TIMEOUT)
    assert settings["retry"].get_retries() == 0
    assert settings["max_connections"] == DEFAULT_POOL_SIZE
    assert settings["tls"] is False
    assert settings["name"] == "RedisCache(redis at 127.0.0.1:1)"


async def test_distribution_2_layout(opened: list[RedisCache]) -> None:
    section = {
        "addr": "redis.internal:6380",
        "password": "secret",
        "db": "2",
        "dialtimeout": "10ms",
        "readtimeout": "20ms",
        "writetimeout": "30ms",
        "pool": {"maxidle": 16, "maxactive": 64, "idletimeout": "300s"},
        "tls": {"enabled": True},
    }
    settings = await _open(opened, section)
    assert (settings["host"], settings["port"]) == ("redis.internal", 6380)
    assert (settings["password"], settings["db"]) == ("secret", 2)
    assert settings["socket_connect_timeout"] == pytest.approx(0.01)
    assert settings["socket_timeout"] == pytest.approx(0.03)
    assert settings["timeout"] == pytest.approx(0.04)
    assert settings["max_connections"] == 64
    assert settings["tls"] is True


async def test_distribution_3_layout(opened: list[RedisCache]) -> None:
    section = {
        "addrs": ["[::1]:7000"],
        "username": "registry",
        "password": 1234,
        "db": 1,
        "dialtimeout": 0,  # Go's zero: the default
        "readtimeout": 0.5,  # a bare number is seconds
        "poolsize": 8,
        "maxidleconns": 4,
        "connmaxidletime": "5m",
        "tls": {"certificate": "/c.pem", "key": "/k.pem", "clientcas": ["/ca.pem"]},
    }
    settings = await _open(opened, section)
    assert (settings["host"], settings["port"]) == ("::1", 7000)
    assert (settings["username"], settings["password"], settings["db"]) == ("registry", "1234", 1)
    assert settings["socket_connect_timeout"] == DEFAULT_DIAL_TIMEOUT
    assert settings["socket_timeout"] == 0.5
    assert settings["max_connections"] == 8
    assert settings["tls"] is True
    assert (settings["ssl_certfile"], settings["ssl_keyfile"]) == ("/c.pem", "/k.pem")
    assert settings["ssl_ca_certs"] == "/ca.pem"
    assert settings["name"] == "RedisCache(redis at [::1]:7000)"


async def test_host_alone_and_port_alone(opened: list[RedisCache]) -> None:
    settings = await _open(opened, {"addr": "redis"})
    assert (settings["host"], settings["port"]) == ("redis", 6379)
    settings = await _open(opened, {"addrs": ":6390"})
    assert (settings["host"], settings["port"]) == ("localhost", 6390)


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"addr": "h:1", "adr": "x"}, r"redis\.adr: unknown key"),
        ({"addr": "h:1", "pool": {"maxactiv": 1}}, r"redis\.pool\.maxactiv: unknown key"),
        ({"addr": "h:1", "tls": {"enable": True}}, r"redis\.tls\.enable: unknown key"),
        ({"addr": "h:1", "tls": "yes"}, r"redis\.tls: expected a mapping"),
        ({"addr": "h:1", "tls": {"enabled": "maybe"}}, r"redis\.tls\.enabled: expected true"),
        ({"addr": "h:99999"}, r"redis\.addr: invalid address"),
        ({"addrs": ["h:1", "h:2"], "db": 1}, r"redis\.db: a Redis Cluster"),
        ({"addr": "h:1", "addrs": ["h:2"]}, r"redis\.addrs: give either"),
        ({"addr": "h:1", "db": -1}, r"redis\.db: expected a whole number"),
        ({"addr": "h:1", "db": "two"}, r"redis\.db: expected a whole number"),
        ({"addr": "h:1", "readtimeout": "soon"}, r"redis\.readtimeout: invalid duration"),
        ({"addr": "h:1", "dialtimeout": "-1s"}, r"redis\.dialtimeout: invalid duration"),
        ({"addr": "h:1", "pool": {"maxactive": True}}, r"redis\.pool\.maxactive: expected"),
        ({"addr": "h:1", "password": ["x"]}, r"redis\.password: expected text"),
        ({"addr": "h:1", "tls": {"clientcas": ["/a", "/b"]}}, r"redis\.tls\.clientcas: one"),
        ("h:1", r"redis: expected a mapping"),
    ],
)
async def test_malformed_sections_name_the_key(section: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        await open_cache(section)


async def test_a_cache_that_is_down_opens_with_a_warning(
    opened: list[RedisCache], caplog: pytest.LogCaptureFixture
) -> None:
    settings = await _open(opened, {"addr": "127.0.0.1:1"})
    assert settings["port"] == 1
    warnings = [r.getMessage() for r in caplog.records if r.name == "dockyard.cache"]
    assert len(warnings) == 1
    assert "redis at 127.0.0.1:1 is not answering yet" in warnings[0]


async def test_a_typed_section_dumped_with_every_default(opened: list[RedisCache]) -> None:
    """What a typed config model gives when dumped: every key, empty or zero by default."""
    defaults: dict[str, Any] = {
        "addr": "",
        "addrs": [],
        "username": None,
        "password": None,
        "db": 0,
        "dialtimeout": 0.0,
        "readtimeout": 0.0,
        "writetimeout": 0.0,
        "pool": {"maxidle": 0, "maxactive": 0, "idletimeout": 0.0},
        "poolsize": 0,
        "maxidleconns": 0,
        "connmaxidletime": 0.0,
        "tls": {"enabled": False, "certificate": None, "key": None, "clientcas": []},
    }
    assert await open_cache(defaults) is None
    settings = await _open(opened, {**defaults, "addr": "127.0.0.1:1", "readtimeout": 0.2})
    assert settings["socket_connect_timeout"] == DEFAULT_DIAL_TIMEOUT
    assert settings["socket_timeout"] == 0.2
    assert settings["max_connections"] == DEFAULT_POOL_SIZE
    assert settings["tls"] is False
