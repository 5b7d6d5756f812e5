"""The metrics: what a request adds, and the sum over worker processes in multiprocess mode."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from dockyard.observability import MULTIPROC_ENV
from dockyard.observability.accesslog import RequestRecord
from dockyard.observability.metrics import Metrics

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def samples(text: bytes) -> Samples:
    found: Samples = {}
    for family in text_string_to_metric_families(text.decode()):
        for sample in family.samples:
            found[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return found


def request(**fields: object) -> RequestRecord:
    base: dict[str, object] = {
        "request_id": "r",
        "method": "GET",
        "path": "/v2/",
        "query": "",
        "route": "/v2/",
        "repository": None,
        "status": 200,
        "received": 0,
        "sent": 2,
        "duration": 0.003,
        "subject": None,
        "client": "127.0.0.1",
        "protocol": "HTTP/1.1",
        "user_agent": None,
        "started": 0.0,
    }
    base.update(fields)
    return RequestRecord(**base)  # type: ignore[arg-type]


def test_requests_by_route_method_and_status() -> None:
    assert MULTIPROC_ENV not in os.environ
    metrics = Metrics()
    metrics.observe_request(request())
    metrics.observe_request(request(status=401, sent=10))
    metrics.observe_request(request(method="BREW", route=None, status=404, received=7))
    found = samples(metrics.exposition())
    total = "dockyard_http_requests_total"
    assert found[(total, frozenset({("method", "GET"), ("route", "/v2/"), ("status", "200")}))] == 1
    assert found[(total, frozenset({("method", "GET"), ("route", "/v2/"), ("status", "401")}))] == 1
    unmatched = frozenset({("method", "other"), ("route", "unmatched"), ("status", "404")})
    assert found[(total, unmatched)] == 1
    sent = ("dockyard_http_response_bytes_total", frozenset({("method", "GET"), ("route", "/v2/")}))
    assert found[sent] == 12
    count = "dockyard_http_request_duration_seconds_count"
    assert found[(count, frozenset({("method", "GET"), ("route", "/v2/")}))] == 2
    bucket = "dockyard_http_request_duration_seconds_bucket"
    assert found[(bucket, frozenset({("method", "GET"), ("route", "/v2/"), ("le", "0.001")}))] == 0
    assert found[(bucket, frozenset({("method", "GET"), ("route", "/v2/"), ("le", "0.005")}))] == 2


WORKER = textwrap.dedent(
    """
    import sys
    from dockyard.observability.accesslog import RequestRecord
    from dockyard.observability.metrics import Metrics
    metrics = Metrics()
    for _ in range(int(sys.argv[1])):
        metrics.observe_request(RequestRecord(
            "r", "GET", "/v2/", "", "/v2/", None, 200, 0, 2, 0.01, None, None, "HTTP/1.1",
            None, 0.0))
    metrics.uploads.inc(int(sys.argv[2]))
    if sys.argv[3] == "close":
        metrics.close()
    """
)


def test_workers_files_are_summed_and_dead_workers_uploads_forgotten(tmp_path: Path) -> None:
    env = {**os.environ, MULTIPROC_ENV: str(tmp_path)}
    for count, uploads, ending in ((3, 1, "close"), (4, 2, "exit")):
        subprocess.run(
            [sys.executable, "-c", WORKER, str(count), str(uploads), ending],
            env=env,
            check=True,
            timeout=60,
        )
    reader = textwrap.dedent(
        """
        import sys
        from dockyard.observability.metrics import Metrics
        sys.stdout.write(Metrics().exposition().decode())
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", reader], env=env, check=True, capture_output=True, timeout=60
    )
    found = samples(done.stdout)
    labels = frozenset({("method", "GET"), ("route", "/v2/"), ("status", "200")})
    assert found[("dockyard_http_requests_total", labels)] == 7
    # Both writers are gone: one said so, the other's process no longer exists.
    assert found.get(("dockyard_uploads_in_progress", frozenset()), 0.0) == 0
