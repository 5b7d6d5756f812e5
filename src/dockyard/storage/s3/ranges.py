"""Ranged GETs read by the event loop itself, straight from the socket.

Streaming an object through boto3 costs, for every chunk, a hop to a worker thread and back,
urllib3's and http.client's layers, and GIL hand-offs between the thread's many ``recv`` calls
and the event loop's sends. Here the event loop reads the socket itself, a chunk per ``recv``,
and hands on the ``bytes`` each ``recv`` makes: no threads, no copy in user space. boto3 still
signs: the request is a presigned GET, so credentials, addressing style and endpoint stay
boto3's, with ``Range`` and ``If-Match`` sent as unsigned headers (which presigned URLs allow).

Each response has a connection of its own, closed at the end: the driver streams only ranges
large enough for a connect to be noise, and reads small ones through boto3's pooled
connections. Memory per response is bounded: reading pauses while ``queued`` chunks' worth
waits for the consumer; beyond that, the kernel's socket buffer.

The chunk size, ``chunk`` at most, follows how fast the consumer takes the bytes (``pacing``).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import socket
import ssl
import urllib.request
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from urllib.parse import urlsplit

from botocore.httpsession import get_cert_path

from dockyard.config.storage import S3_DIAL_TIMEOUT, S3_READ_TIMEOUT
from dockyard.storage.s3.bucket import OutOfRange, S3Error, S3Unavailable, error_for
from dockyard.storage.s3.client import ATTEMPTS
from dockyard.storage.s3.pacing import ChunkPacer

__all__ = ["Interrupted", "RangeStream", "SocketRanges", "proxied", "ssl_context"]

_HEAD_LIMIT = 64 * 1024
"""Status line and headers longer than this are refused; an error body is cut to it."""
_RETRY_STATUSES = frozenset({500, 502, 503, 504})
_BACKOFF = 0.1
"""Seconds before the first retry; doubled for each further one."""
_CODE = re.compile(rb"<Code>([^<]*)</Code>")
_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+)")
_MESSAGE = re.compile(rb"<Message>([^<]*)</Message>")


class Interrupted(S3Error):
    """The body stopped before its end (the connection was lost, or no byte came for a
    while): a request for the rest may succeed."""


class _Retry(Exception):
    """A failure before the response started that another attempt may not meet."""

    def __init__(self, error: S3Error) -> None:
        super().__init__(str(error))
        self.error = error


def ssl_context(scheme: str, verify: bool | str | None) -> ssl.SSLContext | None:
    """The TLS settings boto3 would use: ``verify`` False skips verification, a string names a
    CA bundle; otherwise ``AWS_CA_BUNDLE`` or botocore's default bundle."""
    if scheme != "https":
        return None
    if verify is False:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    cafile = verify if isinstance(verify, str) else os.environ.get("AWS_CA_BUNDLE")
    return ssl.create_default_context(cafile=cafile or get_cert_path(True))


def proxied(endpoint: str) -> bool:
    """Whether boto3 would reach ``endpoint`` through a proxy from the environment."""
    parts = urlsplit(endpoint)
    if parts.scheme not in urllib.request.getproxies():
        return False
    return not urllib.request.proxy_bypass(parts.hostname or "")


