"""The registry with a Redis cache (redis.addr, a primary that Sentinel watches, or a Redis
Cluster): hot facts are cached in Redis, a tag moved through one replica is seen at once through
another, across a failover too, and a dead Redis only slows things."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from cache.redisserver import RedisServer, private_redis
from cache.redistopologies import fail_over, private_cluster, private_sentinel
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


def test_replicas_on_a_primary_that_sentinel_watches_see_tag_moves_across_a_failover(
    tmp_path: Path, registry_factory: ServerFactory
) -> None:
    with private_sentinel() as setup:
        shared = {
            "database": {"url": f"sqlite:///{tmp_path / 'meta.db'}"},
            "redis": setup.section(),
            "storage": {"filesystem": {"rootdirectory": str(tmp_path / "blobs")}},
        }
        first, second = registry_factory(shared), registry_factory(shared)
        with first.client() as a, second.client() as b:
            old = _push_tagged(a, "watched/app", "latest", b"one")
            for _ in range(2):
                got = b.request("GET", "/v2/watched/app/manifests/latest")
                assert got.headers["Docker-Content-Digest"] == old
            with redis.Redis(port=setup.current_primary()) as primary:
                assert primary.keys("*"), "the registry cached nothing on the primary"
            new_primary = fail_over(setup)
            # Through the failover, every answer is the database's truth or a current entry.
            new = _push_tagged(a, "watched/app", "latest", b"two")
            for client in (a, b, a, b):
                got = client.request("GET", "/v2/watched/app/manifests/latest")
                assert got.headers["Docker-Content-Digest"] == new
            with redis.Redis(port=new_primary) as primary:
                assert primary.keys("*")


def test_replicas_on_a_redis_cluster_share_the_cache_and_see_tag_moves(
    tmp_path: Path, registry_factory: ServerFactory
) -> None:
    with private_cluster() as cluster:
        shared = {
            "database": {"url": f"sqlite:///{tmp_path / 'meta.db'}"},
            "redis": {"addrs": cluster.addrs},
            "storage": {"filesystem": {"rootdirectory": str(tmp_path / "blobs")}},
        }
        first, second = registry_factory(shared), registry_factory(shared)
        with first.client() as a, second.client() as b:
            for label in (b"one", b"two", b"three"):
                pushed = _push_tagged(a, "clustered/app", "latest", label)
                for _ in range(2):
                    got = b.request("GET", "/v2/clustered/app/manifests/latest")
                    assert got.headers["Docker-Content-Digest"] == pushed
            held = 0
            for server in cluster.primaries:
                with redis.Redis(port=server.port) as node:
                    held += len(node.keys("*"))
            assert held, "the registry cached nothing in the cluster"
