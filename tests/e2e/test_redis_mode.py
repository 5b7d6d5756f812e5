"""The registry with a Redis cache (redis.addr): hot facts are cached in Redis, a tag moved
through one replica is seen at once through another, and a dead Redis only slows things."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from cache.redisserver import RedisServer, private_redis
from e2e.conftest import ServerFactory
from e2e.registry import image_manifest


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    with private_redis() as server:
        yield server


def _push_tagged(client: object, repo: str, tag: str, label: bytes) -> str:
    config_digest = client.push_blob(repo, b'{"label": "' + label + b'"}')  # type: ignore[attr-defined]
    body = image_manifest(
        {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": config_digest,
            "size": len(b'{"label": "' + label + b'"}'),
        }
    )
    response = client.put_manifest(repo, tag, body)  # type: ignore[attr-defined]
    assert response.status_code == 201
    digest: str = response.headers["Docker-Content-Digest"]
    return digest


def test_two_replicas_share_the_cache_and_see_tag_moves(
    redis_server: RedisServer, tmp_path: Path, registry_factory: ServerFactory
) -> None:
    shared = {
        "database": {"url": f"sqlite:///{tmp_path / 'meta.db'}"},
        "redis": {"addr": redis_server.addr},
    }
    first = registry_factory(
        {**shared, "storage": {"filesystem": {"rootdirectory": str(tmp_path / "blobs")}}}
    )
    second = registry_factory(
        {**shared, "storage": {"filesystem": {"rootdirectory": str(tmp_path / "blobs")}}}
    )
    with first.client() as a, second.client() as b:
        old = _push_tagged(a, "cached/app", "latest", b"one")
        assert (
            b.request("GET", "/v2/cached/app/manifests/latest").headers["Docker-Content-Digest"]
            == old
        )
        keys = redis.Redis.from_url(f"redis://{redis_server.addr}").keys("*")
        assert keys, "the registry cached nothing in Redis"
        new = _push_tagged(a, "cached/app", "latest", b"two")
        assert new != old
        assert (
            b.request("GET", "/v2/cached/app/manifests/latest").headers["Docker-Content-Digest"]
            == new
        )
        assert a.request("DELETE", "/v2/cached/app/manifests/latest").status_code == 202
        assert b.request("GET", "/v2/cached/app/manifests/latest").status_code == 404

        redis_server.kill()
        # Without Redis every request still answers, from the database.
        assert b.request("GET", f"/v2/cached/app/manifests/{new}").status_code == 200
        again = _push_tagged(b, "cached/app", "v2", b"three")
        assert (
            a.request("GET", "/v2/cached/app/manifests/v2").headers["Docker-Content-Digest"]
            == again
        )
