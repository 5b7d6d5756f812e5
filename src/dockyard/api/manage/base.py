"""What the management API's handlers share: operations as data (the route table and the
OpenAPI document are both made from them), body and query parsing, and the call each
handler receives, holding the :class:`~dockyard.hub.management.Management` of the caller.

A handler takes a :class:`Call` and returns a pydantic model, a list of them, or None
(204); the operation's ``status`` is the success status.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, TypeAdapter, ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from dockyard.api.manage.auth import anonymous, authenticate
from dockyard.errors import Denied, RequestInvalid
from dockyard.hub.management import Management

__all__ = ["PREFIX", "Call", "Operation", "Query", "routes_of"]

PREFIX = "/api/v1"
MAX_BODY = 64 * 1024
READ_METHODS = frozenset({"GET", "HEAD"})

M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True, slots=True)
class Query:
    """A query parameter, as the OpenAPI document describes it."""

    name: str
    kind: Literal["string", "integer"] = "string"
    description: str = ""
    minimum: int | None = None
    maximum: int | None = None


@dataclass(slots=True)
class Call:
    request: Request
    hub: Management
    body: BaseModel | None = None

    def path(self, name: str) -> str:
        value: str = self.request.path_params[name]
        return value

    def model(self, kind: type[M]) -> M:
        assert isinstance(self.body, kind)
        return self.body

    def text(self, name: str, *, limit: int = 255) -> str | None:
        value = self.request.query_params.get(name)
        if value is None or value == "":
            return None
        if len(value) > limit:
            raise RequestInvalid(message=f"query parameter {name!r} is too long")
        return value

    def integer(self, name: str, default: int | None, *, minimum: int, maximum: int) -> int | None:
        value = self.request.query_params.get(name)
        if value is None or value == "":
            return default
        if not value.isascii() or not value.isdigit() or len(value) > 18:
            raise RequestInvalid(message=f"query parameter {name!r} must be a whole number")
        number = int(value)
        if not minimum <= number <= maximum:
            raise RequestInvalid(
                message=f"query parameter {name!r} must be between {minimum} and {maximum}"
            )
        return number


Handler = Callable[[Call], Awaitable[object]]


@dataclass(frozen=True, slots=True)
class Operation:
    method: str
    path: str
    """Under :data:`PREFIX`, in Starlette's syntax (``{name:path}`` for a repository)."""
    handler: Handler
    summary: str
    tag: str
    body: type[BaseModel] | None = None
    response: Any = None
    """A model, ``list[Model]``, a media type the handler streams itself, or None (204)."""
    status: int = 200
    query: Sequence[Query] = field(default_factory=tuple)
    max_body: int = MAX_BODY
    """Bytes of the request body at most (a README is longer than most)."""
    anonymous: bool = False
    """Open to callers without credentials (signing up); the handler checks the rest."""

    @property
    def operation_id(self) -> str:
        return self.handler.__name__


async def _body(request: Request, kind: type[BaseModel], limit: int = MAX_BODY) -> BaseModel:
    data = bytearray()
    async for chunk in request.stream():
        data += chunk
        if len(data) > limit:
            raise RequestInvalid(message=f"request body larger than {limit} bytes")
    try:
        parsed = json.loads(data) if data else None
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise RequestInvalid(message=f"malformed JSON: {error}"[:300]) from None
    if not isinstance(parsed, dict):
        raise RequestInvalid(message="the request body must be a JSON object")
    try:
        return kind.model_validate(parsed)
    except ValidationError as error:
        problems = [
            {
                "field": ".".join(str(part) for part in problem["loc"]),
                "problem": problem["msg"],
            }
            for problem in error.errors(include_url=False, include_input=False)[:20]
        ]
        raise RequestInvalid(message="invalid request body", detail=problems) from None


def _serialize(value: object) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, list):
        return [_serialize(item) for item in value]
    return TypeAdapter(type(value)).dump_python(value, mode="json")


def _endpoint(operation: Operation) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        login = anonymous(request) if operation.anonymous else await authenticate(request)
        if request.method not in READ_METHODS and not login.may_change:
            raise Denied(message="this token's scopes allow reading only")
        call = Call(request, login.hub)
        if operation.body is not None:
            call.body = await _body(request, operation.body, operation.max_body)
        result = await operation.handler(call)
        if isinstance(result, Response):  # a stream, made by the handler
            return result
        if operation.response is None:
            return Response(status_code=204)
        return JSONResponse(_serialize(result), status_code=operation.status)

    endpoint.__name__ = operation.operation_id
    return endpoint


def routes_of(operations: Sequence[Operation]) -> list[Route]:
    return [Route(PREFIX + op.path, _endpoint(op), methods=[op.method]) for op in operations]
