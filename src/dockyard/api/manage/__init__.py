"""The management REST API under ``/api/v1`` (see :mod:`dockyard.hub.management` for who
may do what), described by the OpenAPI document at ``/api/v1/openapi.json``."""

from __future__ import annotations

from starlette.routing import Route

from dockyard.api.manage import (
    audit,
    lifecycle,
    organizations,
    permissions,
    readmes,
    repositories,
    robots,
    search,
    signup,
    stars,
    teams,
    tokens,
    users,
    webhooks,
)
from dockyard.api.manage.base import PREFIX, Operation, routes_of
from dockyard.api.manage.openapi import openapi_endpoint

__all__ = ["operations", "routes"]


def operations() -> list[Operation]:
    return [
        *users.OPERATIONS,
        *signup.OPERATIONS,
        *tokens.OPERATIONS,
        *organizations.OPERATIONS,
        *teams.OPERATIONS,
        *robots.OPERATIONS,
        *repositories.OPERATIONS,
        *readmes.OPERATIONS,
        *permissions.OPERATIONS,
        *audit.OPERATIONS,
        *stars.OPERATIONS,
        *search.OPERATIONS,
        *webhooks.OPERATIONS,
        *lifecycle.OPERATIONS,
    ]


def routes() -> list[Route]:
    table = operations()
    return [
        Route(f"{PREFIX}/openapi.json", openapi_endpoint(table), methods=["GET"]),
        *routes_of(table),
    ]
