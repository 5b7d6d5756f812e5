"""Distribution's ``reporting`` section (and ``log.hooks``): accepted, with a warning saying
what replaces it.

Bugsnag and New Relic error reporting is not built in. Dockyard exposes Prometheus metrics
(``http.debug.prometheus``), structured logs (``log.formatter: json``) and OpenTelemetry
traces (the ``tracing`` section; see ``observability.tracing``) instead.
``reporting.opentelemetry.enabled: true`` is also accepted: it turns tracing on, sending to
the ``OTEL_EXPORTER_OTLP_*`` endpoint.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dockyard.config import Config, ConfigError, Problem

__all__ = ["reporting_warnings"]

_OPENTELEMETRY = "OpenTelemetry tracing (tracing.otlp.endpoint)"
_REPLACEMENTS = {
    "bugsnag": "use the structured logs (log.formatter: json) with your log pipeline's alerts, "
    f"or {_OPENTELEMETRY}",
    "newrelic": f"use Prometheus metrics (http.debug.prometheus) or {_OPENTELEMETRY}",
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
            service, f"use Prometheus metrics (http.debug.prometheus) or {_OPENTELEMETRY}"
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
    # Tracing itself (and whether its packages are here) is observability.tracing's concern.
