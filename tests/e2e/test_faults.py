"""Failures from outside: dropped clients, a killed server, races between clients, workers."""

from __future__ import annotations

import hashlib
import os
import re
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from .conftest import RegistryServer, ServerFactory
from .registry import (
    OCI_CONFIG,
    OCI_LAYER,
    RegistryClient,
    assert_error,
    descriptor,
    digest_of,
    image_manifest,
    upload_end,
)

MIB = 1024 * 1024
_BLOB_PATH = re.compile(r"blobs/(?P<alg>sha256|sha512)/[0-9a-f]{2}/(?P<hex>[0-9a-f]+)/data$")


def assert_stored_blobs_intact(root: Path) -> int:
    """Every blob file under a digest path holds exactly the bytes of that digest."""
    count = 0
    for path in root.rglob("data"):
        match = _BLOB_PATH.search(path.as_posix())
        if match is None:
            continue
        digest = hashlib.new(match["alg"])
        with path.open("rb") as f:
            while block := f.read(MIB):
                digest.update(block)
        assert digest.hexdigest() == match["hex"], f"corrupt blob at {path}"
        count += 1
    return count


def _partial_patch(url: httpx.URL, data: bytes, sent: int) -> None:
    """Send a PATCH that promises ``len(data)`` bytes, deliver ``sent`` of them, hang up."""
    assert url.host
    assert url.port
    head = (
        f"PATCH {url.raw_path.decode()} HTTP/1.1\r\nHost: {url.host}:{url.port}\r\n"
        f"Content-Type: application/octet-stream\r\nContent-Length: {len(data)}\r\n"
        f"Content-Range: 0-{len(data) - 1}\r\n\r\n"
    ).encode()
    with socket.create_connection((url.host, url.port), timeout=10) as sock:
        sock.sendall(head + data[:sent])
        time.sleep(0.3)


def _settled_status(client: RegistryClient, url: httpx.URL) -> httpx.Response:
    """The upload status once the server has finished with the dropped request."""
    previous = None
    for _ in range(20):
        response = client.request("GET", url)
        current = (response.status_code, response.headers.get("Range"))
        if current == previous:
            return response
        previous = current
        time.sleep(0.3)
    return response


def _resume(client: RegistryClient, location: str, data: bytes, end: int) -> httpx.Response:
    """Continue an upload from the server's Range; ``0-0`` may mean no byte or one byte."""
    offset = end + 1 if end > 0 else 0
    for _ in range(2):
        response = client.patch_chunk(location, data[offset:], offset)
        if response.status_code != 416:
            return response
        offset = upload_end(response.headers["Range"]) + 1
    return response


def test_client_disconnect_mid_patch(client: RegistryClient, repo: str) -> None:
    data = os.urandom(2 * MIB)
    half = MIB
    start = client.start_upload(repo)
    url = client.resolve(start.headers["Location"])
    _partial_patch(url, data, half)

    status = _settled_status(client, url)
    assert not client.blob_exists(repo, digest_of(data))
    assert not client.blob_exists(repo, digest_of(data[:half]))
    if status.status_code == 404:
        assert_error(status, 404, "BLOB_UPLOAD_UNKNOWN")
        # Cleanly failed: a new upload of the same bytes works.
        assert client.push_blob(repo, data) == digest_of(data)
    else:
        assert status.status_code == 204, status.text
        end = upload_end(status.headers["Range"])
        assert end < len(data) - 1
        resumed = _resume(client, status.headers["Location"], data, end)
        assert resumed.status_code == 202, resumed.text
        done = client.request(
            "PUT", client.resolve(resumed.headers["Location"], digest=digest_of(data))
        )
        assert done.status_code == 201, done.text
    assert client.get_blob(repo, digest_of(data)).content == data


