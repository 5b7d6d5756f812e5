"""Middleware around every request: the headers every response carries (the API version and
``http.headers``), and the forwarding headers of trusted proxies (``http.trustedproxies``)."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from dockyard.api.base import API_VERSION_HEADER

__all__ = ["Origin", "StaticHeaders", "TrustedProxies", "resolve_origin"]


class StaticHeaders:
    """Pure ASGI middleware (cheaper than ``BaseHTTPMiddleware`` on the hot path)."""

    def __init__(self, app: ASGIApp, headers: Mapping[str, Sequence[str]]) -> None:
        self.app = app
        extra = [
            (name.lower().encode("latin-1"), value.encode("latin-1"))
            for name, values in headers.items()
            for value in values
        ]
        version = (API_VERSION_HEADER[0].lower().encode(), API_VERSION_HEADER[1].encode())
        self.headers = [version, *extra]
        self.names = {name for name, _ in self.headers}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = [h for h in message.get("headers", []) if h[0] not in self.names]
                message["headers"] = [*present, *self.headers]
            await send(message)

        await self.app(scope, receive, send_with_headers)


_FORWARDED = b"forwarded"
_XFF = b"x-forwarded-for"
_XF_PROTO = b"x-forwarded-proto"
_XF_HOST = b"x-forwarded-host"
_PROXY_HEADERS = frozenset({_FORWARDED, _XFF, _XF_PROTO, _XF_HOST, b"x-real-ip"})
_SCHEMES = frozenset({"http", "https"})
# A Host value: a name or IPv4 address, or a bracketed IPv6 address, and an optional port.
_HOST = re.compile(r"(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?")

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True, slots=True)
class Origin:
    """Where a request really came from, as far as the proxies in front can be believed."""

    client: str | None
    scheme: str | None = None
    host: str | None = None


@dataclass(frozen=True, slots=True)
class _Hop:
    client: str | None
    scheme: str | None
    host: str | None


def _address(text: str) -> str | None:
    """The IP address in a ``for=`` or ``X-Forwarded-For`` entry (port and brackets removed),
    or None for ``unknown``, an obfuscated identifier or garbage."""
    text = text.strip().strip('"')
    if text.startswith("["):
        text = text[1:].partition("]")[0]
    elif text.count(":") == 1:
        text = text.partition(":")[0]
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return None


def _scheme(text: str | None) -> str | None:
    if text is None:
        return None
    text = text.strip().strip('"').lower()
    return text if text in _SCHEMES else None


def _host(text: str | None) -> str | None:
    if text is None:
        return None
    text = text.strip().strip('"')
    return text if _HOST.fullmatch(text) else None


def _forwarded_hops(value: str) -> list[_Hop]:
    """RFC 7239 elements, nearest proxy last. Quoted commas are rare enough to ignore."""
    hops = []
    for element in value.split(","):
        pairs: dict[str, str] = {}
        for pair in element.split(";"):
            name, _, text = pair.partition("=")
            pairs[name.strip().lower()] = text
        hops.append(
            _Hop(
                client=_address(pairs["for"]) if "for" in pairs else None,
                scheme=_scheme(pairs.get("proto")),
                host=_host(pairs.get("host")),
            )
        )
    return hops


def _x_forwarded_hops(xff: str | None, proto: str | None, host: str | None) -> list[_Hop]:
    """``X-Forwarded-For`` entries, nearest proxy last; the scheme and host, which proxies set
    rather than append to, go with the nearest one (the last value)."""
    entries = [entry for entry in (xff or "").split(",") if entry.strip()]
    scheme = _scheme(proto.split(",")[-1]) if proto else None
    forwarded_host = _host(host.split(",")[-1]) if host else None
    hops = [_Hop(_address(entry), None, None) for entry in entries]
    if not hops:
        return [_Hop(None, scheme, forwarded_host)]
    last = hops[-1]
    hops[-1] = _Hop(last.client, scheme, forwarded_host)
    return hops


def resolve_origin(
    peer: str | None, headers: Sequence[tuple[bytes, bytes]], trusted: Sequence[Network]
) -> Origin:
    """The client address, scheme and host of a request that reached us from ``peer``.

    The one place that decides whose word is taken: the forwarding headers count only when
    ``peer`` is a trusted proxy, and then, walking from the nearest hop outwards, only as far
    as the hops are trusted proxies themselves; the first address that is not one is the
    client. A client cannot pass itself off as another address by sending the headers."""
    if peer is None or not _is_trusted(peer, trusted):
        return Origin(peer)
    values: dict[bytes, list[str]] = {}
    for name, value in headers:
        if name in _PROXY_HEADERS:
            values.setdefault(name, []).append(value.decode("latin-1"))
    if _FORWARDED in values:
        hops = _forwarded_hops(",".join(values[_FORWARDED]))
    elif _XFF in values or _XF_PROTO in values or _XF_HOST in values:
        hops = _x_forwarded_hops(
            ",".join(values.get(_XFF, [])) or None,
            ",".join(values.get(_XF_PROTO, [])) or None,
            ",".join(values.get(_XF_HOST, [])) or None,
        )
    else:
        return Origin(peer)
    client, scheme, host = peer, None, None
    for hop in reversed(hops):
        # This hop's proxy is trusted: what it says about its own request is believed.
        scheme = hop.scheme or scheme
        host = hop.host or host
        if hop.client is None:
            break
        client = hop.client
        if not _is_trusted(client, trusted):
            break
    return Origin(client, scheme, host)


def _is_trusted(address: str, trusted: Sequence[Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return any(ip in network for network in trusted)


class TrustedProxies:
    """Pure ASGI middleware, outermost: after it, ``scope["client"]``, ``scope["scheme"]`` and
    the ``Host`` header are the believed ones, for everything inside (access and audit logs,
    login limits, generated URLs). The forwarding headers are removed, except
    ``X-Forwarded-Proto`` rewritten to the believed scheme, so nothing inside can read a
    client's unvouched word."""

    def __init__(self, app: ASGIApp, proxies: Sequence[str]) -> None:
        self.app = app
        self.trusted = [ipaddress.ip_network(proxy, strict=False) for proxy in proxies]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers: list[tuple[bytes, bytes]] = scope.get("headers", [])
        client = scope.get("client")
        peer = client[0] if client else None
        origin = resolve_origin(peer, headers, self.trusted) if self.trusted else Origin(peer)
        kept = [(name, value) for name, value in headers if name not in _PROXY_HEADERS]
        if origin.host is not None:
            kept = [(name, value) for name, value in kept if name != b"host"]
            kept.append((b"host", origin.host.encode("latin-1")))
        if origin.scheme is not None:
            kept.append((_XF_PROTO, origin.scheme.encode("latin-1")))
        scope = dict(scope, headers=kept)
        if origin.client != peer:
            scope["client"] = (origin.client, 0)
        if origin.scheme is not None:
            scope["scheme"] = origin.scheme
        await self.app(scope, receive, send)
