"""Who made the request an event comes from: bound once per request, read by the event sink.

A context variable rather than an argument through every core call: the core's methods stay
HTTP-free, and a request's task (and anything it awaits) sees the request it serves. Binding
only keeps a reference; the fields are read when an event is built, so requests that make no
event pay nothing more.
"""

from __future__ import annotations

import contextvars
from dataclasses import dataclass

from starlette.requests import Request

from dockyard.observability.logging import REQUEST_ID

__all__ = ["RequestContext", "bind", "current"]


@dataclass(frozen=True, slots=True)
class RequestContext:
    id: str
    addr: str
    host: str
    method: str
    useragent: str
    actor: str | None
    base_url: str
    """Scheme and authority for the ``url`` of event targets, e.g. ``http://host:5000``."""


@dataclass(frozen=True, slots=True)
class _Bound:
    request: Request
    actor: str | None
    request_id: str | None


_CURRENT: contextvars.ContextVar[_Bound | None] = contextvars.ContextVar(
    "dockyard_event_request", default=None
)


def bind(request: Request, actor: str | None) -> None:
    """Events made while serving ``request`` come from it, by ``actor``."""
    _CURRENT.set(_Bound(request, actor, REQUEST_ID.get()))


def current() -> RequestContext | None:
    bound = _CURRENT.get()
    if bound is None:
        return None
    request = bound.request
    client = request.client
    addr = f"{client.host}:{client.port}" if client else ""
    host = request.headers.get("host", "")
    scheme = request.headers.get("x-forwarded-proto") or request.url.scheme
    return RequestContext(
        id=bound.request_id or "",
        addr=addr,
        host=host,
        method=request.method,
        useragent=request.headers.get("user-agent", ""),
        actor=bound.actor,
        base_url=f"{scheme}://{host}" if host else "",
    )
