"""Configuration keys observed from outside: each test runs a server of its own."""

from __future__ import annotations

import ssl
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from certificates import self_signed

from .conftest import RegistryServer, ServerFactory
from .registry import EMPTY_DIGEST, EMPTY_MEDIA_TYPE, assert_error, digest_of, image_manifest

READ_ONLY = {"storage": {"maintenance": {"readonly": {"enabled": True}}}}


def test_delete_disabled_by_default(registry_factory: ServerFactory) -> None:
    server = registry_factory({"storage": {"delete": None}})
    with server.client() as client:
        image = client.push_image("cfg/nodelete", "t")
        blob = next(iter(image.blobs))
        for path in (
            f"/v2/cfg/nodelete/blobs/{blob}",
            f"/v2/cfg/nodelete/manifests/{image.digest}",
            "/v2/cfg/nodelete/manifests/t",
        ):
            assert_error(client.request("DELETE", path), 405, "UNSUPPORTED")
        assert client.get_manifest("cfg/nodelete", "t").content == image.body
        assert client.get_blob("cfg/nodelete", blob).status_code == 200
        # Cancelling an upload is not a deletion of content.
        location = client.start_upload("cfg/nodelete").headers["Location"]
        assert client.request("DELETE", client.resolve(location)).status_code == 204


def test_delete_explicitly_disabled(registry_factory: ServerFactory) -> None:
    server = registry_factory({"storage": {"delete": {"enabled": False}}})
    with server.client() as client:
        blob = client.push_blob("cfg/off", b"kept")
        assert_error(client.request("DELETE", f"/v2/cfg/off/blobs/{blob}"), 405, "UNSUPPORTED")
        assert client.get_blob("cfg/off", blob).content == b"kept"


def test_read_only_mode(registry_factory: ServerFactory) -> None:
    seed = registry_factory()
    with seed.client() as client:
        image = client.push_image("cfg/ro", "t")
        pending = client.start_upload("cfg/ro").headers["Location"]
        pending_path = client.resolve(pending).raw_path.decode()
    seed.stop()

    server = registry_factory(READ_ONLY, root=seed.root)
    with server.client() as client:
        assert client.request("GET", "/v2/").status_code == 200
        assert client.get_manifest("cfg/ro", "t").content == image.body
        assert client.get_manifest("cfg/ro", image.digest).status_code == 200
        for digest, data in image.blobs.items():
            assert client.get_blob("cfg/ro", digest).content == data
        assert client.request("GET", "/v2/cfg/ro/tags/list").json()["tags"] == ["t"]
        assert client.request("GET", "/v2/_catalog").json()["repositories"] == ["cfg/ro"]

        blob = next(iter(image.blobs))
        digest = digest_of(b"new")
        refused: list[tuple[str, str, dict[str, Any]]] = [
            ("POST", "/v2/cfg/ro/blobs/uploads/", {}),
            (
                "POST",
                "/v2/cfg/ro/blobs/uploads/",
                {"params": {"digest": digest}, "content": b"new"},
            ),
            ("POST", "/v2/cfg/other/blobs/uploads/", {"params": {"mount": blob, "from": "cfg/ro"}}),
            ("PATCH", pending_path, {"content": b"new"}),
            ("PUT", pending_path, {"params": {"digest": digest}, "content": b"new"}),
            ("DELETE", pending_path, {}),
            ("PUT", "/v2/cfg/ro/manifests/t2", {"content": image.body}),
            ("DELETE", "/v2/cfg/ro/manifests/t", {}),
            ("DELETE", f"/v2/cfg/ro/manifests/{image.digest}", {}),
            ("DELETE", f"/v2/cfg/ro/blobs/{blob}", {}),
        ]
        for method, path, kwargs in refused:
            assert_error(client.request(method, path, **kwargs), 405, "UNSUPPORTED")
        assert client.get_manifest("cfg/ro", "t").content == image.body
        assert client.get_manifest("cfg/ro", "t2").status_code == 404
        assert not client.blob_exists("cfg/ro", digest)


