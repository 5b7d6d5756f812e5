"""Headers every response carries: the API version and ``http.headers`` from the config."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from dockyard.api.base import API_VERSION_HEADER

__all__ = ["StaticHeaders"]


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
