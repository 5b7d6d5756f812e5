"""OpenTelemetry traces from a real server to a real OTLP/HTTP receiver started here: the
request's span carries its route and status, the storage and metadata calls made for it are
its children in the same trace, and an incoming ``traceparent`` makes it the caller's child."""

from __future__ import annotations

import gzip
import hashlib
import os
import secrets
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from .conftest import DISTRIBUTION, ServerFactory

pytestmark = pytest.mark.skipif(DISTRIBUTION, reason="Dockyard's own tracing")

trace_service_pb2 = pytest.importorskip(
    "opentelemetry.proto.collector.trace.v1.trace_service_pb2",
    reason="install the test extra (opentelemetry-proto): pip install -e '.[test]'",
)

# Spans leave the server in batches: send them every 100 ms rather than every 5 s.
FAST_EXPORT = {"OTEL_BSP_SCHEDULE_DELAY": "100"}


@dataclass(frozen=True)
class Span:
    trace_id: str
    span_id: str
    parent_id: str
    name: str
    kind: int
    attributes: dict[str, Any]
    service: str | None


def _value(value: Any) -> Any:
    kind = value.WhichOneof("value")
    return getattr(value, kind) if kind else None


class Receiver:
    """An OTLP/HTTP trace receiver: decodes every export it is sent."""

    def __init__(self) -> None:
        self.spans: list[Span] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                assert self.path == "/v1/traces", self.path
                assert self.headers["Content-Type"] == "application/x-protobuf"
                request = trace_service_pb2.ExportTraceServiceRequest()
                request.ParseFromString(body)
                receiver.add(request)
                answer = trace_service_pb2.ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def add(self, request: Any) -> None:
        found = []
        for resource_spans in request.resource_spans:
            resource = {a.key: _value(a.value) for a in resource_spans.resource.attributes}
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    found.append(
                        Span(
                            trace_id=span.trace_id.hex(),
                            span_id=span.span_id.hex(),
                            parent_id=span.parent_span_id.hex(),
                            name=span.name,
                            kind=span.kind,
                            attributes={a.key: _value(a.value) for a in span.attributes},
                            service=resource.get("service.name"),
                        )
                    )
        with self.lock:
            self.spans.extend(found)

    def trace(self, trace_id: str) -> list[Span]:
        with self.lock:
            return [span for span in self.spans if span.trace_id == trace_id]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    running = Receiver()
    yield running
    running.close()


def wait_for(receiver: Receiver, trace_id: str, names: set[str]) -> list[Span]:
    """The trace's spans, once spans of every name in ``names`` have arrived."""
    deadline = time.monotonic() + 15
    while True:
        spans = receiver.trace(trace_id)
        if names <= {span.name for span in spans}:
            return spans
        if time.monotonic() > deadline:
            raise AssertionError(f"missing spans {names - {s.name for s in spans}}: {spans}")
        time.sleep(0.05)


def traceparent() -> tuple[str, str, str]:
    trace_id, parent_id = secrets.token_hex(16), secrets.token_hex(8)
    return f"00-{trace_id}-{parent_id}-01", trace_id, parent_id


SERVER, CLIENT = 2, 3  # Span.SpanKind in the OTLP protocol
UPLOAD = "/v2/{name:path}/blobs/uploads/{uuid}"
BLOB = "/v2/{name:path}/blobs/{digest}"


def descendants(spans: list[Span], root: Span) -> list[Span]:
    children = {root.span_id}
    found: list[Span] = []
    grew = True
    while grew:
        grew = False
        for span in spans:
            if span.parent_id in children and span not in found:
                found.append(span)
                children.add(span.span_id)
                grew = True
    return found


