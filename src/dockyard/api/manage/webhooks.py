"""``/api/v1/webhooks``: a repository's webhooks and their delivery history (repository admins;
see :mod:`dockyard.hub.webhooks`). Webhooks are addressed by id, so that no repository name
(which holds slashes) is ever taken for a path of this API."""

from __future__ import annotations

from starlette.requests import Request

from dockyard.api.manage.base import Call, Operation, Query
from dockyard.errors import EndpointUnknown, RequestInvalid, ResourceUnknown
from dockyard.hub.webhooks import (
    MAX_HISTORY,
    DeliveryOut,
    DeliveryState,
    WebhookCreate,
    WebhookOut,
    Webhooks,
    WebhookUpdate,
)

__all__ = ["OPERATIONS"]

ONE = "/webhooks/{webhook}"
STATES: tuple[DeliveryState, ...] = ("pending", "delivered", "failed")


def webhooks_of(request: Request) -> Webhooks:
    found: Webhooks | None = getattr(request.app.state, "webhooks", None)
    if found is None:
        raise EndpointUnknown(message="webhooks need auth.builtin")
    return found


def _id(call: Call) -> int:
    text = call.path("webhook")
    if not text.isascii() or not text.isdigit() or len(text) > 18:
        raise ResourceUnknown(message=f"no webhook {text[:40]!r}")
    return int(text)


async def create_webhook(call: Call) -> WebhookOut:
    return await webhooks_of(call.request).create(call.hub, call.model(WebhookCreate))


async def list_webhooks(call: Call) -> list[WebhookOut]:
    repository = call.text("repository")
    if repository is None:
        raise RequestInvalid(message="query parameter 'repository' is required")
    return await webhooks_of(call.request).of_repository(call.hub, repository)


async def get_webhook(call: Call) -> WebhookOut:
    return await webhooks_of(call.request).get(call.hub, _id(call))


async def update_webhook(call: Call) -> WebhookOut:
    return await webhooks_of(call.request).update(call.hub, _id(call), call.model(WebhookUpdate))


async def delete_webhook(call: Call) -> None:
    await webhooks_of(call.request).delete(call.hub, _id(call))


async def list_webhook_deliveries(call: Call) -> list[DeliveryOut]:
    state = call.text("state")
    if state is not None and state not in STATES:
        raise RequestInvalid(message=f"query parameter 'state' must be one of {', '.join(STATES)}")
    limit = call.integer("limit", 50, minimum=1, maximum=MAX_HISTORY)
    return await webhooks_of(call.request).deliveries(
        call.hub,
        _id(call),
        limit=limit or 50,
        state=next((s for s in STATES if s == state), None),
    )


OPERATIONS = [
    Operation(
        "POST",
        "/webhooks",
        create_webhook,
        "Create a webhook on a repository (repository admins)",
        "webhooks",
        WebhookCreate,
        WebhookOut,
        201,
    ),
    Operation(
        "GET",
        "/webhooks",
        list_webhooks,
        "List a repository's webhooks (repository admins)",
        "webhooks",
        None,
        list[WebhookOut],
        200,
        (Query("repository", description="The repository (required)."),),
    ),
    Operation("GET", ONE, get_webhook, "Get a webhook", "webhooks", None, WebhookOut),
    Operation(
        "PATCH",
        ONE,
        update_webhook,
        "Change a webhook's name, URL, secret or active flag",
        "webhooks",
        WebhookUpdate,
        WebhookOut,
    ),
    Operation("DELETE", ONE, delete_webhook, "Delete a webhook", "webhooks", None, None, 204),
    Operation(
        "GET",
        f"{ONE}/deliveries",
        list_webhook_deliveries,
        "A webhook's deliveries, newest first, each with every attempt (time, response "
        "code, error); payloads are signed with X-Dockyard-Signature-256 when a secret is set",
        "webhooks",
        None,
        list[DeliveryOut],
        200,
        (
            Query("limit", "integer", "At most this many (default 50).", 1, MAX_HISTORY),
            Query("state", description="Only pending, delivered or failed ones."),
        ),
    ),
]
