"""The database or the object store out of reach, at start-up or mid-run: every request that
needs it gets 503 ``UNAVAILABLE`` in the JSON error format with ``Retry-After`` and leaves a
log line; once the store is back the same processes serve again, and nothing a refused
request began is half there (an upload resumes where it was, a manifest is in or not).

The stores keep running: a TCP forwarder between them and the registry is cut and restored,
or stalled (connections open, nothing forwarded) and let flow again.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from sqlalchemy.engine import make_url

from storage.s3server import S3Server, s3_server
from tcp_proxy import TcpProxy

from .conftest import DISTRIBUTION, RegistryServer, ServerFactory
from .registry import (
    OCI_CONFIG,
    OCI_LAYER,
    RegistryClient,
    assert_error,
    descriptor,
    digest_of,
    image_manifest,
)
from .test_ops import everywhere, get, wait_until

pytestmark = pytest.mark.skipif(DISTRIBUTION, reason="Dockyard's PostgreSQL and 503s")

DATABASE_DOWN = "metadata database unavailable"
STORAGE_DOWN = "blob storage unavailable"


def assert_unavailable(response: httpx.Response, message: str) -> None:
    errors = assert_error(response, 503, "UNAVAILABLE")
    if errors:  # a HEAD has no body
        assert errors[0]["message"] == message
    assert response.headers["Retry-After"] == "5"


@pytest.fixture
def database() -> Iterator[tuple[str, TcpProxy]]:
    """A fresh PostgreSQL database reached through a forwarder: its URL and the forwarder."""
    from metadata.test_postgres import fresh_database

    with fresh_database() as url:
        parsed = make_url(url)
        with TcpProxy(parsed.host or "127.0.0.1", parsed.port or 5432) as proxy:
            through = parsed.set(host="127.0.0.1", port=proxy.port)
            yield through.render_as_string(hide_password=False), proxy


@pytest.fixture(scope="module")
def s3() -> Iterator[S3Server]:
    with s3_server() as server:
        yield server


def _image(client: RegistryClient, repo: str) -> bytes:
    """Push a config and a layer; the manifest naming them, not pushed."""
    config = json.dumps({"nonce": uuid.uuid4().hex}).encode()
    layer = os.urandom(2048)
    client.push_blob(repo, config)
    client.push_blob(repo, layer)
    return image_manifest(descriptor(OCI_CONFIG, config), [descriptor(OCI_LAYER, layer)])


def _patch(client: RegistryClient, location: str, chunk: bytes, offset: int) -> str:
    response = client.patch_chunk(location, chunk, offset)
    assert response.status_code == 202, response.text
    return response.headers["Location"]


def test_database_outage_mid_run(
    database: tuple[str, TcpProxy], registry_factory: ServerFactory
) -> None:
    url, proxy = database
    server = registry_factory({"database": {"url": url}})
    repo = "outage/db"
    with server.client() as client:
        first = _image(client, repo)
        client.push_manifest(repo, "v1", first)
        second = _image(client, repo)
        parts = [os.urandom(4096), os.urandom(4096)]
        location = _patch(client, client.start_upload(repo).headers["Location"], parts[0], 0)

        proxy.cut()
        assert_unavailable(client.get_manifest(repo, "v1"), DATABASE_DOWN)
        assert_unavailable(client.put_manifest(repo, "v2", second), DATABASE_DOWN)
        assert_unavailable(client.patch_chunk(location, parts[1], 4096), DATABASE_DOWN)
        assert_unavailable(client.request("GET", "/v2/_catalog"), DATABASE_DOWN)
        assert_unavailable(client.request("GET", f"/v2/{repo}/tags/list"), DATABASE_DOWN)
        config_digest = json.loads(first)["config"]["digest"]
        assert_unavailable(
            client.request("HEAD", f"/v2/{repo}/blobs/{config_digest}"), DATABASE_DOWN
        )
        assert f"{DATABASE_DOWN}:" in server.stderr()

        proxy.restore()
        # The same processes serve again: no restart.
        response = client.get_manifest(repo, "v1")
        assert response.status_code == 200
        assert response.content == first
        # The manifest refused during the outage is not half there.
        assert_error(client.get_manifest(repo, "v2"), 404, "MANIFEST_UNKNOWN")
        assert client.request("GET", f"/v2/{repo}/tags/list").json()["tags"] == ["v1"]
        client.push_manifest(repo, "v2", second)
        # The upload goes on from where it stood before the outage.
        status = client.request("GET", client.resolve(location))
        assert status.status_code == 204
        assert status.headers["Range"] == "0-4095"
        location = _patch(client, location, parts[1], 4096)
        data = b"".join(parts)
        response = client.request("PUT", client.resolve(location, digest=digest_of(data)))
        assert response.status_code == 201, response.text
        assert client.get_blob(repo, digest_of(data)).content == data


def test_database_that_stops_answering(
    database: tuple[str, TcpProxy], registry_factory: ServerFactory
) -> None:
    """A partition, or a frozen host: the connections stay open and nothing comes back.
    Requests get 503 once the URL's timeouts run out, not when TCP gives up."""
    url, proxy = database
    server = registry_factory({"database": {"url": f"{url}?timeout=1&command_timeout=1"}})
    repo = "outage/stalled"
    with server.client() as client:
        first = _image(client, repo)
        client.push_manifest(repo, "v1", first)
        second = _image(client, repo)

        proxy.stall()
        started = time.monotonic()
        assert_unavailable(client.get_manifest(repo, "v1"), DATABASE_DOWN)
        assert_unavailable(client.put_manifest(repo, "v2", second), DATABASE_DOWN)
        assert time.monotonic() - started < 20
        assert f"{DATABASE_DOWN}: TimeoutError" in server.stderr()

        proxy.flow()
        assert client.get_manifest(repo, "v1").content == first
        assert client.request("GET", f"/v2/{repo}/tags/list").json()["tags"] == ["v1"]
        client.push_manifest(repo, "v2", second)
        assert client.get_manifest(repo, "v2").content == second