def test_request_storage_and_database_spans_in_one_trace(
    registry_factory: ServerFactory, receiver: Receiver
) -> None:
    server = registry_factory(
        {"tracing": {"otlp": {"endpoint": receiver.url}, "servicename": "dockyard-e2e"}},
        env=FAST_EXPORT,
    )
    data = os.urandom(50_000)
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    put_parent, put_trace, put_caller = traceparent()
    get_parent, get_trace, get_caller = traceparent()
    with server.client() as client:
        location = client.start_upload("traced/app").headers["Location"]
        put = client.http.put(
            client.resolve(location, digest=digest),
            content=data,
            headers={"traceparent": put_parent, "Content-Type": "application/octet-stream"},
        )
        assert put.status_code == 201, put.text
        got = client.request(
            "GET", f"/v2/traced/app/blobs/{digest}", headers={"traceparent": get_parent}
        )
        assert got.status_code == 200
        missing = client.request("GET", "/v2/traced/app/manifests/nope")
        assert missing.status_code == 404

    # The upload: the server span is the caller's child, and the storage and database calls
    # made for it are its descendants, in the caller's trace.
    spans = wait_for(
        receiver, put_trace, {f"PUT {UPLOAD}", "storage commit", "metadata complete_upload"}
    )
    (request,) = [span for span in spans if span.kind == SERVER]
    assert request.name == f"PUT {UPLOAD}"
    assert request.parent_id == put_caller
    assert request.service == "dockyard-e2e"
    assert request.attributes["http.route"] == UPLOAD
    assert request.attributes["http.request.method"] == "PUT"
    assert request.attributes["http.response.status_code"] == 201
    assert request.attributes["dockyard.repository"] == "traced/app"
    below = descendants(spans, request)
    names = {span.name for span in below}
    assert {"storage writer", "storage commit", "metadata complete_upload"} <= names
    assert all(span.kind == CLIENT for span in below)
    assert len(below) == len(spans) - 1  # nothing in the trace outside the request
    assert "storage write" not in names  # single writes are not traced

    # The download: its database lookup is its child.
    spans = wait_for(receiver, get_trace, {f"GET {BLOB}"})
    (request,) = [span for span in spans if span.kind == SERVER]
    assert request.parent_id == get_caller
    assert request.attributes["http.response.status_code"] == 200
    assert any(span.name.startswith("metadata ") for span in descendants(spans, request))

    # Without a traceparent a request starts a trace of its own; a 404 is not an error.
    def manifest_404() -> list[Span]:
        with receiver.lock:
            return [
                s
                for s in receiver.spans
                if s.kind == SERVER and s.attributes.get("http.response.status_code") == 404
            ]

    deadline = time.monotonic() + 15
    while not manifest_404() and time.monotonic() < deadline:
        time.sleep(0.05)
    (lost,) = manifest_404()
    assert lost.parent_id == ""
    assert lost.trace_id not in (put_trace, get_trace)


def test_the_otlp_endpoint_from_the_environment(
    registry_factory: ServerFactory, receiver: Receiver
) -> None:
    server = registry_factory(env={**FAST_EXPORT, "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url})
    parent, trace_id, caller = traceparent()
    with server.client() as client:
        assert client.request("GET", "/v2/", headers={"traceparent": parent}).status_code == 200
    (request,) = wait_for(receiver, trace_id, {"GET /v2/"})
    assert request.parent_id == caller
    assert request.service == "dockyard"
    assert request.attributes["http.route"] == "/v2/"


def test_tracing_without_its_packages_is_refused_naming_the_extra(tmp_path: Path) -> None:
    # An empty ``opentelemetry`` package first on the path hides the installed one.
    (tmp_path / "hide" / "opentelemetry").mkdir(parents=True)
    (tmp_path / "hide" / "opentelemetry" / "__init__.py").write_text("")
    config = tmp_path / "config.yml"
    config.write_text("version: 0.1\ntracing:\n  otlp:\n    endpoint: http://127.0.0.1:4318\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REGISTRY_", "OTEL_"))}
    env["PYTHONPATH"] = str(tmp_path / "hide")
    checked = subprocess.run(
        [sys.executable, "-m", "dockyard", "check-config", str(config)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert checked.returncode == 2, checked.stderr
    assert "tracing.otlp.endpoint: " in checked.stderr
    assert "pip install 'dockyard[tracing]'" in checked.stderr
    served = subprocess.run(
        [sys.executable, "-m", "dockyard", "serve", str(config)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert served.returncode != 0
    assert "dockyard[tracing]" in served.stderr
    # Turned off, the same config passes.
    config.write_text(
        "version: 0.1\ntracing:\n  disabled: true\n  otlp:\n    endpoint: http://127.0.0.1:4318\n"
    )
    assert (
        subprocess.run(
            [sys.executable, "-m", "dockyard", "check-config", str(config)],
            capture_output=True,
            env=env,
            timeout=60,
        ).returncode
        == 0
    )
