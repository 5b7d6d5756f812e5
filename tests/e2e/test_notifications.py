"""Distribution's notifications over real HTTP: a listener started here receives the events of
a real ``dockyard serve``, survives refusals and restarts, and never slows the registry."""

from __future__ import annotations

import json
import os
import re
import socket
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import bcrypt
import httpx
import pytest

from events.receiver import Receiver, black_hole, receiver

from .conftest import DISTRIBUTION, RegistryServer, ServerFactory
from .registry import OCI_MANIFEST, RegistryClient
from .test_ops import scrape, value

pytestmark = pytest.mark.skipif(DISTRIBUTION, reason="Dockyard's durable outbox")

ENVELOPE = "application/vnd.docker.distribution.events.v1+json"
BLOB = "application/octet-stream"
USER_AGENT = "notifications-test/1.0"


def endpoint(url: str, **extra: Any) -> dict[str, Any]:
    return {
        "name": "listener",
        "url": url,
        "headers": {"Authorization": ["Bearer s3cret"]},
        "timeout": "1s",
        "threshold": 2,
        "backoff": "200ms",
        **extra,
    }


def notifying(*endpoints: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"notifications": {"endpoints": list(endpoints), **extra}}


@pytest.fixture
def listener() -> Iterator[Receiver]:
    with receiver() as state:
        yield state


def _htpasswd(path: Path) -> dict[str, Any]:
    hashed = bcrypt.hashpw(b"wonderland", bcrypt.gensalt(5)).decode()
    path.write_text(f"alice:{hashed}\n")
    return {"htpasswd": {"realm": "test", "path": str(path)}}


def _client(server: RegistryServer, request_id: str | None = None) -> RegistryClient:
    client = server.client()
    client.http.auth = httpx.BasicAuth("alice", "wonderland")
    client.http.headers["User-Agent"] = USER_AGENT
    if request_id is not None:
        client.http.headers["X-Request-ID"] = request_id
    return client


def _find(events: list[dict[str, Any]], action: str, **target: Any) -> dict[str, Any]:
    found = [
        e
        for e in events
        if e["action"] == action and all(e["target"].get(k) == v for k, v in target.items())
    ]
    assert len(found) == 1, (action, target, json.dumps(events, indent=1))
    return found[0]