def test_database_out_of_reach_at_start(
    database: tuple[str, TcpProxy], registry_factory: ServerFactory
) -> None:
    url, proxy = database
    proxy.cut()
    server = registry_factory({"database": {"url": url}}, run=False)
    server.start(ready=(503,))
    assert_unavailable(get(server, "/v2/"), DATABASE_DOWN)
    assert_unavailable(get(server, "/v2/_catalog"), DATABASE_DOWN)
    assert get(server, "/healthz").status_code == 200
    assert get(server, "/readyz").status_code == 503
    assert "database.url: unavailable" in server.stderr()

    proxy.restore()
    # Every worker migrates the schema once the database answers, and serves.
    wait_until(everywhere(server, "/v2/", 200), timeout=30.0)
    with server.client() as client:
        manifest = _image(client, "outage/start")
        digest = client.push_manifest("outage/start", "v1", manifest)
        assert client.get_manifest("outage/start", digest).content == manifest
    assert "the schema is up to date" in server.stderr()


def _s3_registry(
    s3: S3Server,
    proxy: TcpProxy,
    tmp_path: Path,
    registry_factory: ServerFactory,
    **keys: object,
) -> RegistryServer:
    """A registry on a fresh bucket reached through ``proxy``, with ``keys`` in ``storage.s3``."""
    bucket = f"dockyard-{uuid.uuid4().hex[:12]}"
    s3.client().create_bucket(Bucket=bucket)
    section = s3.section(bucket, regionendpoint=f"http://127.0.0.1:{proxy.port}")
    return registry_factory(
        {
            "storage": {
                "filesystem": None,
                "s3": {**section, "chunksize": 5 << 20, **keys},
                "redirect": {"disable": True},
            },
            "database": {"url": f"sqlite:///{tmp_path / 'meta.db'}"},
        }
    )


@pytest.mark.parametrize("fault", ["cut", "stall"])
def test_object_store_outage_mid_run(
    fault: str, s3: S3Server, tmp_path: Path, registry_factory: ServerFactory
) -> None:
    """``cut``: connections dropped and refused. ``stall``: they stay open and nothing comes
    back (a partition, a frozen host), so each request gets 503 once its tries have each
    waited ``readtimeout``; what those requests sent arrives late, once the store flows
    again, and changes nothing committed."""
    endpoint = urlsplit(s3.endpoint)
    with TcpProxy(endpoint.hostname or "127.0.0.1", endpoint.port or 80) as proxy:
        down, back = (proxy.cut, proxy.restore) if fault == "cut" else (proxy.stall, proxy.flow)
        server = _s3_registry(
            s3, proxy, tmp_path, registry_factory, dialtimeout="1s", readtimeout="1s"
        )
        repo = f"outage/s3-{fault}"
        large, small = os.urandom(3 << 20), os.urandom(1024)
        with server.client() as client:
            large_digest = client.push_blob(repo, large)
            small_digest = client.push_blob(repo, small)
            parts = [os.urandom(4096), os.urandom(4096), os.urandom(4096)]
            location = _patch(client, client.start_upload(repo).headers["Location"], parts[0], 0)

            down()
            started = time.monotonic()
            # Reads of either size (streamed, or one request) fail before the first byte.
            assert_unavailable(client.get_blob(repo, large_digest), STORAGE_DOWN)
            assert_unavailable(client.get_blob(repo, small_digest), STORAGE_DOWN)
            assert_unavailable(client.patch_chunk(location, parts[1], 4096), STORAGE_DOWN)
            # Three tries of a second at most each, and their backoff: not TCP's minutes.
            assert time.monotonic() - started < 45
            # What the database alone answers still works.
            assert client.blob_exists(repo, small_digest)
            assert f"{STORAGE_DOWN}:" in server.stderr()

            back()
            assert client.get_blob(repo, large_digest).content == large
            assert client.get_blob(repo, small_digest).content == small
            status = client.request("GET", client.resolve(location))
            assert status.headers["Range"] == "0-4095"
            # Other bytes than the refused chunk's: a late write of that one would show.
            location = _patch(client, location, parts[2], 4096)
            data = parts[0] + parts[2]
            response = client.request("PUT", client.resolve(location, digest=digest_of(data)))
            assert response.status_code == 201, response.text
            assert client.get_blob(repo, digest_of(data)).content == data


def test_object_store_out_of_reach_at_start(
    s3: S3Server, tmp_path: Path, registry_factory: ServerFactory
) -> None:
    endpoint = urlsplit(s3.endpoint)
    with TcpProxy(endpoint.hostname or "127.0.0.1", endpoint.port or 80) as proxy:
        proxy.cut()
        server = _s3_registry(s3, proxy, tmp_path, registry_factory)
        assert "storage.s3: unavailable" in server.stderr()
        data = os.urandom(1024)
        with server.client() as client:
            response = client.request("POST", "/v2/outage/start/blobs/uploads/")
            location = response.headers["Location"]
            response = client.request(
                "PUT", client.resolve(location, digest=digest_of(data)), content=data
            )
            assert_unavailable(response, STORAGE_DOWN)
            proxy.restore()
            assert client.push_blob("outage/start", data) == digest_of(data)
            assert client.get_blob("outage/start", digest_of(data)).content == data
