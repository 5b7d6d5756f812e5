"""The request log middleware over a real Starlette app: ids, sizes, routes, subjects."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from dockyard.observability.accesslog import (
    SUBJECT_KEY,
    RequestLog,
    RequestRecord,
    access_line,
    redact_query,
)


@pytest.mark.parametrize(
    ("query", "shown"),
    [
        ("", ""),
        ("n=10&last=a", "n=10&last=a"),
        ("token=abc&n=1", "token=REDACTED&n=1"),
        ("access_token=a&refresh_token=b", "access_token=REDACTED&refresh_token=REDACTED"),
        ("password=p&client_secret=s", "password=REDACTED&client_secret=REDACTED"),
        (
            "X-Amz-Signature=f00&X-Amz-Credential=k",
            "X-Amz-Signature=REDACTED&X-Amz-Credential=REDACTED",
        ),
        ("digest=sha256:ab&mount=sha256:cd&from=x/y", "digest=sha256:ab&mount=sha256:cd&from=x/y"),
    ],
)
def test_redact_query(query: str, shown: str) -> None:
    assert redact_query(query) == shown


def app(records: list[RequestRecord]) -> Starlette:
    async def named(request: Request) -> Response:
        request.scope[SUBJECT_KEY] = "alice"
        body = await request.body()
        return JSONResponse({"got": len(body)})

    async def streamed(request: Request) -> Response:
        async def chunks() -> AsyncIterator[bytes]:
            yield b"a" * 10
            yield b"b" * 5

        return StreamingResponse(chunks())

    async def broken(request: Request) -> Response:
        raise RuntimeError("boom")

    return Starlette(
        routes=[
            Route("/v2/{name:path}/things/{ref}", named, methods=["PUT"]),
            Route("/stream", streamed),
            Route("/broken", broken),
        ],
        middleware=[Middleware(RequestLog, observers=[records.append])],
    )


async def test_each_request_is_recorded_once_with_its_id() -> None:
    records: list[RequestRecord] = []
    transport = httpx.ASGITransport(app(records), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        put = await client.put(
            "/v2/a/b/things/x?token=t", content=b"12345", headers={"X-Request-ID": "req-7"}
        )
        streamed = await client.get("/stream")
        broken = await client.get("/broken")
        missing = await client.get("/nowhere")
        forged = await client.get("/a%0A127.0.0.1 - admin [x] %22GET /secret%22 200")
    assert put.headers["X-Request-ID"] == "req-7"
    assert len(streamed.headers["X-Request-ID"]) == 36
    assert broken.status_code == 500
    assert missing.status_code == 404
    assert forged.status_code == 404
    first, second, third, fourth, fifth = records
    assert (first.request_id, first.method, first.status) == ("req-7", "PUT", 200)
    assert first.route == "/v2/{name:path}/things/{ref}"
    assert first.repository == "a/b"
    assert first.subject == "alice"
    assert (first.received, first.sent) == (5, len(put.content))
    assert first.query == "token=REDACTED"
    assert (second.route, second.sent, second.subject) == ("/stream", 15, None)
    assert (third.route, third.status) == ("/broken", 500)
    assert (fourth.route, fourth.status, fourth.repository) == (None, 404, None)
    assert all(r.duration >= 0 for r in records)
    # A decoded line break in the path cannot start a forged line.
    assert "\n" not in access_line(fifth)
    assert fifth.path == "/a%0A127.0.0.1%20-%20admin%20[x]%20%22GET%20/secret%22%20200"
    line = access_line(first)
    assert "- alice [" in line
    assert '"PUT /v2/a/b/things/x?token=REDACTED HTTP/1.1" 200 ' in line
