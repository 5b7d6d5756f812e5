"""Whose forwarding headers are believed: ``resolve_origin``, and the middleware's scope."""

from __future__ import annotations

import ipaddress

import pytest
from starlette.types import Message, Receive, Scope, Send

from dockyard.api.middleware import Origin, TrustedProxies, resolve_origin

TRUSTED = [ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("2001:db8:1::/48")]


def _headers(**values: str) -> list[tuple[bytes, bytes]]:
    return [(k.replace("_", "-").lower().encode(), v.encode()) for k, v in values.items()]


@pytest.mark.parametrize(
    ("peer", "headers", "expected"),
    [
        # Not a proxy of ours: its headers are nobody's word.
        ("192.0.2.1", _headers(x_forwarded_for="10.0.0.9"), Origin("192.0.2.1")),
        ("192.0.2.1", _headers(forwarded="for=1.2.3.4;proto=https"), Origin("192.0.2.1")),
        # A trusted proxy without forwarding headers is the client itself.
        ("10.0.0.1", [], Origin("10.0.0.1")),
        # The first untrusted hop from the nearest one is the client; what lies left of it is
        # whatever that client claimed.
        ("10.0.0.1", _headers(x_forwarded_for="6.6.6.6, 198.51.100.7"), Origin("198.51.100.7")),
        (
            "10.0.0.1",
            _headers(x_forwarded_for="198.51.100.7, 10.2.3.4", x_forwarded_proto="https"),
            Origin("198.51.100.7", "https"),
        ),
        (
            "10.0.0.1",
            _headers(x_forwarded_for="198.51.100.7:5555", x_forwarded_host="reg.example:8443"),
            Origin("198.51.100.7", None, "reg.example:8443"),
        ),
        # The nearest proxy sets the scheme: the last value counts.
        ("10.0.0.1", _headers(x_forwarded_proto="https, http"), Origin("10.0.0.1", "http")),
        # RFC 7239, IPv6 and quoting included.
        (
            "10.0.0.1",
            _headers(forwarded='for="[2001:db8::5]:4711";proto=https;host=reg.example'),
            Origin("2001:db8::5", "https", "reg.example"),
        ),
        (
            "2001:db8:1::2",
            _headers(forwarded="for=203.0.113.5;proto=https, for=10.7.7.7;proto=http"),
            Origin("203.0.113.5", "https"),
        ),
        # Forwarded wins over X-Forwarded-*; junk is not an address, scheme or host.
        (
            "10.0.0.1",
            _headers(forwarded="for=203.0.113.5", x_forwarded_for="198.51.100.7"),
            Origin("203.0.113.5"),
        ),
        ("10.0.0.1", _headers(forwarded="for=unknown;proto=gopher"), Origin("10.0.0.1")),
        (
            "10.0.0.1",
            _headers(x_forwarded_for="not-an-ip", x_forwarded_host="evil.example/path"),
            Origin("10.0.0.1"),
        ),
        # An IPv4-mapped peer is its IPv4 address.
        ("::ffff:10.0.0.1", _headers(x_forwarded_for="198.51.100.7"), Origin("198.51.100.7")),
    ],
)
def test_resolve_origin(peer: str, headers: list[tuple[bytes, bytes]], expected: Origin) -> None:
    assert resolve_origin(peer, headers, TRUSTED) == expected


async def _seen(
    proxies: list[str], client: tuple[str, int], headers: list[tuple[bytes, bytes]]
) -> Scope:
    seen: list[Scope] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(scope)

    async def receive() -> Message:
        return {"type": "http.request"}

    async def send(message: Message) -> None:
        pass

    scope = {"type": "http", "client": client, "scheme": "http", "headers": headers}
    await TrustedProxies(app, proxies)(scope, receive, send)
    return seen[0]


async def test_the_middleware_rewrites_the_scope_for_a_trusted_proxy() -> None:
    headers = [
        (b"host", b"10.0.0.1:5000"),
        *_headers(
            x_forwarded_for="198.51.100.7",
            x_forwarded_proto="https",
            x_forwarded_host="reg.example",
        ),
    ]
    scope = await _seen(["10.0.0.0/8"], ("10.0.0.1", 4000), headers)
    assert scope["client"] == ("198.51.100.7", 0)
    assert scope["scheme"] == "https"
    assert dict(scope["headers"]) == {b"host": b"reg.example", b"x-forwarded-proto": b"https"}


async def test_the_middleware_strips_a_strangers_forwarding_headers() -> None:
    headers = [
        (b"host", b"reg:5000"),
        (b"accept", b"*/*"),
        *_headers(
            x_forwarded_for="10.0.0.1",
            x_forwarded_proto="https",
            forwarded="for=1.1.1.1",
            x_real_ip="10.0.0.2",
        ),
    ]
    for proxies in ([], ["10.0.0.0/8"]):
        scope = await _seen(proxies, ("192.0.2.1", 4000), headers)
        assert scope["client"] == ("192.0.2.1", 4000)
        assert scope["scheme"] == "http"
        assert scope["headers"] == [(b"host", b"reg:5000"), (b"accept", b"*/*")]