def test_every_action_arrives_with_every_field(
    registry_factory: ServerFactory, listener: Receiver, tmp_path: Path
) -> None:
    config = notifying(endpoint(listener.url), events={"includereferences": True})
    config["auth"] = _htpasswd(tmp_path / "htpasswd")
    server = registry_factory(config)
    port = server.url.rsplit(":", 1)[1]
    repo, other = "notify/app", "notify/copy"
    request_id = "req-" + uuid.uuid4().hex
    started = datetime.now(UTC) - timedelta(seconds=1)
    with _client(server, request_id) as client:
        config_blob = json.dumps({"architecture": "amd64", "os": "linux"}).encode()
        layer = os.urandom(3000)
        config_digest = client.push_blob(repo, config_blob)
        layer_digest = client.push_blob_chunked(repo, layer, 1000)
        body = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "config": {
                    "mediaType": "application/vnd.oci.image.config.v1+json",
                    "digest": config_digest,
                    "size": len(config_blob),
                },
                "layers": [
                    {
                        "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                        "digest": layer_digest,
                        "size": len(layer),
                    }
                ],
            }
        ).encode()
        manifest_digest = client.push_manifest(repo, "v1", body)
        assert client.get_blob(repo, layer_digest).content == layer
        assert client.blob_exists(repo, layer_digest)  # a HEAD is no pull
        assert client.get_manifest(repo, "v1").content == body
        assert client.http.head(f"/v2/{repo}/manifests/v1").status_code == 200  # no pull
        client.push_manifest(repo, "old", body)
        assert client.http.delete(f"/v2/{repo}/manifests/old").status_code == 202
        mounted = client.http.post(
            f"/v2/{other}/blobs/uploads/", params={"mount": layer_digest, "from": repo}
        )
        assert mounted.status_code == 201, mounted.text
        assert client.http.delete(f"/v2/{repo}/manifests/{manifest_digest}").status_code == 202
        assert client.http.delete(f"/v2/{other}/blobs/{layer_digest}").status_code == 202
    events = listener.wait_count(10)
    assert len(events) == 10, json.dumps(events, indent=1)

    base = server.url
    blob_push = _find(events, "push", digest=layer_digest)
    assert blob_push["target"] == {
        "mediaType": BLOB,
        "size": len(layer),
        "digest": layer_digest,
        "length": len(layer),
        "repository": repo,
        "url": f"{base}/v2/{repo}/blobs/{layer_digest}",
    }
    assert _find(events, "push", digest=config_digest)["target"]["size"] == len(config_blob)
    manifest_push = _find(events, "push", digest=manifest_digest, tag="v1")
    references = [
        {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": config_digest,
            "size": len(config_blob),
        },
        {
            "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
            "digest": layer_digest,
            "size": len(layer),
        },
    ]
    assert manifest_push["target"] == {
        "mediaType": OCI_MANIFEST,
        "size": len(body),
        "digest": manifest_digest,
        "length": len(body),
        "repository": repo,
        "url": f"{base}/v2/{repo}/manifests/{manifest_digest}",
        "tag": "v1",
        "references": references,
    }
    assert manifest_push["request"]["method"] == "PUT"
    blob_pull = _find(events, "pull", digest=layer_digest)
    assert blob_pull["target"] == {**blob_push["target"]}
    assert blob_pull["request"]["method"] == "GET"
    manifest_pull = _find(events, "pull", digest=manifest_digest, tag="v1")
    assert manifest_pull["target"] == manifest_push["target"]
    mount = _find(events, "mount", digest=layer_digest)
    assert mount["target"] == {
        **blob_push["target"],
        "repository": other,
        "fromRepository": repo,
        "url": f"{base}/v2/{other}/blobs/{layer_digest}",
    }
    assert mount["request"]["method"] == "POST"
    assert _find(events, "push", tag="old")["target"]["digest"] == manifest_digest
    assert _find(events, "delete", tag="old")["target"] == {"repository": repo, "tag": "old"}
    assert _find(events, "delete", digest=manifest_digest)["target"] == {
        "repository": repo,
        "digest": manifest_digest,
    }
    assert _find(events, "delete", digest=layer_digest)["target"] == {
        "repository": other,
        "digest": layer_digest,
    }

    ids = [event["id"] for event in events]
    assert len(set(ids)) == len(ids)
    instance_ids = set()
    for event in events:
        assert str(uuid.UUID(event["id"])) == event["id"]
        when = datetime.fromisoformat(event["timestamp"].replace("Z", "+00:00"))
        assert started <= when <= datetime.now(UTC)
        request = event["request"]
        assert request["id"] == request_id
        host, _, client_port = request["addr"].rpartition(":")
        assert host == "127.0.0.1"
        assert client_port.isdigit()
        assert request["host"] == base.removeprefix("http://")
        assert request["useragent"] == USER_AGENT
        assert request["method"] in ("GET", "PUT", "POST", "DELETE")
        assert event["actor"] == {"name": "alice"}
        assert event["source"]["addr"] == f"{socket.gethostname()}:{port}"
        instance_ids.add(str(uuid.UUID(event["source"]["instanceID"])))
        assert set(event) == {"id", "timestamp", "action", "target", "request", "actor", "source"}
    # Two workers: each is an instance of its own.
    assert 1 <= len(instance_ids) <= 2
    for envelope in listener.accepted:
        assert envelope.headers["Content-Type"] == ENVELOPE
        assert envelope.headers["Authorization"] == "Bearer s3cret"


def test_ignored_actions_and_media_types_are_not_sent(
    registry_factory: ServerFactory, listener: Receiver
) -> None:
    with receiver() as everything:
        config = notifying(
            endpoint(
                listener.url,
                ignore={"actions": ["pull"]},
                ignoredmediatypes=[BLOB],
            ),
            endpoint(everything.url, name="everything"),
            endpoint("http://127.0.0.1:9/never", name="off", disabled=True),
        )
        server = registry_factory(config)
        with server.client() as client:
            image = client.push_image("notify/ignored", "v1")
            assert client.get_manifest("notify/ignored", "v1").status_code == 200
        # Two blobs, a manifest and a pull.
        assert [e["action"] for e in everything.wait_count(4)].count("pull") == 1
        events = listener.wait_count(1)
        time.sleep(1.5)  # nothing else comes
        assert [(e["action"], e["target"]["digest"]) for e in listener.events()] == [
            ("push", image.digest)
        ]
        assert len(events) == 1


