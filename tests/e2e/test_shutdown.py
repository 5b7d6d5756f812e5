"""SIGTERM stops a real ``dockyard serve`` (two workers) every time: at once when idle or while
its workers are still starting, after the uploads and downloads in flight when busy, and
within ``http.draintimeout`` (plus a few seconds) when a client stalls. "Stopped" means the
whole process group is gone, workers included."""

from __future__ import annotations

import functools
import hashlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator

import httpx
import pytest

from .conftest import DISTRIBUTION, RegistryServer, ServerFactory

pytestmark = pytest.mark.skipif(DISTRIBUTION, reason="Dockyard's own worker processes")

GRACE = 5.0
"""Seconds a stop may take beyond the drain itself."""


def wait_until(condition: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.02)


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def running(server: RegistryServer) -> subprocess.Popen[bytes]:
    assert server.process is not None
    return server.process


def assert_stops(process: subprocess.Popen[bytes], within: float) -> int:
    """The server exits, and every process of its group is gone, within ``within`` seconds."""
    try:
        code = process.wait(timeout=within)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"still running {within}s after SIGTERM") from None
    wait_until(lambda: not group_alive(process.pid), 2.0)
    return code


def wait_for_workers(server: RegistryServer) -> None:
    workers = server.config["http"]["workers"]
    wait_until(lambda: server.stderr().count("Started worker-") == workers, 30.0)


def _spawned(server: RegistryServer) -> bool:
    return "Spawning worker-2" in server.stderr()


def test_sigterm_while_the_workers_start_stops_the_server_every_time(
    registry_factory: ServerFactory,
) -> None:
    # A worker that was still loading the app when the stop came used to swallow SIGTERM
    # (it had inherited the parent's handler), and the parent then waited for it forever.
    for _ in range(2):
        server = registry_factory(run=False)
        server._wait_ready = lambda ready: None  # type: ignore[method-assign]
        server.start()
        process = running(server)
        wait_until(functools.partial(_spawned, server), 30.0)
        process.send_signal(signal.SIGTERM)
        assert_stops(process, GRACE)
        server.process = None


def test_sigterm_stops_an_idle_server_with_open_connections(
    registry_factory: ServerFactory,
) -> None:
    server = registry_factory()
    wait_for_workers(server)
    process = running(server)
    with httpx.Client(timeout=5.0) as kept_alive:
        for _ in range(4):  # keep-alive connections, left idle
            assert kept_alive.get(server.url + "/v2/").status_code == 200
        started = time.monotonic()
        process.send_signal(signal.SIGTERM)
        assert assert_stops(process, GRACE) == 0
    assert time.monotonic() - started < GRACE
    with pytest.raises(httpx.ConnectError):
        httpx.get(server.url + "/v2/", timeout=2.0)
    server.process = None


def _blob_path(server: RegistryServer, digest: str) -> str:
    hexdigest = digest.split(":")[1]
    return str(server.root / "blobs" / "sha256" / hexdigest[:2] / hexdigest / "data")


def test_an_upload_in_flight_completes_after_sigterm(registry_factory: ServerFactory) -> None:
    server = registry_factory({"http": {"draintimeout": "20s"}})
    wait_for_workers(server)
    process = running(server)
    chunks = [os.urandom(64 * 1024) for _ in range(16)]
    digest = "sha256:" + hashlib.sha256(b"".join(chunks)).hexdigest()
    signalled: list[float] = []

    def body() -> Iterator[bytes]:
        for index, chunk in enumerate(chunks):
            if index in (3, 6):  # a second SIGTERM while draining changes nothing
                signalled.append(time.monotonic())
                process.send_signal(signal.SIGTERM)
            time.sleep(0.1)
            yield chunk

    with server.client() as client:
        location = client.start_upload("shutdown/upload").headers["Location"]
        response = client.http.put(client.resolve(location, digest=digest), content=body())
    assert response.status_code == 201, response.text
    assert response.headers["Docker-Content-Digest"] == digest
    assert assert_stops(process, GRACE) == 0
    assert time.monotonic() - signalled[0] < 20.0
    with open(_blob_path(server, digest), "rb") as stored:
        assert hashlib.sha256(stored.read()).hexdigest() == digest.split(":")[1]


def test_a_download_in_flight_completes_after_sigterm(registry_factory: ServerFactory) -> None:
    server = registry_factory({"http": {"draintimeout": "20s"}})
    wait_for_workers(server)
    process = running(server)
    data = os.urandom(24 * 1024 * 1024)
    with server.client() as client:
        digest = client.push_blob("shutdown/download", data)
    received = hashlib.sha256()
    total = 0
    with (
        httpx.Client(timeout=10.0) as http,
        http.stream("GET", f"{server.url}/v2/shutdown/download/blobs/{digest}") as response,
    ):
        assert response.status_code == 200
        for index, chunk in enumerate(response.iter_bytes(1024 * 1024)):
            if index == 1:
                process.send_signal(signal.SIGTERM)
            received.update(chunk)
            total += len(chunk)
            time.sleep(0.1)  # a slow client: the rest is still to send when SIGTERM comes
    assert total == len(data)
    assert "sha256:" + received.hexdigest() == digest
    assert assert_stops(process, GRACE) == 0


def test_a_stalled_upload_is_cut_off_at_the_drain_timeout(
    registry_factory: ServerFactory,
) -> None:
    server = registry_factory({"http": {"draintimeout": "2s"}})
    wait_for_workers(server)
    process = running(server)
    with server.client() as client:
        location = client.start_upload("shutdown/stalled").headers["Location"]
    url = client.resolve(location, digest="sha256:" + "0" * 64)
    host, port = url.host, url.port
    assert port is not None
    target = url.raw_path.decode()
    # A client that announces a body it never finishes sending.
    with socket.create_connection((host, port), timeout=10.0) as stalled:
        stalled.sendall(
            f"PUT {target} HTTP/1.1\r\nHost: {host}:{port}\r\n"
            "Content-Type: application/octet-stream\r\nContent-Length: 10000000\r\n\r\n".encode()
            + b"x" * 100_000
        )
        time.sleep(0.5)
        started = time.monotonic()
        process.send_signal(signal.SIGTERM)
        assert_stops(process, 2.0 + GRACE)
    assert time.monotonic() - started < 2.0 + GRACE