class _Response(asyncio.Protocol):
    """One response: the headers, then the body as the ``bytes`` each ``recv`` makes."""

    def __init__(self, start: int, expected: int, chunk: int, queued: int, idle: float) -> None:
        self._start = start
        self._expected = expected
        self._pacer = ChunkPacer(chunk)
        self._queued = queued
        self._chunk = chunk
        self._limit = queued * chunk
        """Body bytes waiting for the consumer at which reading pauses."""
        self._sized = False
        """Whether each recv reads up to a chunk (a plain socket's selector transport; TLS
        reads in sizes of its own and keeps the largest chunks' room)."""
        self._idle = idle
        """Seconds the consumer waits for data before the response fails."""
        self._head = b""
        self._remaining = -1
        """Body bytes still to come; -1 while reading headers."""
        self._error_status = 0
        """The status of an error response whose body is being read, else 0."""
        self._waiting = 0
        self.chunks: deque[bytes] = deque()
        self.failure: BaseException | None = None
        self.finished = False
        self.etag: str | None = None
        """The object's ETag, from the response headers."""
        self._loop = asyncio.get_running_loop()
        self.head: asyncio.Future[None] = self._loop.create_future()
        self._waiter: asyncio.Future[None] | None = None
        self._transport: asyncio.Transport | None = None
        self._watchdog: asyncio.TimerHandle | None = None
        self._socket: socket.socket | None = None
        self._paused = False

    # -- protocol callbacks ------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        # Whole chunks from each recv, into the bytes object the consumer gets (no copy):
        # the selector transport reads at most ``max_size`` at a time (256 KiB by default),
        # and SO_RCVLOWAT holds back readiness until a chunk's worth has arrived. Both are
        # best effort; without them chunks are smaller. Plain sockets only: TLS decrypts into
        # buffers of its own, and bytes held there would leave the low-water mark out of reach.
        sock = transport.get_extra_info("socket")
        if hasattr(transport, "max_size") and transport.get_extra_info("sslcontext") is None:
            self._sized = True
            setattr(transport, "max_size", self._chunk)  # noqa: B010
            self._resize(self._pacer.first())
            if sock is not None and hasattr(socket, "SO_RCVLOWAT"):
                self._socket = sock  # raised once the headers are in

    def data_received(self, data: bytes) -> None:
        if self._error_status:
            self._head += data
            if len(self._head) >= min(self._remaining, _HEAD_LIMIT) and self._transport:
                self._transport.close()  # connection_lost reports the error
        elif self._remaining < 0:
            self._head += data
            self._headers()
        else:
            self._body(data)

    def eof_received(self) -> bool | None:
        return None  # close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None
        self._socket = None
        if self._error_status:
            self._fail_status()
        elif not self.finished:
            if self._remaining < 0:
                closed = S3Unavailable("S3 GetObject: connection closed before the body")
                self._fail(_Retry(closed))
            else:
                received = self._expected - self._remaining
                self._fail(
                    Interrupted(f"S3 GetObject: connection closed after {received} body bytes")
                )

    # -- parsing -----------------------------------------------------------------------------

    def _headers(self) -> None:
        end = self._head.find(b"\r\n\r\n")
        if end < 0:
            if len(self._head) >= _HEAD_LIMIT:
                self._fail(S3Error("S3 GetObject: response headers too long"))
            return
        lines = self._head[:end].decode("latin-1").split("\r\n")
        version, _, rest = lines[0].partition(" ")
        status_text = rest.partition(" ")[0]
        if not version.startswith("HTTP/1.") or not status_text.isdigit():
            self._fail(S3Error(f"S3 GetObject: not an HTTP response: {lines[0][:80]!r}"))
            return
        status = int(status_text)
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        length = headers.get("content-length", "")
        chunked = headers.get("transfer-encoding", "identity").lower() != "identity"
        body, self._head = self._head[end + 4 :], b""
        if status >= 300:
            # Read on to the end of the error body (or a screenful of it) for S3's code.
            self._error_status = status
            self._remaining = int(length) if length.isdigit() and not chunked else _HEAD_LIMIT
            self.data_received(body)
            return
        reach = _CONTENT_RANGE.fullmatch(headers.get("content-range", ""))
        if reach is not None and int(reach.group(3)) < self._start + self._expected:
            total = reach.group(3)
            self._fail(OutOfRange(f"S3 GetObject: the object has only {total} bytes", "416"))
            return
        first = int(reach.group(1)) if reach is not None else 0
        if (
            chunked
            or not length.isdigit()
            or int(length) != self._expected
            or first != self._start
            or (reach is None and status != 200)
        ):
            self._fail(
                S3Error(
                    f"S3 GetObject: status {status} with Content-Length {length or 'none'}"
                    f"{' (chunked)' if chunked else ''}"
                    f" and Content-Range {headers.get('content-range', 'none')}, wanted "
                    f"{self._expected} bytes from {self._start}"
                )
            )
            return
        self.etag = headers.get("etag")
        self._remaining = self._expected
        self.head.set_result(None)
        if body:
            self._body(body)
        if self._remaining > 0:
            self._low_water(min(self._chunk, self._remaining))

    def _body(self, data: bytes) -> None:
        self._remaining -= len(data)
        if self._remaining < 0:
            self._fail(S3Error("S3 GetObject: more body than Content-Length"))
            return
        self.chunks.append(data)
        self._waiting += len(data)
        if self._remaining == 0:
            self.finished = True
            if self._transport is not None:
                self._transport.close()
        elif self._remaining < self._chunk:
            self._low_water(self._remaining)  # the rest would never reach a whole chunk
        if self._waiting >= self._limit and self._transport is not None and not self._paused:
            self._transport.pause_reading()
            self._paused = True
        self._wake()

    def _resize(self, size: int) -> None:
        if size == self._chunk or not self._sized:
            return
        self._chunk = size
        self._limit = self._queued * size
        if self._transport is not None:
            setattr(self._transport, "max_size", size)  # noqa: B010
        if self._remaining > 0:
            self._low_water(min(size, self._remaining))

    def _low_water(self, size: int) -> None:
        if self._socket is not None:
            with contextlib.suppress(OSError):
                self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_RCVLOWAT, size)

    def _fail_status(self) -> None:
        body = self._head[:_HEAD_LIMIT]
        status = self._error_status
        code_match, message_match = _CODE.search(body), _MESSAGE.search(body)
        code = code_match.group(1).decode("utf-8", "replace") if code_match else str(status)
        message = message_match.group(1).decode("utf-8", "replace") if message_match else ""
        error = error_for("GetObject", code, message, status)
        self._fail(_Retry(error) if status in _RETRY_STATUSES else error)

    def _fail(self, error: BaseException) -> None:
        if self.failure is None and not self.finished:
            self.failure = error
        if not self.head.done():
            self.head.set_exception(error)
            self.head.exception()  # retrieved: the opener sees it through ``await``
        if self._transport is not None:
            self._transport.abort()
        self._wake()

    # -- the opener's and consumer's side -----------------------------------------------------

    def send(self, request: bytes) -> None:
        assert self._transport is not None, "not connected"
        self._transport.write(request)

    def _wake(self) -> None:
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _watch(self, seen: int) -> None:
        """Fail a response that the consumer has waited on for a whole period without a byte
        arriving (two, while a low-water mark may hold bytes back). One timer per period, not
        one per wait (a wait per chunk is hot)."""
        self._watchdog = None
        if self.finished or self.failure is not None:
            return
        if self._waiter is not None and seen == self._remaining:
            if self._socket is None:
                self._fail(Interrupted(f"S3 GetObject: no data for {self._idle:g} s"))
                return
            # Bytes may be trickling in below the low-water mark: take any from now on,
            # and fail only if none come in another period.
            self._low_water(1)
            self._socket = None
        self._watchdog = self._loop.call_later(self._idle, self._watch, self._remaining)

    async def next_chunk(self) -> bytes | None:
        while not self.chunks:
            if self.failure is not None:
                raise self.failure
            if self.finished:
                return None
            if self._watchdog is None:
                self._watch(-2)
            self._waiter = self._loop.create_future()
            await self._waiter
        chunk = self.chunks.popleft()
        self._waiting -= len(chunk)
        size = self._pacer.taken(len(chunk), self._loop.time())
        if size is not None:
            self._resize(size)
        if self._paused and self._waiting < self._limit and self._transport is not None:
            self._paused = False
            self._transport.resume_reading()
        return chunk

    def close(self) -> None:
        """Drop the connection of an unfinished response."""
        self.finished = True
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None
        transport, self._transport = self._transport, None
        if transport is not None:
            # Without a running loop (a generator finalised late) the socket goes with the
            # transport when collected.
            with contextlib.suppress(RuntimeError):
                transport.abort()


