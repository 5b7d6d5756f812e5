"""Notification metrics, registered in the app's ``Metrics`` registry (multi-process safe).

Names (prefixed ``dockyard_``)::

    notification_queue_depth{endpoint}                 events waiting, as last seen by the sender
    notification_deliveries_total{endpoint, status}    delivery attempts by HTTP status (or error)
    notification_failures_total{endpoint, status}     failed attempts by HTTP status (or error)
    notification_events_total{endpoint}                events delivered
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge

from dockyard.observability.metrics import NAMESPACE, Metrics

__all__ = ["EventMetrics"]


class EventMetrics:
    def __init__(self, metrics: Metrics) -> None:
        registry = metrics.registry
        self.depth = Gauge(
            "notification_queue_depth",
            "Events waiting for delivery to each endpoint.",
            ["endpoint"],
            namespace=NAMESPACE,
            # Whichever worker sends for the endpoint wrote the latest value.
            multiprocess_mode="livemostrecent",
            registry=registry,
        )
        self.deliveries = Counter(
            "notification_deliveries",
            "Delivery attempts, by endpoint and HTTP status (error: no response).",
            ["endpoint", "status"],
            namespace=NAMESPACE,
            registry=registry,
        )
        self.failures = Counter(
            "notification_failures",
            "Failed delivery attempts, by endpoint and HTTP status (error: no response).",
            ["endpoint", "status"],
            namespace=NAMESPACE,
            registry=registry,
        )
        self.events = Counter(
            "notification_events",
            "Events delivered, by endpoint.",
            ["endpoint"],
            namespace=NAMESPACE,
            registry=registry,
        )
