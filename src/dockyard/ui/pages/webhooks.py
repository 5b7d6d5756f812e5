"""A repository's webhooks page: its webhooks with their latest deliveries (every attempt's
time, status and error), a form to add one, and switching one off or on, or deleting it.
Everything goes through :class:`dockyard.hub.webhooks.Webhooks`, as the management API does,
so only the repository's admins get here."""

from __future__ import annotations

from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import Response

from dockyard.errors import RegistryError
from dockyard.events.webhook_payload import SIGNATURE_HEADER
from dockyard.hub.management import Management
from dockyard.hub.webhooks import WebhookCreate, WebhookOut, Webhooks, WebhookUpdate
from dockyard.ui.state import Ui
from dockyard.ui.web import PageError, Viewer, field_text, form, redirect, render, require_user

__all__ = ["webhook_create", "webhook_delete", "webhook_toggle", "webhooks_page"]

RECENT = 10


def _service(request: Request) -> Webhooks:
    found: Webhooks | None = getattr(request.app.state, "webhooks", None)
    if found is None:
        raise PageError(404, "Webhooks are not available here.")
    return found


def _manage(request: Request, ui: Ui, viewer: Viewer) -> Management:
    require_user(request, viewer)
    return ui.management(viewer.principal, viewer.client)


def _url(name: str) -> str:
    return f"/r/{name}/-/webhooks"


async def _page(
    request: Request,
    ui: Ui,
    viewer: Viewer,
    error: str | None = None,
    status: int = 200,
) -> Response:
    manage = _manage(request, ui, viewer)
    hooks = _service(request)
    name = request.path_params["name"]
    listed = await hooks.of_repository(manage, name)
    recent = {hook.id: await hooks.deliveries(manage, hook.id, limit=RECENT) for hook in listed}
    context = {
        "repository": name,
        "webhooks": listed,
        "deliveries": recent,
        "error": error,
        "signature_header": SIGNATURE_HEADER,
    }
    return render(request, viewer, "webhooks.html", context, status=status)


async def webhooks_page(request: Request, ui: Ui, viewer: Viewer) -> Response:
    return await _page(request, ui, viewer)


async def webhook_create(request: Request, ui: Ui, viewer: Viewer) -> Response:
    manage = _manage(request, ui, viewer)
    data = await form(request, viewer)
    name = request.path_params["name"]
    try:
        spec = WebhookCreate(
            repository=name,
            name=field_text(data, "name", 100),
            url=field_text(data, "url", 2048),
            secret=field_text(data, "secret", 255) or None,
            active=data.get("active") == "on",
        )
        await _service(request).create(manage, spec)
    except ValidationError:
        return await _page(request, ui, viewer, "Give the webhook a name and a URL.", 400)
    except RegistryError as failed:
        if failed.status == 404:
            raise
        return await _page(request, ui, viewer, failed.text, failed.status)
    return redirect(request, viewer, _url(name))


async def _own(request: Request, manage: Management) -> WebhookOut:
    """The webhook of the path, if it is one of the path's repository."""
    text = request.path_params["webhook"]
    found = None
    if text.isascii() and text.isdigit() and len(text) <= 18:
        found = await _service(request).get(manage, int(text))
    if found is None or found.repository != request.path_params["name"]:
        raise PageError(404, "No such webhook.")
    return found


async def webhook_toggle(request: Request, ui: Ui, viewer: Viewer) -> Response:
    manage = _manage(request, ui, viewer)
    hook = await _own(request, manage)
    await _service(request).update(manage, hook.id, WebhookUpdate(active=not hook.active))
    return redirect(request, viewer, _url(hook.repository))


async def webhook_delete(request: Request, ui: Ui, viewer: Viewer) -> Response:
    manage = _manage(request, ui, viewer)
    hook = await _own(request, manage)
    await _service(request).delete(manage, hook.id)
    return redirect(request, viewer, _url(hook.repository))
