"""A repository's settings, for its admins: visibility, description, README, permissions,
storage used and quotas, and deleting the repository."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from dockyard.errors import RegistryError
from dockyard.hub.lifecycle import Lifecycle
from dockyard.hub.models import GrantIn, NamespaceUsageOut, RepositoryOut
from dockyard.hub.readmes import MAX_README
from dockyard.ui.pages.repository_common import (
    repository_path,
    repository_usage,
    visibility_name,
    visible_repository,
)
from dockyard.ui.state import Ui
from dockyard.ui.web import PageError, Viewer, field_text, form, redirect, render, require_user

__all__ = ["delete", "grant", "settings", "settings_update"]


async def _namespace_usage(
    request: Request, ui: Ui, viewer: Viewer, repo: RepositoryOut
) -> NamespaceUsageOut | None:
    """The namespace's usage when the viewer may see it (its owners, site administrators)."""
    if repo.namespace is None:
        return None
    lifecycle = Lifecycle(request.app.state.lifecycle)
    try:
        return await lifecycle.namespace_usage(
            ui.management(viewer.principal, viewer.client), repo.namespace
        )
    except RegistryError:
        return None


async def _administered(request: Request, ui: Ui, viewer: Viewer) -> RepositoryOut:
    require_user(request, viewer)
    repo = await visible_repository(ui, viewer, request.path_params["name"])
    if repo.permission != "admin":
        raise PageError(403, f"Only admins of {repo.name} may change its settings.")
    return repo


async def _settings_page(
    request: Request,
    ui: Ui,
    viewer: Viewer,
    repo: RepositoryOut,
    error: str | None = None,
    status: int = 200,
) -> Response:
    manage = ui.management(viewer.principal, viewer.client)
    return render(
        request,
        viewer,
        "settings.html",
        {
            "repo": repo,
            "readme": (await ui.discovery.readmes.read(manage, repo.name)).markdown,
            "grants": await manage.grants(repository=repo.name),
            "error": error,
            "usage": await repository_usage(request, ui, viewer, repo.name),
            "namespace_usage": await _namespace_usage(request, ui, viewer, repo),
        },
        status=status,
    )


async def settings(request: Request, ui: Ui, viewer: Viewer) -> Response:
    return await _settings_page(request, ui, viewer, await _administered(request, ui, viewer))


async def settings_update(request: Request, ui: Ui, viewer: Viewer) -> Response:
    repo = await _administered(request, ui, viewer)
    data = await form(request, viewer)
    visibility = field_text(data, "visibility", 16)
    if visibility not in ("public", "private"):
        raise PageError(400, "Visibility is public or private.")
    manage = ui.management(viewer.principal, viewer.client)
    repo = await manage.update_repository(
        repo.name,
        visibility=visibility_name(visibility),
        description=field_text(data, "description", 4096),
    )
    await ui.discovery.readmes.write(manage, repo.name, field_text(data, "readme", MAX_README))
    return redirect(request, viewer, f"{repository_path(repo.name)}/-/settings")


async def grant(request: Request, ui: Ui, viewer: Viewer) -> Response:
    repo = await _administered(request, ui, viewer)
    data = await form(request, viewer)
    subject = field_text(data, "subject", 130)
    permission = field_text(data, "permission", 8)
    try:
        wanted = GrantIn.model_validate(
            {
                "pattern": repo.name,
                "user": subject if "/" not in subject else None,
                "team": subject if "/" in subject else None,
                "permission": permission,
            }
        )
        await ui.management(viewer.principal, viewer.client).grant(wanted)
    except RegistryError as failed:
        return await _settings_page(request, ui, viewer, repo, failed.text, failed.status)
    except ValueError:
        return await _settings_page(
            request,
            ui,
            viewer,
            repo,
            "Name a user or a team (organization/team) and a permission.",
            400,
        )
    return redirect(request, viewer, f"{repository_path(repo.name)}/-/settings")


async def delete(request: Request, ui: Ui, viewer: Viewer) -> Response:
    repo = await _administered(request, ui, viewer)
    data = await form(request, viewer)
    if field_text(data, "confirm", 300) != repo.name:
        return await _settings_page(
            request, ui, viewer, repo, "Type the repository's name to delete it.", 400
        )
    await ui.management(viewer.principal, viewer.client).delete_repository(repo.name)
    await ui.discovery.stars.forget(repo.name)
    await ui.discovery.readmes.forget(repo.name)
    return redirect(request, viewer, "/")
