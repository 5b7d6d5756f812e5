"""``/api/v1/audit``: the audit log, a page at a time or whole as JSON lines (site admins)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import datetime

from starlette.responses import StreamingResponse

from dockyard.api.manage.base import Call, Operation, Query
from dockyard.errors import RequestInvalid
from dockyard.hub.models import AuditPage
from dockyard.identity.base import AuditFilter
from dockyard.identity.tokens import parse_moment

__all__ = ["OPERATIONS", "parse_time"]

NDJSON = "application/x-ndjson"


def parse_time(text: str, name: str = "time") -> datetime:
    """An ISO 8601 time (UTC unless a zone is given), or a lifetime back from now (``24h``)."""
    try:
        return parse_moment(text)
    except ValueError:
        raise RequestInvalid(
            message=f"invalid {name} {text[:40]!r} (expected e.g. 24h, 7d or 2025-03-01T12:00:00Z)"
        ) from None


def _where(call: Call) -> AuditFilter:
    since, until = call.text("since", limit=40), call.text("until", limit=40)
    return AuditFilter(
        since=parse_time(since, "since") if since else None,
        until=parse_time(until, "until") if until else None,
        actor=call.text("actor"),
        action=call.text("action"),
        repository=call.text("repository"),
        outcome=call.text("outcome"),
    )


async def list_audit_events(call: Call) -> AuditPage:
    return await call.hub.audit(
        _where(call),
        after=call.integer("after", None, minimum=0, maximum=2**62),
        limit=call.integer("limit", 100, minimum=1, maximum=1000) or 100,
    )


async def export_audit_events(call: Call) -> StreamingResponse:
    events = call.hub.export_audit(_where(call))

    async def lines() -> AsyncIterator[bytes]:
        async for event in events:
            yield json.dumps(event.model_dump(mode="json"), sort_keys=True).encode() + b"\n"

    return StreamingResponse(lines(), media_type=NDJSON)


_FILTERS = (
    Query("since", description="At or after: ISO 8601, or e.g. 24h for 24 hours ago."),
    Query("until", description="Before: ISO 8601, or e.g. 1h for an hour ago."),
    Query("actor", description="Only this user's events."),
    Query("action", description="Only this action (login, repository.create, ...)."),
    Query("repository", description="Only the events of this repository."),
    Query("outcome", description="Only this outcome (success, failure, denied, throttled, ...)."),
)

OPERATIONS = [
    Operation(
        "GET",
        "/audit",
        list_audit_events,
        "Query the audit log, oldest first (site admins)",
        "audit",
        None,
        AuditPage,
        200,
        (
            *_FILTERS,
            Query("after", "integer", "The `next` of the previous page.", 0),
            Query("limit", "integer", "At most this many (default 100).", 1, 1000),
        ),
    ),
    Operation(
        "GET",
        "/audit/export",
        export_audit_events,
        "Export the audit log as JSON lines, oldest first (site admins)",
        "audit",
        None,
        NDJSON,
        200,
        _FILTERS,
    ),
]
