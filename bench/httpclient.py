"""A minimal HTTP/1.1 client on one keep-alive socket.

General clients cost more CPU per byte and per request than the servers under test can afford
to lose on a shared 2-core machine, so this one does only what the benchmark needs: uploads go
out with zero-copy ``socket.sendfile`` and downloads land in one reused buffer that is handed to
a sink (count or hash) without copying.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import BinaryIO

__all__ = ["Connection", "FileBody", "HttpError", "Response", "Sink"]

_RECV_SIZE = 1 << 20
_MAX_HEADER = 64 << 10
_MAX_STORED_BODY = 64 << 20

Sink = Callable[[memoryview], None]


class HttpError(Exception):
    """The peer broke the protocol, or closed the connection mid-response."""


@dataclass(frozen=True, slots=True)
class FileBody:
    """``count`` bytes of ``file`` from ``offset``, sent with ``sendfile``."""

    file: BinaryIO
    offset: int
    count: int


@dataclass(slots=True)
class Response:
    status: int
    reason: str
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    # Bytes received for the body, also when they went to a sink instead of ``body``.
    length: int = 0

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


class Connection:
    def __init__(self, host: str, port: int, timeout: float = 300.0) -> None:
        self.host = host
        self.port = port
        self.timeout = timeout
        self._sock: socket.socket | None = None
        self._buf = bytearray()
        self._recv = bytearray(_RECV_SIZE)

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        self._buf.clear()

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def request(
        self,
        method: str,
        target: str,
        headers: dict[str, str] | None = None,
        body: bytes | FileBody = b"",
        sink: Sink | None = None,
    ) -> Response:
        """Send one request and read its whole response.

        A 2xx response's body goes to ``sink`` when one is given; any other body goes into
        ``Response.body``.
        """
        reused = self._sock is not None
        try:
            return self._exchange(method, target, headers or {}, body, sink)
        except (ConnectionError, _IdleClosed):
            # The server may close an idle keep-alive connection just as we reuse it.
            self.close()
            if not reused:
                raise
            return self._exchange(method, target, headers or {}, body, sink)

    # -- sending -----------------------------------------------------------------------------

    def _connect(self) -> socket.socket:
        if self._sock is None:
            sock = socket.create_connection((self.host, self.port), timeout=self.timeout)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._sock = sock
        return self._sock

    def _exchange(
        self,
        method: str,
        target: str,
        headers: dict[str, str],
        body: bytes | FileBody,
        sink: Sink | None,
    ) -> Response:
        sock = self._connect()
        length = body.count if isinstance(body, FileBody) else len(body)
        lines = [f"{method} {target} HTTP/1.1", f"Host: {self.host}:{self.port}"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        if length or method in ("POST", "PUT", "PATCH"):
            lines.append(f"Content-Length: {length}")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        if isinstance(body, FileBody):
            sock.sendall(head)
            sent = sock.sendfile(body.file, body.offset, body.count)
            if sent != body.count:
                raise HttpError(f"sent {sent} of {body.count} body bytes")
        else:
            sock.sendall(head + body)
        return self._read_response(method, sink)

    # -- receiving ---------------------------------------------------------------------------

    def _fill(self) -> int:
        sock = self._sock
        assert sock is not None
        n = sock.recv_into(self._recv)
        if n:
            self._buf += memoryview(self._recv)[:n]
        return n

    def _read_head(self) -> bytes:
        first = True
        while True:
            end = self._buf.find(b"\r\n\r\n")
            if end >= 0:
                head = bytes(self._buf[:end])
                del self._buf[: end + 4]
                return head
            if len(self._buf) > _MAX_HEADER:
                raise HttpError("response header too large")
            if not self._fill():
                if first and not self._buf:
                    raise _IdleClosed
                raise HttpError("connection closed inside a response header")
            first = False

    def _read_response(self, method: str, sink: Sink | None) -> Response:
        head = self._read_head().decode("latin-1").split("\r\n")
        version, _, rest = head[0].partition(" ")
        code, _, reason = rest.partition(" ")
        if not version.startswith("HTTP/1.") or not code.isdigit():
            raise HttpError(f"bad status line: {head[0]!r}")
        response = Response(int(code), reason)
        for line in head[1:]:
            name, _, value = line.partition(":")
            key = name.strip().lower()
            value = value.strip()
            previous = response.headers.get(key)
            response.headers[key] = value if previous is None else f"{previous}, {value}"

        chunks: list[bytes] = []
        # Only a success's body is the content asked for; a redirect's or an error's is kept.
        to_sink = sink if 200 <= response.status < 300 else None

        def store(data: memoryview) -> None:
            response.length += len(data)
            if to_sink is not None:
                to_sink(data)
            elif response.length > _MAX_STORED_BODY:
                raise HttpError("response body too large to keep")
            else:
                chunks.append(bytes(data))

        keep_alive = "close" not in response.headers.get("connection", "").lower()
        no_body = method == "HEAD" or response.status in (204, 304) or response.status < 200
        if no_body:
            pass
        elif "chunked" in response.headers.get("transfer-encoding", "").lower():
            self._read_chunked(store)
        elif "content-length" in response.headers:
            self._read_exact(int(response.headers["content-length"]), store)
        else:
            self._read_to_close(store)
            keep_alive = False
        response.body = b"".join(chunks)
        if not keep_alive:
            self.close()
        return response

    def _read_exact(self, count: int, store: Sink) -> None:
        if self._buf:
            take = min(count, len(self._buf))
            store(memoryview(self._buf)[:take])
            del self._buf[:take]
            count -= take
        sock = self._sock
        assert sock is not None
        view = memoryview(self._recv)
        while count > 0:
            n = sock.recv_into(view, min(count, _RECV_SIZE))
            if not n:
                raise HttpError(f"connection closed with {count} body bytes missing")
            store(view[:n])
            count -= n

    def _read_line(self) -> bytes:
        while True:
            end = self._buf.find(b"\r\n")
            if end >= 0:
                line = bytes(self._buf[:end])
                del self._buf[: end + 2]
                return line
            if len(self._buf) > _MAX_HEADER:
                raise HttpError("chunk header too long")
            if not self._fill():
                raise HttpError("connection closed inside a chunked body")

    def _read_chunked(self, store: Sink) -> None:
        while True:
            size = int(self._read_line().split(b";")[0].strip(), 16)
            if size == 0:
                while self._read_line():  # trailers end with an empty line
                    pass
                return
            self._read_exact(size, store)
            if self._read_line():
                raise HttpError("chunk not followed by CRLF")

    def _read_to_close(self, store: Sink) -> None:
        if self._buf:
            store(memoryview(self._buf))
            self._buf.clear()
        sock = self._sock
        assert sock is not None
        view = memoryview(self._recv)
        while n := sock.recv_into(view):
            store(view[:n])


class _IdleClosed(Exception):
    """The server had closed the reused connection before it answered."""
