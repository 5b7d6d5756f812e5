"""The registry's Prometheus metrics (``http.debug.prometheus``).

Several worker processes serve one registry, so each writes its samples to files in a
directory the server creates (prometheus-client's multiprocess mode,
``PROMETHEUS_MULTIPROC_DIR``), and whichever worker is scraped sums every worker's files:
one consistent set of metrics, whichever worker answers. Without that directory (an app
built in-process), the metrics stay in the process.

Names (all prefixed ``dockyard_``)::

    http_requests_total{method, route, status}            requests, by route template
    http_request_duration_seconds{method, route}          latency histogram
    http_request_bytes_total{method, route}               request body bytes received
    http_response_bytes_total{method, route}              response body bytes sent
    storage_operation_duration_seconds{driver, operation} StorageDriver calls
    storage_bytes_total{driver, direction}                bytes read from / written to storage
    metadata_operation_duration_seconds{operation}        MetadataStore calls
    uploads_in_progress                                   upload writers open, all workers
    cache_lookups_total{cache, kind, result}              cache hits and misses (redis, memory)
    notification_queue_depth{endpoint}                    events waiting, as last seen by the sender
    notification_deliveries_total{endpoint, status}       delivery attempts, by HTTP status or error
    notification_failures_total{endpoint, status}         failed attempts, by HTTP status or error
    notification_events_total{endpoint}                   events delivered
"""

from __future__ import annotations

import glob
import os
import re

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead

from dockyard.observability import MULTIPROC_ENV
from dockyard.observability.accesslog import RequestRecord

__all__ = ["CONTENT_TYPE", "MULTIPROC_ENV", "CacheCounts", "Metrics", "multiprocess_directory"]

CONTENT_TYPE = CONTENT_TYPE_LATEST

NAMESPACE = "dockyard"
UNMATCHED = "unmatched"
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
# Requests: from a cached manifest (about a millisecond) to a large blob (minutes).
HTTP_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
# One storage or database call: from a page-cache hit to a slow object store.
CALL_BUCKETS = (
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
)  # fmt: skip
_LIVE_GAUGE_FILE = re.compile(r"gauge_live\w+?_(\d+)\.db$")


def multiprocess_directory() -> str | None:
    """The multiprocess directory, if this process writes its samples there."""
    return os.environ.get(MULTIPROC_ENV) or None


