"""Where a webhook may connect. Unless ``hub.webhooks.allowprivate`` is on, every connection
is checked when it is made: a name resolving to a loopback, private, link-local or otherwise
non-global address is refused, so DNS cannot point a webhook back inside."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterable
from typing import Any

import httpcore
import httpx

from dockyard.config.models import WebhooksConfig
from dockyard.events.webhook_address import address_allowed

__all__ = ["GuardedBackend", "webhook_client"]


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """Connects only to global addresses: the name is resolved here, every address checked,
    and the connection made to a checked address (TLS still verifies the name)."""

    def __init__(self) -> None:
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        loop = asyncio.get_running_loop()
        try:
            found = await asyncio.wait_for(
                loop.getaddrinfo(host, port, type=socket.SOCK_STREAM), timeout
            )
        except (OSError, TimeoutError) as error:
            raise httpcore.ConnectError(f"cannot resolve {host}: {error}") from None
        addresses = list(dict.fromkeys(str(info[4][0]) for info in found))
        for text in addresses:
            if not address_allowed(ipaddress.ip_address(text)):
                raise httpcore.ConnectError(
                    f"{host} resolves to {text}, a loopback, private or reserved address "
                    "(allowed only with hub.webhooks.allowprivate)"
                )
        failure: Exception = httpcore.ConnectError(f"{host} has no address")
        for text in addresses:
            try:
                return await self._inner.connect_tcp(
                    text, port, timeout, local_address, socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as error:
                failure = error
        raise failure

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("webhooks do not connect to Unix sockets")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class _GuardedTransport(httpx.AsyncHTTPTransport):
    def __init__(self) -> None:
        super().__init__(trust_env=False)
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(trust_env=False),
            max_connections=100,
            max_keepalive_connections=20,
            keepalive_expiry=5.0,
            network_backend=GuardedBackend(),
        )


def webhook_client(settings: WebhooksConfig) -> httpx.AsyncClient:
    transport = httpx.AsyncHTTPTransport(trust_env=False)
    if not settings.allowprivate:
        transport = _GuardedTransport()
    # No redirects: a webhook answers where it was configured, or not at all.
    return httpx.AsyncClient(transport=transport, trust_env=False, follow_redirects=False)
