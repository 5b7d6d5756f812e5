"""The notification metrics as a ``Deliverer`` counts them: the app's ``Metrics`` declares
them (see ``dockyard.observability.metrics`` for their names)."""

from __future__ import annotations

from dockyard.observability.metrics import Metrics

__all__ = ["EventMetrics"]


class EventMetrics:
    def __init__(self, metrics: Metrics) -> None:
        self.depth = metrics.notification_depth
        self.deliveries = metrics.notification_deliveries
        self.failures = metrics.notification_failures
        self.events = metrics.notification_events
