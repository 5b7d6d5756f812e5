"""What every handler shares: the error envelope, request parsing, URLs and authorization."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from dockyard.auth.base import Access, AccessController, Grant, RequestInfo
from dockyard.core.registry import Registry
from dockyard.digest import Digest
from dockyard.errors import (
    BlobUploadInvalid,
    EndpointUnknown,
    RegistryError,
    SizeInvalid,
    Unavailable,
    Unsupported,
)
from dockyard.events import context as event_context
from dockyard.metadata.engine import DatabaseUnavailable
from dockyard.observability.accesslog import SUBJECT_KEY
from dockyard.reference import validate_name
from dockyard.storage.base import StorageUnavailable

__all__ = [
    "API_VERSION_HEADER",
    "Context",
    "authorize",
    "body",
    "content_length",
    "context",
    "digest_param",
    "disconnect_handler",
    "error_response",
    "http_exception_handler",
    "location",
    "registry_error_handler",
    "repository",
    "store_unavailable",
    "unavailable_handler",
    "unexpected_error_handler",
]

API_VERSION_HEADER = ("Docker-Distribution-API-Version", "registry/2.0")
RETRY_AFTER_SECONDS = 5
"""What a 503 for a database or object store out of reach asks clients to wait."""

log = logging.getLogger("dockyard.api")


@dataclass(frozen=True, slots=True)
class Context:
    """Everything a handler needs, built once by the composition root."""

    registry: Registry
    access: AccessController
    host: str | None
    relative_urls: bool


def context(request: Request) -> Context:
    ctx: Context = request.app.state.context
    return ctx


def error_response(error: RegistryError) -> Response:
    headers = dict(error.headers)
    if error.status == 405 and "Allow" not in headers:
        headers.setdefault("Allow", "GET, HEAD")
    return JSONResponse(error.envelope(), status_code=error.status, headers=headers)


async def registry_error_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RegistryError)
    return error_response(exc)


async def http_exception_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404:
        return error_response(EndpointUnknown())
    if exc.status_code == 405:
        return error_response(Unsupported(message="method not allowed"))
    error = RegistryError(message=str(exc.detail))
    return JSONResponse(error.envelope(), status_code=exc.status_code)


async def disconnect_handler(request: Request, exc: Exception) -> Response:
    # The body ended before its Content-Length: nothing was kept; the answer may not arrive.
    return error_response(BlobUploadInvalid(message="request body ended early"))


async def unavailable_handler(request: Request, exc: Exception) -> Response:
    """A database or object store out of reach: 503, and a line for the operator. Whatever
    the request began stays as it was (uploads resume, a manifest is in or not)."""
    assert isinstance(exc, DatabaseUnavailable | StorageUnavailable)
    what = "metadata database" if isinstance(exc, DatabaseUnavailable) else "blob storage"
    log.warning("%s %s: %s unavailable: %s", request.method, request.url.path, what, exc)
    return error_response(store_unavailable(what))


def store_unavailable(what: str) -> Unavailable:
    """The 503 for a store out of reach: ``what`` (the metadata database, blob storage)."""
    return Unavailable(
        message=f"{what} unavailable", headers={"Retry-After": str(RETRY_AFTER_SECONDS)}
    )


async def unexpected_error_handler(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return JSONResponse(RegistryError().envelope(), status_code=500)


def repository(request: Request) -> str:
    name: str = request.path_params["name"]
    return validate_name(name)


def digest_param(text: str) -> Digest:
    return Digest.parse(text)


def content_length(request: Request) -> int | None:
    value = request.headers.get("content-length")
    if value is None:
        return None
    if not value.isdigit() or len(value) > 18:
        raise SizeInvalid(message="invalid Content-Length")
    return int(value)


def body(request: Request) -> AsyncIterator[bytes]:
    return request.stream()


async def authorize(request: Request, wanted: Sequence[Access]) -> Grant:
    info = RequestInfo(
        headers=request.headers,
        client=request.client.host if request.client else None,
        scheme=request.scope.get("scheme", "http"),
    )
    grant = await context(request).access.authorize(info, wanted)
    # For the access log: who made the request.
    request.scope[SUBJECT_KEY] = grant.subject
    # For content events: the request and actor they come from.
    event_context.bind(request, grant.subject)
    return grant


def location(request: Request, path: str) -> str:
    """A URL for a Location header: absolute unless ``http.relativeurls`` is set."""
    ctx = context(request)
    if ctx.relative_urls:
        return path
    if ctx.host:
        return ctx.host.rstrip("/") + path
    host = request.headers.get("host")
    if not host:
        return path
    scheme = request.headers.get("x-forwarded-proto") or request.url.scheme
    return f"{scheme}://{host}{path}"