def test_http_headers_are_added(registry_factory: ServerFactory) -> None:
    server = registry_factory(
        {"http": {"headers": {"X-Content-Type-Options": ["nosniff"], "X-E2e-Marker": ["one"]}}}
    )
    with server.client() as client:
        image = client.push_image("cfg/headers", "t")
        responses = [
            client.request("GET", "/v2/"),
            client.get_manifest("cfg/headers", "t"),
            client.get_blob("cfg/headers", next(iter(image.blobs))),
            client.get_manifest("cfg/headers", "missing"),
        ]
        for response in responses:
            assert response.headers["X-Content-Type-Options"] == "nosniff"
            assert response.headers["X-E2e-Marker"] == "one"


def test_registry_http_addr_env_overrides_config(
    registry_factory: ServerFactory, unused_tcp_port_factory: Callable[[], int]
) -> None:
    port = unused_tcp_port_factory()
    server = registry_factory(env={"REGISTRY_HTTP_ADDR": f"127.0.0.1:{port}"})
    configured = server.config["http"]["addr"]
    assert server.url == f"http://127.0.0.1:{port}"
    with server.client() as client:
        assert client.request("GET", "/v2/").status_code == 200
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://{configured}/v2/", timeout=2)


def _upload_paths(root: Path, uuid: str) -> list[Path]:
    return [p for p in root.rglob("*") if uuid in p.name]


@pytest.mark.slow
def test_upload_purging_removes_stale_sessions(registry_factory: ServerFactory) -> None:
    server = registry_factory(
        {
            "storage": {
                "maintenance": {
                    "uploadpurging": {
                        "enabled": True,
                        "age": "2s",
                        "interval": "1s",
                        "dryrun": False,
                    }
                }
            }
        }
    )
    with server.client() as client:
        kept = client.push_blob("cfg/purge", b"finished blobs stay")
        start = client.start_upload("cfg/purge")
        uuid = start.headers["Docker-Upload-UUID"]
        location = client.patch_chunk(start.headers["Location"], b"stale bytes", 0).headers[
            "Location"
        ]
        assert client.request("GET", client.resolve(location)).status_code == 204
        assert _upload_paths(server.root, uuid), "the session's data should be on disk"

        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if client.request("GET", client.resolve(location)).status_code == 404:
                break
            time.sleep(0.5)
        assert_error(client.request("GET", client.resolve(location)), 404, "BLOB_UPLOAD_UNKNOWN")
        assert not _upload_paths(server.root, uuid)
        assert client.get_blob("cfg/purge", kept).content == b"finished blobs stay"