class Metrics:
    """Every metric, registered in a registry of its own (none is global)."""

    content_type = CONTENT_TYPE

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.multiprocess = multiprocess_directory()
        registry = self.registry
        self.requests = Counter(
            "http_requests",
            "HTTP requests answered, by route template, method and status.",
            ["method", "route", "status"],
            namespace=NAMESPACE,
            registry=registry,
        )
        self.request_duration = Histogram(
            "http_request_duration_seconds",
            "Time from a request's first byte to its response's last, in seconds.",
            ["method", "route"],
            namespace=NAMESPACE,
            buckets=HTTP_BUCKETS,
            registry=registry,
        )
        self.received = Counter(
            "http_request_bytes",
            "Request body bytes received.",
            ["method", "route"],
            namespace=NAMESPACE,
            registry=registry,
        )
        self.sent = Counter(
            "http_response_bytes",
            "Response body bytes sent.",
            ["method", "route"],
            namespace=NAMESPACE,
            registry=registry,
        )
        self.storage_duration = Histogram(
            "storage_operation_duration_seconds",
            "Storage driver calls, in seconds (reads: until the first bytes).",
            ["driver", "operation"],
            namespace=NAMESPACE,
            buckets=CALL_BUCKETS,
            registry=registry,
        )
        self.storage_bytes = Counter(
            "storage_bytes",
            "Bytes read from and written to the storage driver.",
            ["driver", "direction"],
            namespace=NAMESPACE,
            registry=registry,
        )
        self.metadata_duration = Histogram(
            "metadata_operation_duration_seconds",
            "Metadata store calls (one transaction each), in seconds.",
            ["operation"],
            namespace=NAMESPACE,
            buckets=CALL_BUCKETS,
            registry=registry,
        )
        self.uploads = Gauge(
            "uploads_in_progress",
            "Uploads being written to storage now, in every worker.",
            namespace=NAMESPACE,
            multiprocess_mode="livesum",
            registry=registry,
        )
        self.cache_lookups = Counter(
            "cache_lookups",
            "Cached entries looked up: result is hit (the cache answered) or miss (the "
            "source of truth did), by cache (redis, memory) and kind of entry.",
            ["cache", "kind", "result"],
            namespace=NAMESPACE,
            registry=registry,
        )
        # Notifications (counted by ``dockyard.events.delivery``, through ``EventMetrics``).
        self.notification_depth = Gauge(
            "notification_queue_depth",
            "Events waiting for delivery to each endpoint.",
            ["endpoint"],
            namespace=NAMESPACE,
            # Whichever worker sends for the endpoint wrote the latest value.
            multiprocess_mode="livemostrecent",
            registry=registry,
        )
        self.notification_deliveries = Counter(
            "notification_deliveries",
            "Delivery attempts, by endpoint and HTTP status (error: no response).",
            ["endpoint", "status"],
            namespace=NAMESPACE,
            registry=registry,
        )
        self.notification_failures = Counter(
            "notification_failures",
            "Failed delivery attempts, by endpoint and HTTP status (error: no response).",
            ["endpoint", "status"],
            namespace=NAMESPACE,
            registry=registry,
        )
        self.notification_events = Counter(
            "notification_events",
            "Events delivered, by endpoint.",
            ["endpoint"],
            namespace=NAMESPACE,
            registry=registry,
        )
        self._children: dict[tuple[str, str, int], tuple[Counter, Histogram, Counter, Counter]] = {}

    def observe_request(self, record: RequestRecord) -> None:
        """The request observer (see ``accesslog.RequestLog``)."""
        method = record.method if record.method in _METHODS else "other"
        route = record.route or UNMATCHED
        key = (method, route, record.status)
        children = self._children.get(key)
        if children is None:
            # Looking labelled children up costs more than counting: keep them (a few hundred
            # at most: routes x methods x statuses).
            children = self._children[key] = (
                self.requests.labels(method, route, str(record.status)),
                self.request_duration.labels(method, route),
                self.received.labels(method, route),
                self.sent.labels(method, route),
            )
        requests, duration, received, sent = children
        requests.inc()
        duration.observe(record.duration)
        if record.received:
            received.inc(record.received)
        if record.sent:
            sent.inc(record.sent)

    def cache_stats(self, cache: str) -> CacheCounts:
        """The hit and miss counts of the cache named ``cache``."""
        return CacheCounts(self.cache_lookups, cache)

    def exposition(self) -> bytes:
        """The text exposition format: every worker's samples in multiprocess mode."""
        if self.multiprocess is None:
            return generate_latest(self.registry)
        _forget_dead_workers(self.multiprocess)
        merged = CollectorRegistry()
        MultiProcessCollector(merged, path=self.multiprocess)  # type: ignore[no-untyped-call]
        return generate_latest(merged)

    def close(self) -> None:
        """This process stops serving: its gauges no longer count."""
        if self.multiprocess is not None:
            mark_process_dead(os.getpid(), self.multiprocess)  # type: ignore[no-untyped-call]


class CacheCounts:
    """``CacheStats`` (see ``dockyard.cache.stats``) counting into ``cache_lookups_total``."""

    def __init__(self, counter: Counter, cache: str) -> None:
        self._counter = counter
        self._cache = cache
        self._children: dict[tuple[str, bool], Counter] = {}

    def lookup(self, kind: str, hit: bool) -> None:
        child = self._children.get((kind, hit))
        if child is None:
            result = "hit" if hit else "miss"
            child = self._children[kind, hit] = self._counter.labels(self._cache, kind, result)
        child.inc()


def _forget_dead_workers(directory: str) -> None:
    """Drop the live gauges of workers that died without closing (killed, crashed): their
    uploads are not in progress any more. Counters and histograms keep every worker's."""
    for path in glob.glob(os.path.join(directory, "gauge_live*.db")):
        match = _LIVE_GAUGE_FILE.search(path)
        if match is None:
            continue
        pid = int(match[1])
        if not _alive(pid):
            mark_process_dead(pid, directory)  # type: ignore[no-untyped-call]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
