"""When tracing is on, and where spans go (the spans themselves: tests/e2e/test_tracing.py)."""

from __future__ import annotations

from typing import Any

import pytest

from dockyard.config import Config, ConfigError, load_config
from dockyard.observability.tracing import (
    Tracing,
    _traces_url,
    open_tracing,
    tracing_enabled,
    tracing_problems,
)


def _config(**sections: Any) -> Config:
    return Config.model_validate({"version": "0.1", **sections})


@pytest.mark.parametrize(
    ("sections", "environ", "enabled"),
    [
        ({}, {}, False),
        ({"tracing": {"otlp": {"endpoint": "http://c:4318"}}}, {}, True),
        ({}, {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}, True),
        ({}, {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c:4318/v1/traces"}, True),
        ({"reporting": {"opentelemetry": {"enabled": True}}}, {}, True),
        ({"reporting": {"opentelemetry": {"enabled": False}}}, {}, False),
        (
            {"tracing": {"disabled": True, "otlp": {"endpoint": "http://c:4318"}}},
            {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"},
            False,
        ),
        (
            {"tracing": {"otlp": {"endpoint": "http://c:4318"}}},
            {"OTEL_SDK_DISABLED": "TRUE"},
            False,
        ),
    ],
)
def test_when_tracing_is_on(
    sections: dict[str, Any], environ: dict[str, str], enabled: bool
) -> None:
    config = _config(**sections)
    assert tracing_enabled(config, environ) is enabled
    # The packages are installed here (the test extra): nothing to refuse.
    assert tracing_problems(config, environ) == []
    tracing = open_tracing(config, environ)
    assert (tracing is not None) is enabled
    if tracing is not None:
        tracing.shutdown()


def test_endpoints_get_the_traces_path_once() -> None:
    assert _traces_url("http://c:4318") == "http://c:4318/v1/traces"
    assert _traces_url("http://c:4318/") == "http://c:4318/v1/traces"
    assert _traces_url("https://c/otlp/v1/traces") == "https://c/otlp/v1/traces"


def test_the_service_name() -> None:
    def name(config: Config, environ: dict[str, str]) -> object:
        tracing = open_tracing(config, environ)
        assert isinstance(tracing, Tracing)
        try:
            return tracing.provider.resource.attributes["service.name"]
        finally:
            tracing.shutdown()

    endpoint = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}
    assert name(_config(), endpoint) == "dockyard"
    assert name(_config(), {**endpoint, "OTEL_SERVICE_NAME": "from-env"}) == "from-env"
    named = _config(tracing={"servicename": "registry-eu"})
    assert name(named, {**endpoint, "OTEL_SERVICE_NAME": "from-env"}) == "registry-eu"


@pytest.mark.parametrize(
    ("yaml_text", "message"),
    [
        ("tracing:\n  otlp:\n    endpoint: collector:4318\n", "tracing.otlp.endpoint: "),
        ("tracing:\n  otlp:\n    protocol: grpc\n", "tracing.otlp.protocol: "),
        ("tracing:\n  exporter: jaeger\n", "tracing.exporter: "),
    ],
)
def test_bad_tracing_sections_are_refused(tmp_path: Any, yaml_text: str, message: str) -> None:
    path = tmp_path / "config.yml"
    path.write_text("version: 0.1\n" + yaml_text)
    with pytest.raises(ConfigError) as refused:
        load_config(str(path), {})
    assert message in str(refused.value)
