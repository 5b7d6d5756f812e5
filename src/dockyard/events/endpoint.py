"""A Distribution notification endpoint: events POSTed as an envelope to a URL."""

from __future__ import annotations

from collections.abc import Sequence

import httpx

from dockyard.config.notifications import EndpointConfig
from dockyard.events.delivery import DeliveryFailed
from dockyard.events.endpoint_queues import consumer_name
from dockyard.events.outbox import PendingEvent

__all__ = ["ENVELOPE_MEDIA_TYPE", "HttpEndpoint"]

ENVELOPE_MEDIA_TYPE = "application/vnd.docker.distribution.events.v1+json"


def envelope(events: Sequence[PendingEvent]) -> bytes:
    # The bodies are JSON already: joined, not decoded and encoded again.
    return ('{"events":[' + ",".join(event.body for event in events) + "]}").encode()


class HttpEndpoint:
    def __init__(self, config: EndpointConfig, client: httpx.AsyncClient) -> None:
        self._config = config
        self._client = client
        self._headers = [
            (header, value) for header, values in config.headers.items() for value in values
        ]
        self._headers.append(("Content-Type", ENVELOPE_MEDIA_TYPE))

    @property
    def name(self) -> str:
        return consumer_name(self._config)

    @property
    def label(self) -> str:
        return self._config.name

    async def deliver(self, events: Sequence[PendingEvent]) -> str:
        try:
            response = await self._client.post(
                self._config.url,
                content=envelope(events),
                headers=self._headers,
                timeout=self._config.timeout,
            )
        except httpx.HTTPError as error:
            detail = str(error) or type(error).__name__
            raise DeliveryFailed("error", f"POST {self._config.url}: {detail}") from None
        status = str(response.status_code)
        # Distribution takes any 2xx or 3xx (after following redirects) as delivered.
        if not 200 <= response.status_code < 400:
            raise DeliveryFailed(status, f"POST {self._config.url}: HTTP {status}")
        return status
