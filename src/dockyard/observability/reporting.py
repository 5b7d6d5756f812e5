"""Distribution's ``reporting`` section (and ``log.hooks``): accepted, with a warning saying
what replaces it.

Bugsnag and New Relic error reporting is not built in. Dockyard exposes Prometheus metrics
(``http.debug.prometheus``) and structured logs (``log.formatter: json``) instead; tracing
through OpenTelemetry is Dockyard's own switch, ``reporting.opentelemetry.enabled`` (off by
default), and needs the OpenTelemetry packages.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping
from typing import Any

from dockyard.config import Config, ConfigError, Problem

__all__ = ["OTEL_PACKAGES", "reporting_warnings"]

OTEL_PACKAGES = ("opentelemetry-sdk", "opentelemetry-exporter-otlp-proto-http")
_OTEL_MODULES = ("opentelemetry.sdk.trace", "opentelemetry.exporter.otlp.proto.http")

_REPLACEMENTS = {
    "bugsnag": "use the structured logs (log.formatter: json) with your log pipeline's alerts",
    "newrelic": "use Prometheus metrics (http.debug.prometheus) or OpenTelemetry "
    "(reporting.opentelemetry)",
}


def reporting_warnings(config: Config) -> list[str]:
    """Warnings for the ``reporting`` services Dockyard ignores; :class:`ConfigError` for a
    ``reporting.opentelemetry`` it cannot honour."""
    warnings = []
    if config.log.hooks:
        warnings.append(
            "log.hooks: ignored, not supported; alert on the logs (log.formatter: json) "
            "or on the metrics (http.debug.prometheus) instead"
        )
    for service, options in config.reporting.items():
        if service == "opentelemetry":
            _check_opentelemetry(options)
            continue
        replacement = _REPLACEMENTS.get(
            service, "use Prometheus metrics (http.debug.prometheus) or OpenTelemetry"
        )
        warnings.append(f"reporting.{service}: ignored, not supported; {replacement}")
    return warnings


def _check_opentelemetry(options: Any) -> None:
    where = "reporting.opentelemetry"
    if options is None:
        options = {}
    if not isinstance(options, Mapping):
        raise ConfigError([Problem(where, "must be a mapping (enabled: true|false)")])
    unknown = sorted(set(options) - {"enabled"})
    if unknown:
        raise ConfigError([Problem(f"{where}.{key}", "unknown key") for key in unknown])
    enabled = options.get("enabled", False)
    if not isinstance(enabled, bool):
        raise ConfigError([Problem(f"{where}.enabled", "must be true or false")])
    if not enabled:
        return
    missing = [name for name in _OTEL_MODULES if not _importable(name)]
    if missing:
        raise ConfigError(
            [
                Problem(
                    f"{where}.enabled",
                    "tracing needs the OpenTelemetry packages, which are not installed "
                    f"(pip install {' '.join(OTEL_PACKAGES)}); or set it to false",
                )
            ]
        )
    raise ConfigError(
        [
            Problem(
                f"{where}.enabled",
                "OpenTelemetry tracing is not available in this version; use Prometheus "
                "metrics (http.debug.prometheus)",
            )
        ]
    )


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False
