"""``tracing``: Dockyard's own section for OpenTelemetry traces, sent over OTLP/HTTP.

    tracing:
      servicename: registry          # default: OTEL_SERVICE_NAME, else dockyard
      otlp:
        endpoint: http://collector:4318
        protocol: http/protobuf
        headers: {Authorization: Bearer ...}
        timeout: 10s

Tracing is on when an endpoint is given here or in ``OTEL_EXPORTER_OTLP_ENDPOINT`` (or
``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``), and ``disabled`` (or ``OTEL_SDK_DISABLED``) is not set.
"""

from __future__ import annotations

from typing import Literal
from urllib.parse import urlsplit

from pydantic import field_validator

from dockyard.config.durations import Duration
from dockyard.config.fields import Model, Text

__all__ = ["OtlpConfig", "TracingConfig"]


class OtlpConfig(Model):
    endpoint: Text | None = None
    """The collector's base URL (``/v1/traces`` is added), or the full traces URL."""
    protocol: Literal["http/protobuf"] = "http/protobuf"
    headers: dict[str, Text] = {}
    timeout: Duration = 10.0

    @field_validator("endpoint")
    @classmethod
    def _url(cls, endpoint: str | None) -> str | None:
        if endpoint:
            parts = urlsplit(endpoint)
            if parts.scheme not in ("http", "https") or not parts.netloc:
                raise ValueError(f"invalid URL {endpoint!r} (expected e.g. http://collector:4318)")
        return endpoint or None


class TracingConfig(Model):
    disabled: bool = False
    servicename: Text | None = None
    otlp: OtlpConfig = OtlpConfig()
