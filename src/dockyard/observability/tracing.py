"""OpenTelemetry traces, off by default: a span per request, with child spans for the storage
and metadata calls made while serving it, exported over OTLP/HTTP (protobuf).

On when ``tracing.otlp.endpoint`` or ``OTEL_EXPORTER_OTLP_ENDPOINT`` (or
``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``) names a collector, or ``reporting.opentelemetry.enabled``
is true; ``tracing.disabled`` or ``OTEL_SDK_DISABLED=true`` turns it off. It needs the
``tracing`` extra (``pip install 'dockyard[tracing]'``): without it a config that turns
tracing on is refused at start-up. The SDK's other ``OTEL_*`` variables apply (sampler,
batch delay, resource attributes).

An incoming W3C ``traceparent`` makes the request's span a child of the caller's. Each worker
process has its own tracer provider (made after the fork), flushed when the worker stops.
Nothing here is global: no provider or propagator is installed process-wide.

Importing this module does not import OpenTelemetry; :func:`open_tracing` does.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from dockyard.config import Config, Problem
from dockyard.observability.logging import REQUEST_ID

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.trace import Span, Tracer

__all__ = [
    "EXTRA",
    "Tracing",
    "TracingMiddleware",
    "open_tracing",
    "tracing_enabled",
    "tracing_problems",
]

EXTRA = "dockyard[tracing]"
DEFAULT_SERVICE_NAME = "dockyard"
TRACES_PATH = "/v1/traces"
_MODULES = ("opentelemetry.sdk.trace", "opentelemetry.exporter.otlp.proto.http.trace_exporter")
_ENDPOINT_ENV = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
SpanAttributes = Mapping[str, str | int | float | bool]


def tracing_enabled(config: Config, environ: Mapping[str, str]) -> bool:
    tracing = config.tracing
    if tracing.disabled or environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    if tracing.otlp.endpoint or any(environ.get(name) for name in _ENDPOINT_ENV):
        return True
    reporting = config.reporting.get("opentelemetry")
    return isinstance(reporting, Mapping) and reporting.get("enabled") is True


def _installed() -> bool:
    try:
        return all(importlib.util.find_spec(module) is not None for module in _MODULES)
    except ModuleNotFoundError:
        return False


def tracing_problems(config: Config, environ: Mapping[str, str]) -> list[Problem]:
    """Why tracing, turned on by ``config`` or ``environ``, cannot run here (the packages)."""
    if not tracing_enabled(config, environ) or _installed():
        return []
    where = "tracing.otlp.endpoint" if config.tracing.otlp.endpoint else "tracing"
    return [
        Problem(
            where,
            "tracing needs the OpenTelemetry packages, which are not installed "
            f"(pip install '{EXTRA}'); or set tracing.disabled: true",
        )
    ]


def _traces_url(endpoint: str) -> str:
    """A base URL gets ``/v1/traces``, as ``OTEL_EXPORTER_OTLP_ENDPOINT`` does."""
    endpoint = endpoint.rstrip("/")
    return endpoint if endpoint.endswith(TRACES_PATH) else endpoint + TRACES_PATH


def open_tracing(config: Config, environ: Mapping[str, str] | None = None) -> Tracing | None:
    """The tracing ``config`` (and the environment) asks for, or None when it is off."""
    environ = os.environ if environ is None else environ
    if not tracing_enabled(config, environ):
        return None
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    tracing = config.tracing
    name = tracing.servicename or environ.get("OTEL_SERVICE_NAME") or DEFAULT_SERVICE_NAME
    provider = TracerProvider(resource=Resource.create({SERVICE_NAME: name}))
    otlp = tracing.otlp
    # Without an endpoint here, the exporter reads the OTEL_EXPORTER_OTLP_* variables itself.
    exporter = OTLPSpanExporter(
        endpoint=_traces_url(otlp.endpoint) if otlp.endpoint else None,
        headers=dict(otlp.headers) or None,
        timeout=otlp.timeout if "timeout" in otlp.model_fields_set else None,
    )
    provider.add_span_processor(BatchSpanProcessor(exporter))
    return Tracing(provider)


class Tracing:
    """Spans of one worker process, on ``provider``."""

    def __init__(self, provider: TracerProvider) -> None:
        from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

        self.provider = provider
        self.tracer: Tracer = provider.get_tracer("dockyard")
        self.propagator = TraceContextTextMapPropagator()

    @contextlib.contextmanager
    def span(self, name: str, attributes: SpanAttributes) -> Iterator[None]:
        """A client span (a call out of the process: storage, database) under the current one."""
        from opentelemetry.trace import SpanKind

        with self.tracer.start_as_current_span(name, kind=SpanKind.CLIENT, attributes=attributes):
            yield

    def start(self, name: str, attributes: SpanAttributes) -> Span:
        """A client span under the current one, not made current; the caller ends it."""
        from opentelemetry.trace import SpanKind

        return self.tracer.start_span(name, kind=SpanKind.CLIENT, attributes=attributes)

    def failed(self, span: Span, error: BaseException) -> None:
        from opentelemetry.trace import Status, StatusCode

        span.record_exception(error)
        span.set_status(Status(StatusCode.ERROR, type(error).__name__))

    def shutdown(self) -> None:
        """Send what is still queued, then stop."""
        self.provider.shutdown()


def _headers(scope: Scope) -> dict[str, str]:
    carrier: dict[str, str] = {}
    for name, value in scope.get("headers", ()):
        key = name.decode("latin-1")
        if key in ("traceparent", "tracestate", "user-agent"):
            carrier[key] = value.decode("latin-1")
    return carrier


class TracingMiddleware:
    """Pure ASGI middleware: the request's span, current while the app serves it (so that the
    storage and metadata spans are its children), named and labelled once the route is known."""

    def __init__(self, app: ASGIApp, tracing: Tracing) -> None:
        self.app = app
        self.tracing = tracing

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        from opentelemetry.trace import SpanKind, Status, StatusCode

        carrier = _headers(scope)
        parent = self.tracing.propagator.extract(carrier)
        method = scope["method"]
        client = scope.get("client")
        attributes: dict[str, Any] = {
            "http.request.method": method,
            "url.path": scope["path"],
            "url.scheme": scope.get("scheme", "http"),
            "network.protocol.version": scope.get("http_version", "1.1"),
        }
        if client:
            attributes["client.address"] = client[0]
        if "user-agent" in carrier:
            attributes["user_agent.original"] = carrier["user-agent"]
        request_id = REQUEST_ID.get()
        if request_id is not None:
            attributes["dockyard.request_id"] = request_id
        status = 0

        async def observing_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        with self.tracing.tracer.start_as_current_span(
            method, context=parent, kind=SpanKind.SERVER, attributes=attributes
        ) as span:
            try:
                await self.app(scope, receive, observing_send)
            finally:
                route = getattr(scope.get("route"), "path", None)
                if route is not None:
                    span.update_name(f"{method} {route}")
                    span.set_attribute("http.route", route)
                repository = (scope.get("path_params") or {}).get("name")
                if isinstance(repository, str):
                    span.set_attribute("dockyard.repository", repository)
                if status:
                    span.set_attribute("http.response.status_code", status)
                    if status >= 500:
                        span.set_status(Status(StatusCode.ERROR))
