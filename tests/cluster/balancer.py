"""HAProxy in front of the replicas: a generated config, the process, and its view of the
backends (read from its stats page as CSV).

Every request is balanced on its own (``option http-server-close`` closes the server side after
each response, and round robin picks the next replica), so consecutive requests of one client on
one kept-alive connection alternate between replicas. Health checks are ``GET /v2/`` every
half second; a refused connection is retried on the other replica.
"""

from __future__ import annotations

import contextlib
import csv
import io
import subprocess
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx

from .services import find_binary, stop_process, wait_for_port

__all__ = ["Balancer", "haproxy", "haproxy_config"]

BACKEND = "dockyard"


def haproxy_config(port: int, stats_port: int, replicas: Sequence[tuple[str, str]]) -> str:
    """An HAProxy config listening on ``port``; ``replicas`` are ``(name, HOST:PORT)``."""
    servers = "\n".join(f"    server {name} {addr} check" for name, addr in replicas)
    return f"""\
global
    maxconn 512

defaults
    mode http
    timeout connect 2s
    timeout client 60s
    timeout server 60s
    timeout http-request 30s
    # A connection refused by a dead replica is retried, on the other one.
    retries 3
    option redispatch 1
    option http-server-close

frontend registry
    bind 127.0.0.1:{port}
    default_backend {BACKEND}

backend {BACKEND}
    balance roundrobin
    option httpchk GET /v2/
    http-check expect status 200
    default-server inter 500ms fastinter 200ms downinter 500ms fall 2 rise 1
{servers}

listen stats
    bind 127.0.0.1:{stats_port}
    stats enable
    stats uri /stats
"""


@dataclass(frozen=True)
class Balancer:
    url: str
    stats_url: str

    def states(self) -> dict[str, str]:
        """Each replica's status as HAProxy sees it (``UP``, ``DOWN``, ``UP 1/2``...)."""
        response = httpx.get(f"{self.stats_url};csv", timeout=5)
        response.raise_for_status()
        rows = csv.DictReader(io.StringIO(response.text.lstrip("# ")))
        return {
            row["svname"]: row["status"]
            for row in rows
            if row["pxname"] == BACKEND and row["svname"] not in ("FRONTEND", "BACKEND")
        }

    def wait_until(self, wanted: dict[str, str], timeout: float = 15.0) -> None:
        """Wait until the named replicas have the wanted status (``UP`` or ``DOWN``)."""
        deadline = time.monotonic() + timeout
        states = self.states()
        while time.monotonic() < deadline:
            if all(states.get(name) == status for name, status in wanted.items()):
                return
            time.sleep(0.1)
            states = self.states()
        raise TimeoutError(f"HAProxy backends are {states}, not {wanted}")


@contextlib.contextmanager
def haproxy(
    port: int, stats_port: int, replicas: Sequence[tuple[str, str]], workdir: Path
) -> Iterator[Balancer]:
    binary = find_binary("haproxy")
    assert binary is not None, "haproxy is not installed"
    workdir.mkdir(parents=True, exist_ok=True)
    config = workdir / "haproxy.cfg"
    config.write_text(haproxy_config(port, stats_port, replicas))
    with (workdir / "haproxy.log").open("ab") as log:
        # -db: stay in the foreground, so that the process is ours to stop.
        process = subprocess.Popen(
            [binary, "-db", "-f", str(config)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
        )
    try:
        wait_for_port(process, port, "haproxy")
        balancer = Balancer(f"http://127.0.0.1:{port}", f"http://127.0.0.1:{stats_port}/stats")
        balancer.wait_until({name: "UP" for name, _ in replicas})
        yield balancer
    finally:
        stop_process(process)
