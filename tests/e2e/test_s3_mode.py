"""The registry on S3-compatible object storage: pushes land in the bucket, pulls redirect to
presigned URLs (or stream when redirects are off)."""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from e2e.conftest import ServerFactory
from storage.s3server import S3Server, s3_server


@pytest.fixture(scope="module")
def s3() -> Iterator[S3Server]:
    with s3_server() as server:
        yield server


def _s3_config(s3: S3Server, tmp_path: Path, **storage: Any) -> dict[str, Any]:
    bucket = f"dockyard-{uuid.uuid4().hex[:12]}"
    s3.client().create_bucket(Bucket=bucket)
    return {
        "version": 0.1,
        "storage": {
            "filesystem": None,
            "s3": s3.section(bucket, rootdirectory="/registry", chunksize=5 << 20),
            "delete": {"enabled": True},
            **storage,
        },
        "database": {"url": f"sqlite:///{tmp_path / 'meta.db'}"},
        "bucket": bucket,
    }


def _start(factory: ServerFactory, config: dict[str, Any]) -> Any:
    config = dict(config)
    config.pop("bucket")
    return factory(config)


def test_push_pull_with_presigned_redirects(
    s3: S3Server, tmp_path: Path, registry_factory: ServerFactory
) -> None:
    config = _s3_config(s3, tmp_path)
    bucket = config["bucket"]
    server = _start(registry_factory, config)
    data = os.urandom(12 << 20)
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    with server.client() as client:
        assert client.push_blob_chunked("s3/app", data, chunk_size=5 << 20) == digest
        head = client.request("HEAD", f"/v2/s3/app/blobs/{digest}")
        assert head.status_code == 200
        assert head.headers["Content-Length"] == str(len(data))
        assert head.headers["Cache-Control"] == "max-age=31536000"
        got = client.request("GET", f"/v2/s3/app/blobs/{digest}")
        assert got.status_code == 307
        assert "cache-control" not in got.headers  # the presigned URL expires; the blob does not
        presigned = got.headers["Location"]
        assert bucket in presigned
        fetched = httpx.get(presigned, timeout=60)
        assert fetched.content == data
        # Typed as a blob the registry streams itself (S3 would say binary/octet-stream).
        assert fetched.headers["Content-Type"] == "application/octet-stream"
    keys = [
        item["Key"]
        for item in s3.client().list_objects_v2(Bucket=bucket, Prefix="registry/")["Contents"]
    ]
    assert f"registry/blobs/sha256/{digest[7:9]}/{digest[7:]}/data" in keys
    assert not [key for key in keys if "/uploads/" in key]


def test_redirect_disabled_streams_the_bytes(
    s3: S3Server, tmp_path: Path, registry_factory: ServerFactory
) -> None:
    config = _s3_config(s3, tmp_path, redirect={"disable": True})
    server = _start(registry_factory, config)
    data = os.urandom(3 << 20)
    with server.client() as client:
        digest = client.push_blob("s3/plain", data)
        got = client.request("GET", f"/v2/s3/plain/blobs/{digest}")
        assert got.status_code == 200
        assert got.content == data
        assert got.headers["Content-Type"] == "application/octet-stream"
        assert got.headers["Cache-Control"] == "max-age=31536000"  # the bytes never change
        ranged = client.request(
            "GET", f"/v2/s3/plain/blobs/{digest}", headers={"Range": "bytes=10-19"}
        )
        assert ranged.status_code == 206
        assert ranged.content == data[10:20]


def test_concurrent_pulls_of_a_blob_share_reads_from_the_bucket(
    s3: S3Server,
    tmp_path: Path,
    registry_factory: ServerFactory,
    unused_tcp_port_factory: Callable[[], int],
) -> None:
    debug = f"127.0.0.1:{unused_tcp_port_factory()}"
    config = _s3_config(s3, tmp_path, redirect={"disable": True})
    config["http"] = {"workers": 1, "debug": {"addr": debug, "prometheus": {"enabled": True}}}
    server = _start(registry_factory, config)
    data = os.urandom(24 << 20)
    with server.client() as client:
        digest = client.push_blob("s3/hot", data)

    def pull(_: int) -> bytes:
        with server.client() as client:
            response = client.request("GET", f"/v2/s3/hot/blobs/{digest}")
            assert response.status_code == 200
            return bytes(response.content)

    before = _bytes_read(f"http://{debug}/metrics")
    with ThreadPoolExecutor(8) as pool:
        bodies = list(pool.map(pull, range(8)))
    read = _bytes_read(f"http://{debug}/metrics") - before
    assert bodies == [data] * 8
    # Eight responses, fewer reads from the bucket: the pulls that overlapped shared one.
    assert len(data) <= read < 8 * len(data)


def _bytes_read(url: str) -> float:
    response = httpx.get(url, timeout=10.0)
    assert response.status_code == 200
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            if sample.name == "dockyard_storage_bytes_total" and sample.labels == {
                "driver": "s3",
                "direction": "read",
            }:
                return sample.value
    return 0.0
