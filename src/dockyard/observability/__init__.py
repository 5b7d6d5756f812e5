"""Logs, request ids, the access log and Prometheus metrics.

Importing this package does not import prometheus-client: the server sets
``PROMETHEUS_MULTIPROC_DIR`` (``MULTIPROC_ENV``) before anything does, since the library
reads it once.
"""

__all__ = ["MULTIPROC_ENV"]

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
