"""Operating a real server: health endpoints and checks, Prometheus metrics on the debug
server, logs, graceful shutdown, and the ``reporting`` section."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import bcrypt
import httpx
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from .conftest import DISTRIBUTION, RegistryServer, ServerFactory
from .registry import assert_error, digest_of

pytestmark = pytest.mark.skipif(DISTRIBUTION, reason="Dockyard's own operations endpoints")

PortFactory = Callable[[], int]
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def wait_until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.05)


def get(server: RegistryServer, path: str, **kwargs: Any) -> httpx.Response:
    return httpx.get(server.url + path, timeout=10.0, **kwargs)


def everywhere(server: RegistryServer, path: str, status: int) -> Callable[[], bool]:
    """Whether several requests in a row (on new connections, so reaching every worker, each
    of which runs its own checks) answer ``status``."""
    return lambda: all(get(server, path).status_code == status for _ in range(6))


def wait_for_workers(server: RegistryServer) -> None:
    """Until every worker has started (the server answers as soon as the first one has)."""
    workers = server.config["http"]["workers"]
    wait_until(lambda: server.stderr().count("Started worker-") == workers)


# Health ----------------------------------------------------------------------------------------
def test_health_endpoints_answer_without_auth(
    registry_factory: ServerFactory, tmp_path: Path, unused_tcp_port_factory: PortFactory
) -> None:
    debug = f"127.0.0.1:{unused_tcp_port_factory()}"
    server = registry_factory(
        {
            "auth": {"htpasswd": {"realm": "ops", "path": str(tmp_path / "htpasswd")}},
            "http": {"debug": {"addr": debug}},
        }
    )
    assert get(server, "/v2/").status_code == 401
    alive = get(server, "/healthz")
    assert (alive.status_code, alive.json()) == (200, {"status": "ok"})
    ready = get(server, "/readyz")
    assert (ready.status_code, ready.json()) == (200, {"database": "ok", "storage": "ok"})
    assert httpx.head(server.url + "/readyz").status_code == 200
    health = get(server, "/debug/health")
    assert (health.status_code, health.json()) == (200, {})
    on_debug = httpx.get(f"http://{debug}/debug/health", timeout=10.0)
    assert (on_debug.status_code, on_debug.json()) == (200, {})
    # No metrics unless http.debug.prometheus.enabled.
    assert httpx.get(f"http://{debug}/metrics", timeout=10.0).status_code == 404


def test_a_file_check_drains_the_node(registry_factory: ServerFactory, tmp_path: Path) -> None:
    drain = tmp_path / "drain"
    server = registry_factory({"health": {"file": [{"file": str(drain), "interval": "100ms"}]}})
    assert get(server, "/v2/").status_code == 200
    drain.touch()
    # Every worker runs the check: soon all of them turn requests away.
    wait_until(everywhere(server, "/v2/", 503))
    assert get(server, "/debug/health").json() == {str(drain): "file exists"}
    for _ in range(6):
        errors = assert_error(get(server, "/v2/"), 503, "UNAVAILABLE")
        assert errors[0]["detail"] == "health check failed: please see /debug/health"
    assert get(server, "/healthz").status_code == 200
    ready = get(server, "/readyz")
    assert ready.status_code == 503
    assert ready.json() == {"database": "ok", "storage": "ok", str(drain): "file exists"}
    drain.unlink()
    wait_until(everywhere(server, "/v2/", 200))
    assert get(server, "/debug/health").json() == {}
    assert get(server, "/readyz").status_code == 200


class _Downstream:
    """An HTTP service and a TCP port that health checks watch; both can be taken down."""

    def __init__(self) -> None:
        self.status = 200
        self.headers: list[dict[str, str]] = []
        downstream = self

        class Handler(BaseHTTPRequestHandler):
            def do_HEAD(self) -> None:
                downstream.headers.append(dict(self.headers))
                self.send_response(downstream.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.uri = f"http://127.0.0.1:{self.http.server_port}/ping"
        self.tcp = socket.create_server(("127.0.0.1", 0))
        self.tcp_addr = f"127.0.0.1:{self.tcp.getsockname()[1]}"
        threading.Thread(target=self.http.serve_forever, daemon=True).start()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        with contextlib.suppress(OSError):
            while True:
                conn, _ = self.tcp.accept()
                conn.close()

    def close(self) -> None:
        self.http.shutdown()
        self.http.server_close()
        self.tcp.close()


@pytest.fixture
def downstream() -> Iterator[_Downstream]:
    service = _Downstream()
    yield service
    service.close()


def test_http_and_tcp_checks_fail_after_their_threshold(
    registry_factory: ServerFactory, downstream: _Downstream
) -> None:
    server = registry_factory(
        {
            "health": {
                "http": [
                    {
                        "uri": downstream.uri,
                        "headers": {"X-Probe": ["dockyard"]},
                        "statuscode": 200,
                        "timeout": "2s",
                        "interval": "100ms",
                        "threshold": 3,
                    }
                ],
                "tcp": [
                    {"addr": downstream.tcp_addr, "timeout": "1s", "interval": "100ms"},
                ],
            }
        }
    )
    assert get(server, "/debug/health").json() == {}
    assert downstream.headers[0]["X-Probe"] == "dockyard"

    downstream.status = 500
    wait_until(everywhere(server, "/debug/health", 503))
    failing = get(server, "/debug/health").json()
    assert failing == {
        downstream.uri: f"{downstream.uri}: downstream service returned unexpected status: 500"
    }
    # Three failed runs in a row, by each worker, before it reported the failure.
    assert len(downstream.headers) >= 2 * 4

    downstream.status = 200
    wait_until(everywhere(server, "/debug/health", 200))
    downstream.tcp.close()
    wait_until(everywhere(server, "/debug/health", 503))
    failing = get(server, "/debug/health").json()
    assert list(failing) == [downstream.tcp_addr]
    assert failing[downstream.tcp_addr].startswith(f"{downstream.tcp_addr}: connection failed")


def test_storagedriver_check_and_readiness(registry_factory: ServerFactory, tmp_path: Path) -> None:
    root = tmp_path / "root"
    server = registry_factory(
        {
            "storage": {"filesystem": {"rootdirectory": str(root)}},
            "database": {"url": f"sqlite:///{tmp_path / 'meta.db'}"},
            "health": {"storagedriver": {"enabled": True, "interval": "100ms", "threshold": 2}},
        }
    )
    wait_for_workers(server)  # each has opened its driver on the root
    assert get(server, "/debug/health").json() == {}
    # The root now leads out of where the driver was told to keep its files.
    root.rename(tmp_path / "moved")
    (tmp_path / "elsewhere").mkdir()
    root.symlink_to(tmp_path / "elsewhere")
    wait_until(everywhere(server, "/debug/health", 503))
    assert list(get(server, "/debug/health").json()) == ["storagedriver_filesystem"]
    wait_until(lambda: all(get(server, "/readyz").json()["storage"] != "ok" for _ in range(6)))
    ready = get(server, "/readyz")
    assert ready.status_code == 503
    assert ready.json()["database"] == "ok"
    assert get(server, "/healthz").status_code == 200

    root.unlink()
    (tmp_path / "moved").rename(root)
    wait_until(everywhere(server, "/readyz", 200))
    assert get(server, "/debug/health").json() == {}


# Metrics ---------------------------------------------------------------------------------------
def scrape(url: str) -> Samples:
    response = httpx.get(url, timeout=10.0)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    samples: Samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def test_metrics_count_requests_across_workers(
    registry_factory: ServerFactory, unused_tcp_port_factory: PortFactory
) -> None:
    debug = f"127.0.0.1:{unused_tcp_port_factory()}"
    server = registry_factory(
        {"http": {"debug": {"addr": debug, "prometheus": {"enabled": True, "path": "/prom"}}}}
    )
    metrics = f"http://{debug}/prom"
    assert httpx.get(f"http://{debug}/metrics", timeout=10.0).status_code == 404
    before = scrape(metrics)
    blob = os.urandom(100_000)
    with server.client(keepalive=False) as client:  # new connections: both workers serve
        for _ in range(5):
            assert client.request("GET", "/v2/").status_code == 200
        digest = client.push_blob("ops/metrics", blob)
        assert client.get_blob("ops/metrics", digest).content == blob
        assert client.request("GET", "/v2/ops/metrics/manifests/missing").status_code == 404
        assert client.request("GET", "/no/such/endpoint").status_code == 404
    after = scrape(metrics)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    requests = "dockyard_http_requests_total"
    assert delta(requests, method="GET", route="/v2/", status="200") == 5
    uploads = "/v2/{name:path}/blobs/uploads/"
    assert delta(requests, method="POST", route=uploads, status="202") == 1
    upload = "/v2/{name:path}/blobs/uploads/{uuid}"
    assert delta(requests, method="PUT", route=upload, status="201") == 1
    blobs = "/v2/{name:path}/blobs/{digest}"
    assert delta(requests, method="GET", route=blobs, status="200") == 1
    manifests = "/v2/{name:path}/manifests/{reference}"
    assert delta(requests, method="GET", route=manifests, status="404") == 1
    assert delta(requests, method="GET", route="unmatched", status="404") == 1
    duration = "dockyard_http_request_duration_seconds_count"
    assert delta(duration, method="GET", route="/v2/") == 5
    assert delta("dockyard_http_request_bytes_total", method="PUT", route=upload) == len(blob)
    assert delta("dockyard_http_response_bytes_total", method="GET", route=blobs) == len(blob)
    assert delta("dockyard_http_response_bytes_total", method="GET", route="/v2/") == 5 * 2
    written = delta("dockyard_storage_bytes_total", driver="filesystem", direction="written")
    assert written == len(blob)
    storage = "dockyard_storage_operation_duration_seconds_count"
    assert delta(storage, driver="filesystem", operation="writer") == 1
    assert delta(storage, driver="filesystem", operation="commit") == 1
    assert delta(storage, driver="filesystem", operation="move") == 1
    metadata = "dockyard_metadata_operation_duration_seconds_count"
    assert delta(metadata, operation="complete_upload") == 1
    assert delta(metadata, operation="get_repository_blob") >= 1
    assert value(after, "dockyard_uploads_in_progress") == 0


def test_cache_hits_and_misses_are_scraped(
    registry_factory: ServerFactory, unused_tcp_port_factory: PortFactory, tmp_path: Path
) -> None:
    from cache.redisserver import private_redis

    from .registry import image_manifest

    debug = f"127.0.0.1:{unused_tcp_port_factory()}"
    with private_redis() as redis_server:
        server = registry_factory(
            {
                "redis": {"addr": redis_server.addr},
                "http": {"debug": {"addr": debug, "prometheus": {"enabled": True}}},
            }
        )
        metrics = f"http://{debug}/metrics"
        lookups = "dockyard_cache_lookups_total"
        with server.client(keepalive=False) as client:  # new connections: both workers serve
            config = b'{"cached": true}'
            config_digest = client.push_blob("ops/cached", config)
            media_type = "application/vnd.oci.image.config.v1+json"
            body = image_manifest(
                {"mediaType": media_type, "digest": config_digest, "size": len(config)}
            )
            assert client.put_manifest("ops/cached", "v1", body).status_code == 201
            # Set the cache up and fill it; then every read of the tag is a hit.
            for _ in range(2):
                assert client.request("GET", "/v2/ops/cached/manifests/v1").status_code == 200
            before = scrape(metrics)
            for _ in range(4):
                assert client.request("GET", "/v2/ops/cached/manifests/v1").status_code == 200
            after = scrape(metrics)

    def delta(**labels: str) -> float:
        return value(after, lookups, **labels) - value(before, lookups, **labels)

    assert value(before, lookups, cache="redis", kind="tag", result="miss") >= 1
    assert delta(cache="redis", kind="tag", result="hit") == 4
    assert delta(cache="redis", kind="tag", result="miss") == 0


def test_uploads_in_progress(
    registry_factory: ServerFactory, unused_tcp_port_factory: PortFactory
) -> None:
    debug = f"127.0.0.1:{unused_tcp_port_factory()}"
    server = registry_factory({"http": {"debug": {"addr": debug, "prometheus": {"enabled": True}}}})
    metrics = f"http://{debug}/metrics"
    release = threading.Event()
    started = threading.Event()
    blob = os.urandom(64 * 1024)

    def body() -> Iterator[bytes]:
        yield blob[:1024]
        started.set()
        release.wait(20)
        yield blob[1024:]

    with server.client() as client:
        location = client.start_upload("ops/inflight").headers["Location"]
        result: list[httpx.Response] = []
        url = client.resolve(location, digest=digest_of(blob))
        sender = threading.Thread(
            target=lambda: result.append(client.http.put(url, content=body()))
        )
        sender.start()
        started.wait(10)
        wait_until(lambda: value(scrape(metrics), "dockyard_uploads_in_progress") == 1)
        release.set()
        sender.join(20)
        assert result[0].status_code == 201
    assert value(scrape(metrics), "dockyard_uploads_in_progress") == 0


# Logs ------------------------------------------------------------------------------------------
def _output(server: RegistryServer) -> str:
    return server.stdout_path.read_text() + server.stderr_path.read_text()


def _json_lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_json_logs_with_fields_and_one_access_line_per_request(
    registry_factory: ServerFactory, tmp_path: Path
) -> None:
    htpasswd = tmp_path / "htpasswd"
    htpasswd.write_text(f"docker:{bcrypt.hashpw(b'logs-pass', bcrypt.gensalt(5)).decode()}\n")
    server = registry_factory(
        {
            "log": {"formatter": "json", "fields": {"service": "registry", "env": "test"}},
            "auth": {"htpasswd": {"realm": "ops", "path": str(htpasswd)}},
        }
    )
    with server.client() as client:
        client.http.auth = ("docker", "logs-pass")
        answered = client.request(
            "GET", "/v2/ops/logs/tags/list", headers={"X-Request-ID": "ops-request-1"}
        )
        assert answered.status_code == 404
        assert answered.headers["X-Request-ID"] == "ops-request-1"
        generated = client.request("GET", "/v2/", headers={"X-Request-ID": 'bad "id"'})
        request_id = generated.headers["X-Request-ID"]
        assert request_id != 'bad "id"'
        assert len(request_id) == 36
    server.stop()

    for document in _json_lines(server.stderr_path) + _json_lines(server.stdout_path):
        assert (document["service"], document["env"]) == ("registry", "test"), document
        assert {"time", "level", "logger", "msg"} <= set(document), document
    access = [d for d in _json_lines(server.stdout_path) if d["logger"] == "dockyard.access"]
    mine = [d for d in access if d.get("request_id") == "ops-request-1"]
    assert len(mine) == 1, access
    entry = mine[0]
    assert entry["method"] == "GET"
    assert entry["route"] == "/v2/{name:path}/tags/list"
    assert entry["repository"] == "ops/logs"
    assert entry["status"] == 404
    assert entry["bytes_sent"] > 0
    assert entry["duration_ms"] >= 0
    assert entry["user"] == "docker"
    assert entry["client"] == "127.0.0.1"
    assert '"GET /v2/ops/logs/tags/list HTTP/1.1" 404' in entry["msg"]
    assert len([d for d in access if d.get("request_id") == request_id]) == 1
    # Granian's own access log is off: no line of its format anywhere.
    assert '- "GET /v2/' not in _output(server)


def test_no_secret_reaches_the_logs(registry_factory: ServerFactory, tmp_path: Path) -> None:
    server = registry_factory({"log": {"level": "debug"}})
    secrets = {
        "basic-password-4f9c",
        "bearer-token-8e1a",
        "query-token-77d2",
        "query-password-19bb",
        "query-secret-c0de",
        "cookie-secret-5a5a",
    }
    basic = base64.b64encode(b"someone:basic-password-4f9c").decode()
    with server.client() as client:
        for authorization in (f"Basic {basic}", "Bearer bearer-token-8e1a"):
            client.request("GET", "/v2/", headers={"Authorization": authorization})
        client.request(
            "GET",
            "/v2/ops/secret/tags/list",
            params={
                "token": "query-token-77d2",
                "password": "query-password-19bb",
                "client_secret": "query-secret-c0de",
                "n": "5",
            },
            headers={"Cookie": "session=cookie-secret-5a5a"},
        )
        client.request(
            "POST",
            "/token",
            data={"grant_type": "password", "username": "u", "password": "query-password-19bb"},
        )
    server.stop()
    output = _output(server)
    assert "/v2/ops/secret/tags/list?token=REDACTED&password=REDACTED" in output
    assert "client_secret=REDACTED&n=5" in output
    assert basic not in output
    for secret in secrets:
        assert secret not in output, secret


# Graceful shutdown -----------------------------------------------------------------------------
def _slow_upload(
    server: RegistryServer, chunks: int, pause: float, on_chunk: Callable[[int], None]
) -> tuple[httpx.Response | BaseException, str]:
    data = [os.urandom(32 * 1024) for _ in range(chunks)]
    digest = "sha256:" + hashlib.sha256(b"".join(data)).hexdigest()

    def body() -> Iterator[bytes]:
        for index, chunk in enumerate(data):
            on_chunk(index)
            time.sleep(pause)
            yield chunk

    with server.client() as client:
        location = client.start_upload("ops/drain").headers["Location"]
        try:
            return client.http.put(client.resolve(location, digest=digest), content=body()), digest
        except httpx.HTTPError as exc:
            return exc, digest


def test_sigterm_lets_an_inflight_upload_finish(registry_factory: ServerFactory) -> None:
    server = registry_factory({"http": {"draintimeout": "30s"}})
    assert server.process is not None
    process = server.process

    newcomers: list[int | str] = []

    def terminate_midway(index: int) -> None:
        if index == 3:
            process.send_signal(signal.SIGTERM)
        elif index == 8:  # while the upload goes on, a new connection is turned away
            try:
                newcomers.append(httpx.get(server.url + "/v2/", timeout=2.0).status_code)
            except httpx.TransportError as exc:
                newcomers.append(type(exc).__name__)

    started = time.monotonic()
    response, digest = _slow_upload(server, 20, 0.1, terminate_midway)
    assert isinstance(response, httpx.Response), response
    assert response.status_code == 201, response.text
    assert time.monotonic() - started >= 1.5
    assert newcomers == ["ConnectError"]
    assert process.wait(timeout=15) == 0
    hexdigest = digest.split(":")[1]
    assert (server.root / "blobs" / "sha256" / hexdigest[:2] / hexdigest / "data").is_file()


def test_draintimeout_bounds_the_wait(registry_factory: ServerFactory) -> None:
    server = registry_factory({"http": {"draintimeout": "1s"}})
    assert server.process is not None
    process = server.process
    signalled: list[float] = []

    def terminate_midway(index: int) -> None:
        if index == 2:
            signalled.append(time.monotonic())
            process.send_signal(signal.SIGTERM)

    response, _ = _slow_upload(server, 60, 0.1, terminate_midway)
    process.wait(timeout=15)
    assert not isinstance(response, httpx.Response) or response.status_code != 201
    # The worker was killed after the drain timeout, long before the upload could finish.
    assert time.monotonic() - signalled[0] < 5.0


# The reporting section, and the debug listener -------------------------------------------------
def _check_config(path: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("REGISTRY_")}
    return subprocess.run(
        [sys.executable, "-m", "dockyard", "check-config", str(path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )


def test_reporting_is_accepted_with_a_warning(
    registry_factory: ServerFactory, tmp_path: Path
) -> None:
    reporting = {
        "bugsnag": {"apikey": "bugsnag-key-123", "releasestage": "production"},
        "newrelic": {"licensekey": "newrelic-key-456", "name": "registry"},
    }
    hooks = [{"type": "mail", "levels": ["panic"], "options": {"to": ["ops@example.test"]}}]
    server = registry_factory({"reporting": reporting, "log": {"hooks": hooks}})
    assert get(server, "/v2/").status_code == 200
    server.stop()
    errors = server.stderr_path.read_text()
    assert "reporting.bugsnag: ignored, not supported" in errors
    assert "reporting.newrelic: ignored, not supported; use Prometheus metrics" in errors
    assert "or OpenTelemetry tracing (tracing.otlp.endpoint)" in errors
    assert "log.hooks: ignored, not supported" in errors
    assert "bugsnag-key-123" not in errors
    assert "newrelic-key-456" not in errors

    checked = _check_config(server.config_path)
    assert checked.returncode == 0, checked.stderr
    assert "warning: reporting.newrelic: ignored" in checked.stderr


def test_opentelemetry_switch_refuses_without_the_packages(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An empty ``opentelemetry`` package first on the path hides the installed one.
    (tmp_path / "hide" / "opentelemetry").mkdir(parents=True)
    (tmp_path / "hide" / "opentelemetry" / "__init__.py").write_text("")
    monkeypatch.setenv("PYTHONPATH", str(tmp_path / "hide"))
    path = tmp_path / "config.yml"
    path.write_text("version: 0.1\nreporting:\n  opentelemetry:\n    enabled: true\n")
    checked = _check_config(path)
    assert checked.returncode == 2
    assert "tracing: tracing needs the OpenTelemetry packages" in checked.stderr
    assert "pip install 'dockyard[tracing]'" in checked.stderr
    path.write_text("version: 0.1\nreporting:\n  opentelemetry:\n    enabled: false\n")
    assert _check_config(path).returncode == 0
    path.write_text("version: 0.1\nreporting:\n  opentelemetry:\n    enabled: maybe\n")
    checked = _check_config(path)
    assert checked.returncode == 2
    assert "reporting.opentelemetry.enabled: must be true or false" in checked.stderr


def test_a_taken_debug_address_fails_at_start(
    registry_factory: ServerFactory, unused_tcp_port_factory: PortFactory
) -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        server = registry_factory({"http": {"debug": {"addr": f"127.0.0.1:{port}"}}}, run=False)
        server.config_path.write_text(json.dumps(server.config))
        done = subprocess.run(
            [sys.executable, "-m", "dockyard", "serve", str(server.config_path)],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert done.returncode == 1
    assert f"http.debug.addr: cannot listen on 127.0.0.1:{port}" in done.stderr


# Running it like registry:2: the image and the systemd unit --------------------------------------
DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def test_the_image_config_runs_with_registry_overrides(
    registry_factory: ServerFactory, tmp_path: Path, unused_tcp_port_factory: PortFactory
) -> None:
    config = yaml.safe_load((DEPLOY / "container-config.yml").read_text())
    assert config["storage"]["filesystem"]["rootdirectory"] == "/var/lib/registry"
    port = unused_tcp_port_factory()
    root = tmp_path / "var-lib-registry"
    server = registry_factory(
        config,
        replace=True,
        env={
            "REGISTRY_HTTP_ADDR": f"127.0.0.1:{port}",
            "REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY": str(root),
            "REGISTRY_STORAGE_DELETE_ENABLED": "true",
        },
    )
    with server.client() as client:
        image = client.push_image("library/alpine", "3.20")
        assert client.get_manifest("library/alpine", "3.20").content == image.body
        deleted = client.request("DELETE", f"/v2/library/alpine/manifests/{image.digest}")
        assert deleted.status_code == 202
    assert get(server, "/readyz").status_code == 200
    # Blobs and the metadata database both live in the data directory (the image's volume).
    assert (root / "dockyard.db").is_file()
    assert (root / "blobs").is_dir()


def _containerfile() -> list[str]:
    return (DEPLOY / "Containerfile").read_text().splitlines()


def test_the_containerfile_runs_like_registry2() -> None:
    lines = _containerfile()
    assert 'VOLUME ["/var/lib/registry"]' in lines
    assert "EXPOSE 5000" in lines
    assert 'ENTRYPOINT ["dockyard"]' in lines
    assert 'CMD ["serve", "/etc/dockyard/config.yml"]' in lines
    assert "COPY deploy/container-config.yml /etc/dockyard/config.yml" in lines
    # Every file the build copies passes the ignore file Docker reads for this Containerfile.
    ignore = (DEPLOY / "Containerfile.dockerignore").read_text().splitlines()
    kept = [line[1:].rstrip("/") for line in ignore if line.startswith("!")]
    for line in lines:
        if line.startswith("COPY "):
            for source in line.split()[1:-1]:
                assert any(source == k or source.startswith(k + "/") for k in kept), source


def test_the_systemd_unit_verifies(tmp_path: Path) -> None:
    unit = (DEPLOY / "dockyard.service").read_text()
    assert "\nRestart=on-failure\n" in unit
    assert "\nExecStart=/opt/dockyard/bin/dockyard serve /etc/dockyard/config.yml\n" in unit
    # Verified against this machine's dockyard command in place of /opt/dockyard's.
    command = shutil.which("dockyard") or str(Path(sys.executable).parent / "dockyard")
    (tmp_path / "dockyard.service").write_text(unit.replace("/opt/dockyard/bin/dockyard", command))
    systemd_analyze = shutil.which("systemd-analyze")
    assert systemd_analyze, "systemd-analyze is needed to check the unit"
    done = subprocess.run(
        [systemd_analyze, "verify", str(tmp_path / "dockyard.service")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr.strip() == "", done.stderr


# Trusted proxies -------------------------------------------------------------------------------
def _login(url: str, user: str, password: str, source: str, **headers: str) -> httpx.Response:
    """A token request from the loopback address ``source``, with extra headers."""
    from .test_builtin_auth import _basic

    with httpx.Client(transport=httpx.HTTPTransport(local_address=source), timeout=30) as http:
        return http.get(
            f"{url}/token",
            params=[("service", "dockyard"), ("scope", "repository:alice/app:pull")],
            headers={"Authorization": _basic(user, password), **headers},
        )


def test_forwarded_headers_count_from_trusted_proxies_only(
    registry_factory: ServerFactory, tmp_path: Path
) -> None:
    from auth.builtin_setup import write_key

    from .test_access_tokens import _dockyard
    from .test_builtin_auth import USERS, _builtin_config, _start_site

    proxy, stranger = "127.0.0.2", "127.0.0.3"
    config = _builtin_config(write_key(tmp_path / "key.pem"))
    config["auth"]["builtin"].update({"maxfailuresperaddress": 2, "failurewindow": "10m"})
    config["http"] = {"trustedproxies": [f"{proxy}/32", "10.0.0.0/8"]}
    site = _start_site(registry_factory, config)
    url = site.url

    # A stranger rotating X-Forwarded-For is still one address to the login limit.
    for n in range(2):
        spoofed = {"X-Forwarded-For": f"203.0.113.{n}", "Forwarded": f"for=203.0.113.{n}"}
        assert_error(_login(url, "bob", "guess", stranger, **spoofed), 401, "UNAUTHORIZED")
    limited = _login(url, "alice", USERS["alice"], stranger, **{"X-Forwarded-For": "203.0.113.9"})
    assert_error(limited, 429, "TOOMANYREQUESTS")

    # Through the proxy, each client is its own address, whatever it prepended itself; the
    # proxy's own hops (10.x) are skipped.
    chain = {"X-Forwarded-For": "192.0.2.66, 198.51.100.7, 10.1.2.3"}
    for _ in range(2):
        assert_error(_login(url, "bob", "guess", proxy, **chain), 401, "UNAUTHORIZED")
    assert_error(_login(url, "bob", USERS["bob"], proxy, **chain), 429, "TOOMANYREQUESTS")
    other = {"Forwarded": 'for="[2001:db8::5]:4711";proto=https, for=10.9.9.9'}
    assert _login(url, "bob", USERS["bob"], proxy, **other).status_code == 200

    # Absolute URLs: the proxy's scheme and host, nobody else's.
    forwarded = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "registry.example"}
    with httpx.Client(transport=httpx.HTTPTransport(local_address=proxy)) as http:
        challenge = http.get(f"{url}/v2/", headers=forwarded).headers["WWW-Authenticate"]
    assert 'realm="https://registry.example/token"' in challenge
    with httpx.Client(transport=httpx.HTTPTransport(local_address=stranger)) as http:
        challenge = http.get(f"{url}/v2/", headers=forwarded).headers["WWW-Authenticate"]
    assert f'realm="{url}/token"' in challenge

    # The audit log and the access log name the believed addresses.
    events = [json.loads(line) for line in _dockyard(site, "audit", "export").splitlines()]
    addresses = {event["client_address"] for event in events}
    assert addresses == {stranger, "198.51.100.7", "2001:db8::5"}
    site.server.stop()
    access = site.server.workdir.joinpath("stdout.log").read_text()
    assert f"{stranger} - " in access
    assert "198.51.100.7 - " in access
    assert "203.0.113." not in access
    assert "192.0.2.66" not in access
