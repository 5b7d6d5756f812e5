"""User and organization pages, creating an organization, its members and teams."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from dockyard.errors import RegistryError, ResourceUnknown
from dockyard.hub.management import Management
from dockyard.hub.models import RoleName
from dockyard.identity.base import InvalidName, check_name
from dockyard.ui.state import Ui
from dockyard.ui.web import PageError, Viewer, field_text, form, redirect, render, require_user

__all__ = [
    "member_remove",
    "member_set",
    "namespace",
    "organization_create",
    "organization_form",
    "team_create",
    "team_member_add",
    "team_member_remove",
]

MAX_LISTED = 100


async def _kind(manage: Management, name: str) -> str:
    """``user`` or ``organization``; a page error if ``name`` is neither."""
    try:
        await manage.get_organization(name)
    except ResourceUnknown:
        pass
    else:
        return "organization"
    try:
        await manage.get_user(name)
    except ResourceUnknown:
        raise PageError(404, "No such user or organization.") from None
    return "user"


async def namespace(request: Request, ui: Ui, viewer: Viewer) -> Response:
    name = request.path_params["namespace"]
    try:
        check_name(name)
    except InvalidName:
        raise PageError(404, "No such user or organization.") from None
    manage = ui.management(viewer.principal, viewer.client)
    kind = await _kind(manage, name)
    listed = await manage.list_repositories(namespace=name, limit=MAX_LISTED)
    names = [r.name for r in listed.repositories]
    repositories = await ui.discovery.search.summarize(viewer.principal, names)
    context: dict[str, object] = {
        "name": name,
        "kind": kind,
        "repositories": repositories,
    }
    if kind == "organization":
        principal = viewer.principal
        role = principal.organizations.get(name) if principal else None
        is_owner = principal is not None and (
            principal.is_admin or (role is not None and role.value == "owner")
        )
        context["is_owner"] = is_owner
        context["is_member"] = principal is not None and (principal.is_admin or role is not None)
        if context["is_member"]:
            context["members"] = await manage.members(name)
            context["teams"] = await manage.teams(name)
    return render(request, viewer, "namespace.html", context)


async def organization_form(request: Request, ui: Ui, viewer: Viewer) -> Response:
    require_user(request, viewer)
    return render(request, viewer, "new_organization.html", {"error": None, "name": ""})


async def organization_create(request: Request, ui: Ui, viewer: Viewer) -> Response:
    principal = require_user(request, viewer)
    data = await form(request, viewer)
    name = field_text(data, "name", 64)
    try:
        await ui.management(principal, viewer.client).create_organization(name)
    except RegistryError as failed:
        return render(
            request,
            viewer,
            "new_organization.html",
            {"error": failed.text, "name": name},
            status=failed.status,
        )
    return redirect(request, viewer, f"/u/{name}")


def _org(request: Request) -> str:
    return str(request.path_params["namespace"])


async def member_set(request: Request, ui: Ui, viewer: Viewer) -> Response:
    principal = require_user(request, viewer)
    data = await form(request, viewer)
    text = field_text(data, "role", 16) or "member"
    if text not in ("owner", "member"):
        raise PageError(400, "A role is owner or member.")
    role: RoleName = "owner" if text == "owner" else "member"
    await ui.management(principal, viewer.client).set_member(
        _org(request), field_text(data, "user", 64), role
    )
    return redirect(request, viewer, f"/u/{_org(request)}")


async def member_remove(request: Request, ui: Ui, viewer: Viewer) -> Response:
    principal = require_user(request, viewer)
    await ui.management(principal, viewer.client).remove_member(
        _org(request), request.path_params["user"]
    )
    return redirect(request, viewer, f"/u/{_org(request)}")


async def team_create(request: Request, ui: Ui, viewer: Viewer) -> Response:
    principal = require_user(request, viewer)
    data = await form(request, viewer)
    await ui.management(principal, viewer.client).create_team(
        _org(request), field_text(data, "team", 64)
    )
    return redirect(request, viewer, f"/u/{_org(request)}")


async def team_member_add(request: Request, ui: Ui, viewer: Viewer) -> Response:
    principal = require_user(request, viewer)
    data = await form(request, viewer)
    await ui.management(principal, viewer.client).add_team_member(
        _org(request), request.path_params["team"], field_text(data, "user", 64)
    )
    return redirect(request, viewer, f"/u/{_org(request)}")


async def team_member_remove(request: Request, ui: Ui, viewer: Viewer) -> Response:
    principal = require_user(request, viewer)
    await ui.management(principal, viewer.client).remove_team_member(
        _org(request), request.path_params["team"], request.path_params["user"]
    )
    return redirect(request, viewer, f"/u/{_org(request)}")