def test_tls(registry_factory: ServerFactory, tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    server = registry_factory({"http": {"tls": {"certificate": str(cert), "key": str(key)}}})
    assert server.url.startswith("https://")
    context = ssl.create_default_context(cafile=str(cert))
    with server.client(verify=context) as client:
        assert client.request("GET", "/v2/").status_code == 200
        image = client.push_image("cfg/tls", "t")
        assert client.get_manifest("cfg/tls", "t").content == image.body
    # Plain HTTP is not served on the TLS port: refused outright or answered 400.
    try:
        plain = httpx.get(server.url.replace("https://", "http://") + "/v2/", timeout=3)
    except httpx.TransportError:
        pass
    else:
        assert plain.status_code == 400
    # Nor is a certificate the client does not trust accepted.
    with pytest.raises(httpx.ConnectError):
        httpx.get(server.url + "/v2/", timeout=3)


def test_http_host_makes_locations_absolute(registry_factory: ServerFactory) -> None:
    host = "https://registry.example.test:8443"
    server = registry_factory({"http": {"host": host}})
    with server.client() as client:
        location = client.start_upload("cfg/host").headers["Location"]
        assert location.startswith(f"{host}/v2/cfg/host/blobs/uploads/")
        # The path and query of the Location still work against the real listener.
        here = httpx.URL(client.url + httpx.URL(location).raw_path.decode())
        done = client.request(
            "PUT", here.copy_merge_params({"digest": EMPTY_DIGEST}), content=b"{}"
        )
        assert done.status_code == 201
        assert done.headers["Location"] == f"{host}/v2/cfg/host/blobs/{EMPTY_DIGEST}"
        body = image_manifest({"mediaType": EMPTY_MEDIA_TYPE, "digest": EMPTY_DIGEST, "size": 2})
        put = client.put_manifest("cfg/host", "t", body)
        assert put.status_code == 201
        assert put.headers["Location"].startswith(f"{host}/v2/cfg/host/manifests/")


STOCK_CONFIG = {
    # The config.yml shipped in the registry:2 image.
    "version": 0.1,
    "log": {"fields": {"service": "registry"}},
    "storage": {
        "cache": {"blobdescriptor": "inmemory"},
        "filesystem": {"rootdirectory": "/var/lib/registry"},
    },
    "http": {"addr": ":5000", "headers": {"X-Content-Type-Options": ["nosniff"]}},
    "health": {"storagedriver": {"enabled": True, "interval": "10s", "threshold": 3}},
}


def test_stock_registry2_config(
    registry_factory: ServerFactory, tmp_path: Path, unused_tcp_port_factory: Callable[[], int]
) -> None:
    port = unused_tcp_port_factory()
    root = tmp_path / "stock-root"
    server = registry_factory(
        STOCK_CONFIG,
        replace=True,
        env={
            "REGISTRY_HTTP_ADDR": f"127.0.0.1:{port}",
            "REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY": str(root),
        },
    )
    assert server.root == root
    with server.client() as client:
        response = client.request("GET", "/v2/")
        assert response.status_code == 200
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        image = client.push_image("library/stock", "latest")
        assert client.get_manifest("library/stock", "latest").content == image.body
        # The stock config does not enable deletes.
        assert_error(
            client.request("DELETE", f"/v2/library/stock/manifests/{image.digest}"),
            405,
            "UNSUPPORTED",
        )
    assert any(root.iterdir()), "data must land under the overridden root"


def _server_output(server: RegistryServer) -> str:
    return server.stdout_path.read_text() + server.stderr_path.read_text()


def test_log_level_takes_effect(registry_factory: ServerFactory) -> None:
    chatty = registry_factory({"log": {"level": "info"}})
    with chatty.client() as client:
        assert client.request("GET", "/v2/").status_code == 200
    chatty.stop()
    assert "[INFO]" in _server_output(chatty)

    quiet = registry_factory({"log": {"level": "error", "accesslog": {"disabled": True}}})
    with quiet.client() as client:
        assert client.request("GET", "/v2/").status_code == 200
        assert client.request("GET", "/v2/nope/tags/list").status_code == 404
    quiet.stop()
    output = _server_output(quiet)
    assert "[INFO]" not in output
    assert "INFO:" not in output
    assert "GET /v2/" not in output


def test_storage_redirect_middleware(registry_factory: ServerFactory) -> None:
    base = "https://cdn.example.test/registry"
    server = registry_factory(
        {"middleware": {"storage": [{"name": "redirect", "options": {"baseurl": base}}]}}
    )
    with server.client() as client:
        digest = client.push_blob("cfg/cdn", b"served elsewhere")
        got = client.request("GET", f"/v2/cfg/cdn/blobs/{digest}")
        assert got.status_code == 307
        assert "cache-control" not in got.headers
        hexdigest = digest.split(":", 1)[1]
        assert got.headers["Location"] == f"{base}/blobs/sha256/{hexdigest[:2]}/{hexdigest}/data"
        head = client.request("HEAD", f"/v2/cfg/cdn/blobs/{digest}")
        assert head.status_code == 200
        assert head.headers["Content-Length"] == str(len(b"served elsewhere"))


def test_unsupported_storage_middleware_is_refused(tmp_path: Path) -> None:
    config = tmp_path / "config.yml"
    config.write_text(
        "version: 0.1\nmiddleware:\n  storage:\n    - name: cloudfront\n      options: {}\n"
    )
    done = subprocess.run(
        [sys.executable, "-m", "dockyard", "check-config", str(config)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2
    assert "middleware.storage[0].name" in done.stderr
