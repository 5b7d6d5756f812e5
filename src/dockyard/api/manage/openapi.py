"""The OpenAPI 3.1 document of the management API, made from the operations table and the
pydantic models (whose JSON Schemas OpenAPI 3.1 takes as they are)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, get_args, get_origin

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from dockyard.api.manage.auth import builtin
from dockyard.api.manage.base import PREFIX, Operation
from dockyard.errors import RegistryError, error_table

__all__ = ["document", "openapi_endpoint"]

REF = "#/components/schemas/{model}"
_PARAM = re.compile(r"\{(\w+)(?::\w+)?\}")
_ERRORS = {"400", "401", "403", "404", "409", "429"}


def _models(operations: Sequence[Operation]) -> list[type[BaseModel]]:
    found: dict[str, type[BaseModel]] = {}
    for op in operations:
        for kind in (op.body, op.response):
            if get_origin(kind) is list:
                kind = get_args(kind)[0]
            if isinstance(kind, type) and issubclass(kind, BaseModel):
                found[kind.__name__] = kind
    return [found[name] for name in sorted(found)]


def _ref(kind: Any) -> dict[str, Any]:
    if get_origin(kind) is list:
        return {"type": "array", "items": _ref(get_args(kind)[0])}
    return {"$ref": REF.format(model=kind.__name__)}


def _error_schema() -> dict[str, Any]:
    codes = sorted({error.code for error in error_table()} | {RegistryError.code})
    return {
        "type": "object",
        "required": ["errors"],
        "properties": {
            "errors": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["code", "message"],
                    "properties": {
                        "code": {"type": "string", "enum": codes},
                        "message": {"type": "string"},
                        "detail": {},
                    },
                },
            }
        },
    }


def _operation(op: Operation) -> dict[str, Any]:
    parameters: list[dict[str, Any]] = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in _PARAM.findall(op.path)
    ]
    for query in op.query:
        schema: dict[str, Any] = {"type": query.kind}
        if query.minimum is not None:
            schema["minimum"] = query.minimum
        if query.maximum is not None:
            schema["maximum"] = query.maximum
        parameters.append(
            {
                "name": query.name,
                "in": "query",
                "required": False,
                "description": query.description,
                "schema": schema,
            }
        )
    error = {
        "description": "An error, in the registry's JSON format",
        "content": {"application/json": {"schema": {"$ref": REF.format(model="Error")}}},
    }
    responses: dict[str, Any] = {status: error for status in sorted(_ERRORS)}
    if op.response is None:
        responses[str(op.status)] = {"description": "Done"}
    elif isinstance(op.response, str):
        responses[str(op.status)] = {
            "description": "OK",
            "content": {op.response: {"schema": {"type": "string"}}},
        }
    else:
        responses[str(op.status)] = {
            "description": "OK",
            "content": {"application/json": {"schema": _ref(op.response)}},
        }
    spec: dict[str, Any] = {
        "operationId": op.operation_id,
        "summary": op.summary,
        "tags": [op.tag],
        "parameters": parameters,
        "responses": responses,
    }
    if op.anonymous:
        spec["security"] = []  # no credentials needed
    if op.body is not None:
        spec["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": _ref(op.body)}},
        }
    return spec


def document(operations: Sequence[Operation]) -> dict[str, Any]:
    """The whole document; the same operations give the same document."""
    _, schemas = models_json_schema(
        [(model, "validation") for model in _models(operations)], ref_template=REF
    )
    components: dict[str, Any] = dict(schemas.get("$defs", {}))
    components["Error"] = _error_schema()
    paths: dict[str, dict[str, Any]] = {}
    for op in operations:
        path = _PARAM.sub(r"{\1}", PREFIX + op.path)
        paths.setdefault(path, {})[op.method.lower()] = _operation(op)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Dockyard management API",
            "version": "1",
            "description": "Users, organizations, teams, repositories, permissions, tokens, "
            "robots and the audit log; storage lifecycle (immutable tags, quotas, retention "
            "policies, usage); repository webhooks and their deliveries; stars; and search "
            "over repositories. Authenticate with Basic (a password or a personal "
            "access token) or Bearer (a personal access token or a robot's token).",
        },
        "servers": [{"url": "/"}],
        "security": [{"basic": []}, {"bearer": []}],
        "components": {
            "schemas": components,
            "securitySchemes": {
                "basic": {"type": "http", "scheme": "basic"},
                "bearer": {"type": "http", "scheme": "bearer"},
            },
        },
        "paths": dict(sorted(paths.items())),
    }


def openapi_endpoint(operations: Sequence[Operation]) -> Any:
    spec = document(operations)

    async def get_openapi(request: Request) -> Response:
        builtin(request)  # 404 without auth.builtin, like the rest of the API
        return JSONResponse(spec)

    return get_openapi
