"""One pass over every request: its id, its size and duration, then an access log line and
the request metrics.

The request id is the client's ``X-Request-ID`` when it is a plain token, else a new one; it
goes back in the response's ``X-Request-ID`` and onto every log line of the request.

What is never logged: request headers (``Authorization`` above all), bodies, and the values
of query parameters that carry credentials (``token``, ``password``, ``secret``...).
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import parse_qsl, quote

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from dockyard.observability.logging import ACCESS_LOGGER, REQUEST_ID

__all__ = [
    "REQUEST_ID_HEADER",
    "SUBJECT_KEY",
    "Observer",
    "RequestLog",
    "RequestRecord",
    "access_line",
    "redact_query",
]

REQUEST_ID_HEADER = "X-Request-ID"
SUBJECT_KEY = "dockyard.subject"
"""Scope key under which authorization leaves the authenticated subject, for the log."""

_HEADER = REQUEST_ID_HEADER.lower().encode()
_CLIENT_ID = re.compile(r"[A-Za-z0-9._:/+=@-]{1,128}")
_SECRET_PARAM = re.compile(
    r"token|password|passwd|secret|signature|credential|auth|key|code", re.IGNORECASE
)
_REDACTED = "REDACTED"
CLIENT_CLOSED = 499
"""The status recorded for a request whose client left before it was answered."""


@dataclass(frozen=True, slots=True)
class RequestRecord:
    """What one request was, once it is answered (or failed)."""

    request_id: str
    method: str
    path: str
    """As the client sent it, percent-encoded."""
    query: str
    """The query string, credentials redacted."""
    route: str | None
    """The route template that matched (``/v2/{name:path}/manifests/{reference}``), if any."""
    repository: str | None
    status: int
    received: int
    sent: int
    duration: float
    """Seconds, from the first byte of the request seen to the last of the response."""
    subject: str | None
    client: str | None
    protocol: str
    user_agent: str | None
    started: float
    """Wall-clock time (epoch seconds) when the request arrived."""


Observer = Callable[[RequestRecord], None]


def redact_query(query: str) -> str:
    """``query`` with the value of every parameter whose name suggests a credential
    replaced (``token``, ``password``, ``secret``, ``X-Amz-Signature``...)."""
    if not query:
        return ""
    parts = []
    for name, value in parse_qsl(query, keep_blank_values=True):
        shown = _REDACTED if _SECRET_PARAM.search(name) else value
        parts.append(f"{quote(name, safe='')}={quote(shown, safe=':/@')}")
    return "&".join(parts)


def _request_id(scope: Scope) -> str:
    for name, value in scope.get("headers", ()):
        if name == _HEADER:
            text = str(value.decode("latin-1"))
            if _CLIENT_ID.fullmatch(text):
                return text
            break
    return str(uuid.uuid4())


def _header(scope: Scope, wanted: bytes) -> str | None:
    for name, value in scope.get("headers", ()):
        if name == wanted:
            return str(value.decode("latin-1"))
    return None


def _target(scope: Scope) -> str:
    """The path as the client sent it (percent-encoded: no space or line break can forge a
    log line), else the decoded path quoted again."""
    raw = scope.get("raw_path")
    if isinstance(raw, bytes) and raw:
        return raw.decode("latin-1").partition("?")[0]
    return quote(scope["path"], safe="/:@!$&'()*+,;=~")


def _content_length(headers: list[tuple[bytes, bytes]]) -> int:
    for name, value in headers:
        if name.lower() == b"content-length" and value.isdigit():
            return int(value)
    return 0


class RequestLog:
    """Pure ASGI middleware; ``observers`` see each finished request (the access log, the
    metrics). The id is set before the app runs, so it is on every line the app logs."""

    def __init__(self, app: ASGIApp, observers: list[Observer]) -> None:
        self.app = app
        self.observers = observers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.time()
        clock = time.perf_counter()
        request_id = _request_id(scope)
        token = REQUEST_ID.set(request_id)
        received = sent = status = 0
        length = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
            return message

        async def observing_send(message: Message) -> None:
            nonlocal sent, status, length
            kind = message["type"]
            if kind == "http.response.start":
                status = message["status"]
                headers = [h for h in message.get("headers", []) if h[0].lower() != _HEADER]
                headers.append((_HEADER, request_id.encode("latin-1")))
                message["headers"] = headers
                length = _content_length(headers)
            elif kind == "http.response.body":
                sent += len(message.get("body", b""))
            elif kind in ("http.response.pathsend", "http.response.zerocopysend"):
                # The file goes out whole, as the Content-Length header says.
                sent += length
            await send(message)

        try:
            await self.app(scope, counting_receive, observing_send)
        except asyncio.CancelledError:
            if not status:
                status = CLIENT_CLOSED  # the client went away before an answer
            raise
        except BaseException:
            if not status:
                status = 500
            raise
        finally:
            REQUEST_ID.reset(token)
            route = scope.get("route")
            params = scope.get("path_params") or {}
            repository = params.get("name")
            record = RequestRecord(
                request_id=request_id,
                method=scope["method"],
                path=_target(scope),
                query=redact_query(scope.get("query_string", b"").decode("latin-1")),
                route=getattr(route, "path", None),
                repository=repository if isinstance(repository, str) else None,
                status=status,
                received=received,
                sent=sent,
                duration=time.perf_counter() - clock,
                subject=scope.get(SUBJECT_KEY),
                client=(scope.get("client") or (None,))[0],
                protocol=f"HTTP/{scope.get('http_version', '1.1')}",
                user_agent=_header(scope, b"user-agent"),
                started=started,
            )
            for observe in self.observers:
                observe(record)


_access = logging.getLogger(ACCESS_LOGGER)


def access_line(record: RequestRecord) -> str:
    """Combined Log Format (without the referer, which may hold a credential)."""
    when = time.strftime("%d/%b/%Y:%H:%M:%S %z", time.localtime(record.started))
    target = f"{record.path}?{record.query}" if record.query else record.path
    agent = (record.user_agent or "-").replace('"', "'")
    return (
        f"{record.client or '-'} - {record.subject or '-'} [{when}] "
        f'"{record.method} {target} {record.protocol}" {record.status} {record.sent} '
        f'"-" "{agent}"'
    )


def log_access(record: RequestRecord) -> None:
    """The access log's observer: one line per request."""
    if not _access.isEnabledFor(logging.INFO):
        return
    fields = {
        "request_id": record.request_id,
        "method": record.method,
        "route": record.route,
        "repository": record.repository,
        "status": record.status,
        "bytes_received": record.received,
        "bytes_sent": record.sent,
        "duration_ms": round(record.duration * 1000, 3),
        "user": record.subject,
        "client": record.client,
    }
    _access.info(
        "%s",
        access_line(record),
        extra={"fields": {k: v for k, v in fields.items() if v is not None}},
    )