def _push_numbered(client: RegistryClient, repo: str, count: int) -> list[str]:
    """``count`` tagged manifests (no blobs), in order; their digests."""
    digests = []
    for number in range(count):
        body = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": "application/vnd.oci.image.index.v1+json",
                "manifests": [],
                "annotations": {"number": str(number)},
            }
        ).encode()
        digests.append(
            client.push_manifest(
                repo, f"n{number}", body, "application/vnd.oci.image.index.v1+json"
            )
        )
    return digests


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest) -> Iterator[dict[str, Any]]:
    if request.param == "sqlite":
        yield {}
        return
    from metadata.test_postgres import fresh_database

    with fresh_database() as url:
        yield {"database": {"url": url}}


def test_a_refusing_endpoint_and_a_restart_lose_nothing(
    registry_factory: ServerFactory, listener: Receiver, database: dict[str, Any]
) -> None:
    listener.status = 503
    server = registry_factory({**notifying(endpoint(listener.url)), **database})
    with server.client() as client:
        before = _push_numbered(client, "notify/order", 10)
    # Refused, retried, never dropped.
    deadline = time.monotonic() + 10
    while len(listener.refused) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(listener.refused) >= 3
    assert listener.events() == []
    server.restart()
    with server.client() as client:
        after = _push_numbered(client, "notify/order2", 5)
    listener.status = 202
    events = listener.wait_count(15)
    assert [e["target"]["digest"] for e in events] == before + after
    assert [e["target"]["tag"] for e in events] == [f"n{i}" for i in range(10)] + [
        f"n{i}" for i in range(5)
    ]
    time.sleep(1.0)
    assert len(listener.events()) == 15


def test_a_4xx_is_retried_and_counted(
    registry_factory: ServerFactory, listener: Receiver, unused_tcp_port_factory: Any
) -> None:
    debug = f"127.0.0.1:{unused_tcp_port_factory()}"
    listener.status = 400
    server = registry_factory(
        {
            **notifying(endpoint(listener.url)),
            "http": {"debug": {"addr": debug, "prometheus": {"enabled": True}}},
        }
    )
    metrics = f"http://{debug}/metrics"
    with server.client() as client:
        digests = _push_numbered(client, "notify/refused", 3)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        samples = scrape(metrics)
        failures = value(
            samples, "dockyard_notification_failures_total", endpoint="listener", status="400"
        )
        depth = value(samples, "dockyard_notification_queue_depth", endpoint="listener")
        if failures >= 3 and depth == 3:
            break
        time.sleep(0.1)
    assert failures >= 3
    assert depth == 3
    assert re.search(r"delivery of \d+ events to listener failed \(400", server.stderr())
    listener.status = 200
    events = listener.wait_count(3)
    assert [e["target"]["digest"] for e in events] == digests
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        samples = scrape(metrics)
        delivered = value(
            samples, "dockyard_notification_deliveries_total", endpoint="listener", status="200"
        )
        if delivered >= 1 and (
            value(samples, "dockyard_notification_queue_depth", endpoint="listener") == 0
        ):
            break
        time.sleep(0.1)
    assert delivered >= 1
    assert value(samples, "dockyard_notification_queue_depth", endpoint="listener") == 0
    assert value(samples, "dockyard_notification_events_total", endpoint="listener") == 3


def _timed_pushes(server: RegistryServer, repo: str, count: int) -> float:
    with server.client() as client:
        started = time.perf_counter()
        for _ in range(count):
            client.push_image(repo, "latest")
            assert client.get_manifest(repo, "latest").status_code == 200
        return time.perf_counter() - started


def test_a_black_hole_endpoint_does_not_slow_pushes(registry_factory: ServerFactory) -> None:
    plain = registry_factory()
    _timed_pushes(plain, "notify/warm", 2)
    baseline = _timed_pushes(plain, "notify/plain", 10)
    with black_hole() as url:
        server = registry_factory(notifying(endpoint(url, timeout="5s")))
        with server.client() as client:
            client.push_image("notify/warm")
        time.sleep(0.5)  # the sender is now waiting on the black hole
        elapsed = _timed_pushes(server, "notify/hole", 10)
    # Each of the 10 rounds would wait 5 s if a push waited for delivery.
    assert elapsed < max(3 * baseline, baseline + 2.0), (elapsed, baseline)
