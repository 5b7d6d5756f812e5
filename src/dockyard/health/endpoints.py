"""The health endpoints, answered without authentication (orchestrators and load balancers
probe them), and the gate that turns other requests away while a configured check fails (or,
see ``schema.py``, until a database that was away at start-up has its schema).

    GET /debug/health   Distribution's: a JSON map of each failing check to its reason;
                        200 when the map is empty, else 503
    GET /healthz        alive: 200 while the process serves requests
    GET /readyz         ready for traffic: 200 when the database and the storage answer
                        and no configured check fails; else 503, naming what failed

While any configured check fails, every other request gets 503 ``UNAVAILABLE`` (as
Distribution answers): creating the file of a ``health.file`` check drains the node.
"""

from __future__ import annotations

from collections.abc import Callable

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from dockyard.api.base import error_response
from dockyard.errors import RegistryError, Unavailable
from dockyard.health.checks import HealthChecks

__all__ = [
    "DEBUG_HEALTH",
    "HEALTH_PATHS",
    "Gate",
    "Refusal",
    "health_refusal",
    "health_routes",
    "health_status",
]

DEBUG_HEALTH = "/debug/health"
HEALTH_PATHS = frozenset({DEBUG_HEALTH, "/healthz", "/readyz"})
DETAIL = "health check failed: please see /debug/health"


def health_status(checks: HealthChecks) -> Response:
    """Distribution's ``/debug/health`` answer."""
    failing = checks.failing()
    return JSONResponse(failing, status_code=503 if failing else 200)


def health_routes(checks: HealthChecks, readiness: HealthChecks) -> list[Route]:
    async def debug_health(request: Request) -> Response:
        return health_status(checks)

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(request: Request) -> Response:
        results = {check.name: "ok" for check in readiness.checks}
        failing = {**readiness.failing(), **checks.failing()}
        results.update(failing)
        return JSONResponse(results, status_code=503 if failing else 200)

    return [
        Route(DEBUG_HEALTH, debug_health, methods=["GET"]),
        Route("/healthz", healthz, methods=["GET", "HEAD"]),
        Route("/readyz", readyz, methods=["GET", "HEAD"]),
    ]


Refusal = Callable[[], RegistryError | None]
"""What every request but the health endpoints gets for now, or None to let it through."""


class Gate:
    """Pure ASGI middleware: while ``refusal()`` names an error, every request but the health
    endpoints gets it. A refusal reads state kept by a background task: it checks nothing
    itself."""

    def __init__(self, app: ASGIApp, refusal: Refusal) -> None:
        self.app = app
        self.refusal = refusal

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] not in HEALTH_PATHS:
            error = self.refusal()
            if error is not None:
                await error_response(error)(scope, receive, send)
                return
        await self.app(scope, receive, send)


def health_refusal(checks: HealthChecks) -> Refusal:
    """503 while a configured check fails (Distribution's answer)."""

    def refusal() -> RegistryError | None:
        return Unavailable(DETAIL) if checks.checks and checks.failing() else None

    return refusal
