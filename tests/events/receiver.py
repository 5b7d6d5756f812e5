"""A real HTTP notification endpoint for tests: records every envelope it accepts, and can be
told to refuse with a status for a while; and a black hole that accepts TCP and never answers."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Received:
    headers: dict[str, str]
    body: dict[str, Any]


@dataclass
class Receiver:
    url: str
    status: int = 200
    """What to answer; envelopes are recorded only when it is 2xx."""
    accepted: list[Received] = field(default_factory=list)
    refused: list[int] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def events(self) -> list[dict[str, Any]]:
        """Every accepted event, in arrival order, repeats (same id) dropped."""
        seen: set[str] = set()
        out = []
        with self.lock:
            envelopes = list(self.accepted)
        for envelope in envelopes:
            for event in envelope.body["events"]:
                if event["id"] not in seen:
                    seen.add(event["id"])
                    out.append(event)
        return out

    def wait_for(
        self, predicate: Callable[[list[dict[str, Any]]], bool], timeout: float = 20.0
    ) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while True:
            events = self.events()
            if predicate(events):
                return events
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out; received {json.dumps(events, indent=1)}")
            time.sleep(0.05)

    def wait_count(self, count: int, timeout: float = 20.0) -> list[dict[str, Any]]:
        return self.wait_for(lambda events: len(events) >= count, timeout)


@contextlib.contextmanager
def post_server(
    answer: Callable[[dict[str, str], bytes], int], host: str = "127.0.0.1", path: str = "/events"
) -> Iterator[str]:
    """A threaded HTTP server on a free loopback port whose POSTs get the status ``answer``
    returns for their headers and body; yields its URL (with ``host`` in it)."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            data = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            self.send_response(answer(dict(self.headers.items()), data))
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://{host}:{server.server_address[1]}{path}"
    finally:
        server.shutdown()
        server.server_close()


@contextlib.contextmanager
def receiver() -> Iterator[Receiver]:
    state = Receiver(url="")

    def answer(headers: dict[str, str], data: bytes) -> int:
        status = state.status
        with state.lock:
            if 200 <= status < 300:
                state.accepted.append(Received(headers, json.loads(data)))
            else:
                state.refused.append(status)
        return status

    with post_server(answer) as url:
        state.url = url
        yield state


@contextlib.contextmanager
def black_hole() -> Iterator[str]:
    """A URL whose TCP connections are accepted (by the kernel's backlog) and never answered."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/events"
    finally:
        sock.close()
