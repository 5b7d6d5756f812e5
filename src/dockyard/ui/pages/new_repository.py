"""Creating a repository: the form, and what it posts (with an optional README)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from dockyard.errors import RegistryError
from dockyard.hub.readmes import MAX_README
from dockyard.ui.pages.repository_common import repository_path, visibility_name
from dockyard.ui.state import Ui
from dockyard.ui.web import Viewer, field_text, form, redirect, render, require_user

__all__ = ["create", "create_form"]


async def _namespaces(ui: Ui, viewer: Viewer) -> list[str]:
    """Where the viewer may create repositories: its own namespace and the organizations it
    owns (administrators may also type any other)."""
    principal = viewer.principal
    assert principal is not None
    owned = sorted(org for org, role in principal.organizations.items() if role.value == "owner")
    return [principal.name, *owned]


async def create_form(request: Request, ui: Ui, viewer: Viewer) -> Response:
    require_user(request, viewer)
    return render(
        request,
        viewer,
        "new_repository.html",
        {
            "namespaces": await _namespaces(ui, viewer),
            "values": {
                "namespace": request.query_params.get("namespace", ""),
                "visibility": ui.settings.default_visibility.value,
            },
            "error": None,
        },
    )


async def create(request: Request, ui: Ui, viewer: Viewer) -> Response:
    principal = require_user(request, viewer)
    data = await form(request, viewer)
    values = {
        "namespace": field_text(data, "namespace", 64),
        "name": field_text(data, "name", 200),
        "visibility": field_text(data, "visibility", 16),
        "description": field_text(data, "description", 4096),
        "readme": field_text(data, "readme", MAX_README),
    }
    full = f"{values['namespace']}/{values['name']}" if values["namespace"] else values["name"]
    if values["visibility"] not in ("public", "private"):
        values["visibility"] = ui.settings.default_visibility.value
    try:
        await ui.management(principal, viewer.client).create_repository(
            full,
            visibility=visibility_name(values["visibility"]),
            description=values["description"] or None,
        )
    except RegistryError as failed:
        return render(
            request,
            viewer,
            "new_repository.html",
            {
                "namespaces": await _namespaces(ui, viewer),
                "values": values,
                "error": failed.text,
            },
            status=failed.status,
        )
    if values["readme"]:
        await ui.discovery.readmes.write(
            ui.management(principal, viewer.client), full, values["readme"]
        )
    return redirect(request, viewer, repository_path(full))