class RangeStream:
    """The body of one ranged GET, a chunk at a time; ``close()`` drops it unfinished."""

    def __init__(self, response: _Response) -> None:
        self._response = response

    @property
    def etag(self) -> str | None:
        """The ETag of the object read, if the store sent one."""
        return self._response.etag

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._chunks()

    async def _chunks(self) -> AsyncIterator[bytes]:
        while (chunk := await self._response.next_chunk()) is not None:
            yield chunk

    def close(self) -> None:
        self._response.close()


class SocketRanges:
    """Opens ranged GETs of presigned URLs on the running event loop."""

    def __init__(
        self,
        presign: Callable[[str], Awaitable[str]],
        ssl_context: ssl.SSLContext | None,
        *,
        chunk: int = 1 << 20,
        queued: int = 2,
        dial: float = S3_DIAL_TIMEOUT,
        timeout: float = S3_READ_TIMEOUT,
    ) -> None:
        """``dial``: seconds to connect; ``timeout``: seconds to wait for the response's head,
        and then for each further byte."""
        self._presign = presign
        self._ssl = ssl_context
        self._chunk = chunk
        self._queued = queued
        self._dial = dial
        self._timeout = timeout

    async def open(self, key: str, start: int, end: int, etag: str | None) -> RangeStream:
        """``[start, end)`` of the object at ``key`` if it still has ``etag`` (any, without
        one; the stream's ``etag`` says which it read). Raises ``Missing``, ``Changed``,
        ``OutOfRange`` or ``S3Error`` before any byte of the body is read; errors
        that another attempt may not meet (5xx, a refused or dropped connection) are retried
        with backoff, as boto3 would."""
        if not 0 <= start < end:
            raise ValueError(f"empty or negative range [{start}, {end})")
        url = await self._presign(key)
        delay = _BACKOFF
        for attempt in range(ATTEMPTS):
            try:
                return await self._open(url, start, end, etag)
            except _Retry as retry:
                if attempt == ATTEMPTS - 1:
                    raise retry.error from None
            await asyncio.sleep(delay)
            delay *= 2
        raise AssertionError("unreachable")

    async def _open(self, url: str, start: int, end: int, etag: str | None) -> RangeStream:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port or (443 if parts.scheme == "https" else 80)
        target = f"{parts.path or '/'}?{parts.query}" if parts.query else parts.path or "/"
        condition = f"If-Match: {etag}\r\n" if etag else ""
        request = (
            f"GET {target} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
            f"Range: bytes={start}-{end - 1}\r\n{condition}"
            "Accept-Encoding: identity\r\nConnection: close\r\n\r\n"
        ).encode("latin-1")
        loop = asyncio.get_running_loop()
        response = _Response(start, end - start, self._chunk, self._queued, self._timeout)
        waited = f"no connection in {self._dial:g} s"
        try:
            async with asyncio.timeout(self._dial):
                await loop.create_connection(
                    lambda: response,
                    host,
                    port,
                    ssl=self._ssl,
                    server_hostname=host if self._ssl is not None else None,
                )
            waited = f"no response in {self._timeout:g} s"
            async with asyncio.timeout(self._timeout):
                response.send(request)
                await response.head
        except TimeoutError:
            response.close()
            raise _Retry(S3Unavailable(f"S3 GetObject: {waited}")) from None
        except ssl.SSLCertVerificationError as exc:
            response.close()
            raise S3Error(f"S3 GetObject: {exc}") from None
        except OSError as exc:
            response.close()
            raise _Retry(S3Unavailable(f"S3 GetObject: {exc}")) from None
        except BaseException:
            response.close()
            raise
        return RangeStream(response)
