"""The debug server (``http.debug.addr``): Prometheus metrics and ``/debug/health`` on a
listener of their own, kept off the registry's port.

Every worker process listens on the address with ``SO_REUSEPORT``, so the kernel hands each
scrape to one of them and the listener outlives any single worker. Whichever answers, the
metrics are the same: every worker's samples, summed (see ``observability.metrics``).
Health is the answering worker's own checks, which every worker runs alike.

A deliberately small HTTP/1.1 server (one request per connection, GET and HEAD only): it
needs no framework and cannot slow the registry's own requests down.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import TYPE_CHECKING

from dockyard.config import parse_tcp_address
from dockyard.health.checks import HealthChecks

if TYPE_CHECKING:  # prometheus-client is imported only when metrics are on
    from dockyard.observability.metrics import Metrics

__all__ = ["DebugServer"]

HEAD_LIMIT = 16 * 1024
READ_TIMEOUT = 10.0
_REASONS = {200: "OK", 404: "Not Found", 405: "Method Not Allowed", 503: "Service Unavailable"}

log = logging.getLogger("dockyard.debug")


class DebugServer:
    def __init__(
        self,
        addr: str,
        checks: HealthChecks,
        metrics: Metrics | None = None,
        metrics_path: str = "/metrics",
    ) -> None:
        self.host, self.port = parse_tcp_address(addr)
        self.checks = checks
        self.metrics = metrics
        self.metrics_path = metrics_path
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(
            self._serve,
            self.host or None,
            self.port,
            reuse_address=True,
            reuse_port=True,
            limit=HEAD_LIMIT,
        )

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._server.wait_closed(), 1.0)
            self._server = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), READ_TIMEOUT)
            method, _, rest = head.split(b"\r\n", 1)[0].decode("latin-1").partition(" ")
            path = rest.partition(" ")[0].partition("?")[0]
            status, content_type, body = await self._answer(method, path)
            writer.write(
                (
                    f"HTTP/1.1 {status} {_REASONS.get(status, '')}\r\n"
                    f"Content-Type: {content_type}\r\n"
                    f"Content-Length: {len(body)}\r\n"
                    "Connection: close\r\n\r\n"
                ).encode("latin-1")
            )
            if method != "HEAD":
                writer.write(body)
            await writer.drain()
        except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, OSError):
            pass
        except Exception:
            log.exception("debug server: request failed")
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    async def _answer(self, method: str, path: str) -> tuple[int, str, bytes]:
        if method not in ("GET", "HEAD"):
            return 405, "text/plain; charset=utf-8", b"method not allowed\n"
        if self.metrics is not None and path == self.metrics_path:
            # Reading every worker's files is file I/O: keep it off the event loop.
            body = await asyncio.to_thread(self.metrics.exposition)
            return 200, self.metrics.content_type, body
        if path == "/debug/health":
            failing = self.checks.failing()
            body = json.dumps(failing).encode()
            return (503 if failing else 200), "application/json; charset=utf-8", body
        return 404, "text/plain; charset=utf-8", b"404 page not found\n"