def test_client_disconnect_mid_monolithic_put(client: RegistryClient, repo: str) -> None:
    data = os.urandom(MIB)
    url = client.resolve(client.start_upload(repo).headers["Location"], digest=digest_of(data))
    assert url.host
    assert url.port
    head = (
        f"PUT {url.raw_path.decode()} HTTP/1.1\r\nHost: {url.host}:{url.port}\r\n"
        f"Content-Type: application/octet-stream\r\nContent-Length: {len(data)}\r\n\r\n"
    ).encode()
    with socket.create_connection((url.host, url.port), timeout=10) as sock:
        sock.sendall(head + data[: len(data) // 3])
        time.sleep(0.3)
    time.sleep(0.3)
    assert not client.blob_exists(repo, digest_of(data))
    assert not client.blob_exists(repo, digest_of(data[: len(data) // 3]))
    assert client.request("GET", "/v2/").status_code == 200


class _Stalled:
    """A request body that sends ``before`` bytes, signals, then trickles until released."""

    def __init__(self, data: bytes, before: int) -> None:
        self.data = data
        self.before = before
        self.started = threading.Event()
        self.release = threading.Event()

    def __iter__(self) -> Iterator[bytes]:
        step = 64 * 1024
        for offset in range(0, self.before, step):
            yield self.data[offset : min(offset + step, self.before)]
        self.started.set()
        # Never finishes before the server dies; the timeout only bounds a broken test.
        self.release.wait(timeout=60)
        yield self.data[self.before :]


@pytest.mark.slow
def test_sigkill_during_concurrent_pushes(registry_factory: ServerFactory) -> None:
    server = registry_factory()
    repo = "faults/kill"
    finished: dict[str, bytes] = {}
    interrupted: dict[str, bytes] = {}
    lock = threading.Lock()
    errors: list[BaseException] = []

    def complete_push(data: bytes, chunked: bool) -> None:
        try:
            with server.client() as c:
                digest = (
                    c.push_blob_chunked(repo, data, 256 * 1024)
                    if chunked
                    else c.push_blob(repo, data)
                )
            with lock:
                finished[digest] = data
        except BaseException as exc:
            errors.append(exc)

    def stalled_push(data: bytes, body: _Stalled, how: str) -> None:
        with lock:
            interrupted[digest_of(data)] = data
        try:
            with server.client() as c:
                start = c.start_upload(repo).headers["Location"]
                if how == "patch":
                    c.request("PATCH", c.resolve(start), content=body)
                else:
                    c.request("PUT", c.resolve(start, digest=digest_of(data)), content=body)
        except httpx.TransportError:
            pass  # expected: the server was killed mid-request
        except BaseException as exc:
            errors.append(exc)
        finally:
            body.started.set()

    # Pushes that complete, concurrently.
    threads = [
        threading.Thread(target=complete_push, args=(os.urandom(MIB + i), i % 2 == 0))
        for i in range(6)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors, errors
    assert len(finished) == 6

    with server.client() as c:
        config, layer = next(iter(finished.items())), list(finished.items())[1]
        manifest = image_manifest(
            descriptor(OCI_CONFIG, config[1]), [descriptor(OCI_LAYER, layer[1])]
        )
        c.push_manifest(repo, "before-kill", manifest)
        # A chunked session with data in it, left open.
        open_data = os.urandom(MIB)
        open_location = c.patch_chunk(
            c.start_upload(repo).headers["Location"], open_data[:300_000], 0
        )
        assert open_location.status_code == 202
        open_url = c.resolve(open_location.headers["Location"])
        interrupted[digest_of(open_data)] = open_data

    # Pushes caught mid-body by the kill.
    stalled = []
    for i, how in enumerate(["patch", "put", "patch", "put"]):
        data = os.urandom(3 * MIB + i)
        body = _Stalled(data, MIB + 4096 * i)
        thread = threading.Thread(target=stalled_push, args=(data, body, how))
        thread.start()
        stalled.append((thread, body))
    for _, body in stalled:
        assert body.started.wait(timeout=30)
    time.sleep(0.2)  # let the server write what it has received
    server.kill()
    for thread, body in stalled:
        body.release.set()
        thread.join(timeout=30)
    assert not errors, errors

    server.start()
    with server.client() as c:
        for digest, data in finished.items():
            response = c.get_blob(repo, digest)
            assert response.status_code == 200
            assert digest_of(response.content) == digest
            assert response.content == data
        assert c.get_manifest(repo, "before-kill").content == manifest
        for digest, data in interrupted.items():
            assert not c.blob_exists(repo, digest)
            assert not c.blob_exists(repo, digest_of(data[:MIB]))
        assert c.request("GET", open_url).status_code in (204, 404)
        assert assert_stored_blobs_intact(server.root) >= len(finished)

        # Every interrupted push can be made again from the start.
        for digest, data in interrupted.items():
            assert c.push_blob_chunked(repo, data, MIB) == digest
            assert c.get_blob(repo, digest).content == data
    assert assert_stored_blobs_intact(server.root) >= len(finished) + len(interrupted)


@pytest.mark.slow
def test_twenty_clients_push_the_same_blob_and_tag(registry_factory: ServerFactory) -> None:
    server = registry_factory()
    repo = "faults/race"
    shared = os.urandom(512 * 1024)
    clients = 20
    barrier = threading.Barrier(clients)
    manifests: dict[int, bytes] = {}
    configs: dict[int, bytes] = {}
    statuses: dict[int, list[int]] = {}
    errors: list[BaseException] = []

    def push(i: int) -> None:
        try:
            with server.client() as c:
                barrier.wait(timeout=30)
                if i % 2:
                    c.push_blob(repo, shared)
                else:
                    c.push_blob_chunked(repo, shared, 100 * 1024)
                config = f'{{"client": {i}}}'.encode()
                c.push_blob(repo, config)
                body = image_manifest(
                    descriptor(OCI_CONFIG, config), [descriptor(OCI_LAYER, shared)]
                )
                configs[i], manifests[i] = config, body
                barrier.wait(timeout=30)
                put = c.put_manifest(repo, "race", body)
                statuses[i] = [put.status_code]
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=push, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    assert all(s == [201] for s in statuses.values())
    assert len(statuses) == clients

    with server.client() as c:
        got = c.get_manifest(repo, "race")
        assert got.status_code == 200
        assert got.content in manifests.values()
        assert got.headers["Docker-Content-Digest"] == digest_of(got.content)
        for body in manifests.values():
            assert c.get_manifest(repo, digest_of(body)).content == body
        assert c.get_blob(repo, digest_of(shared)).content == shared
        for config in configs.values():
            assert c.get_blob(repo, digest_of(config)).content == config
        assert c.request("GET", f"/v2/{repo}/tags/list").json()["tags"] == ["race"]
    assert assert_stored_blobs_intact(server.root) >= clients + 1


def test_chunked_upload_across_two_workers(registry_factory: ServerFactory) -> None:
    """Each request opens a new connection, so consecutive PATCHes land on either worker."""
    server: RegistryServer = registry_factory({"http": {"workers": 2}})
    data = os.urandom(400 * 1024)
    chunk = 16 * 1024
    with server.client(keepalive=False) as c:
        for _ in range(2):
            location = c.start_upload("faults/workers").headers["Location"]
            for offset in range(0, len(data), chunk):
                response = c.patch_chunk(location, data[offset : offset + chunk], offset)
                assert response.status_code == 202, response.text
                assert upload_end(response.headers["Range"]) == min(offset + chunk, len(data)) - 1
                location = response.headers["Location"]
                status = c.request("GET", c.resolve(location))
                assert status.status_code == 204
                assert upload_end(status.headers["Range"]) == min(offset + chunk, len(data)) - 1
            done = c.request("PUT", c.resolve(location, digest=digest_of(data)))
            assert done.status_code == 201, done.text
            assert done.headers["Docker-Content-Digest"] == digest_of(data)
            assert c.get_blob("faults/workers", digest_of(data)).content == data
            data = os.urandom(len(data))
