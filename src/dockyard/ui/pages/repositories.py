"""Repository pages: create, the repository (README, pull command, tags with who pushed them
and when they were last pulled), a tag (manifest, platforms, layers with the commands that
made them, config, referrers), deleting a tag, stars, and settings (visibility, description,
README, permissions, storage used and quotas, deletion).

What a repository holds is read through the registry core; who may see or change it is the
management service's decision, which answers a private repository the viewer may not see
exactly as one that does not exist.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from dockyard.core.manifests import Reference
from dockyard.digest import Digest
from dockyard.errors import RegistryError
from dockyard.events.context import bind
from dockyard.hub.lifecycle import Lifecycle
from dockyard.hub.models import (
    GrantIn,
    NamespaceUsageOut,
    RepositoryOut,
    RepositoryUsageOut,
    VisibilityName,
)
from dockyard.hub.readmes import MAX_README
from dockyard.metadata.base import ManifestRecord
from dockyard.reference import is_tag
from dockyard.ui.images import (
    ImageConfig,
    ManifestView,
    parse_config,
    parse_manifest,
    with_commands,
)
from dockyard.ui.markdown import render as markdown
from dockyard.ui.state import Ui
from dockyard.ui.web import PageError, Viewer, field_text, form, redirect, render, require_user

__all__ = [
    "create",
    "create_form",
    "delete",
    "grant",
    "repository",
    "settings",
    "settings_update",
    "star",
    "tag",
    "tag_delete",
    "tag_delete_form",
]

MAX_TAGS = 100
MAX_CHILDREN = 16
MAX_CONFIG = 1 << 20


def _visibility(text: str) -> VisibilityName | None:
    return "public" if text == "public" else "private" if text == "private" else None


def _path(repository: str) -> str:
    return f"/r/{repository}"


def _host(request: Request, ui: Ui) -> str:
    if ui.host:
        return ui.host.split("://", 1)[-1].rstrip("/")
    return request.headers.get("host", "localhost")


async def _visible(ui: Ui, viewer: Viewer, name: str) -> RepositoryOut:
    return await ui.management(viewer.principal, viewer.client).get_repository(name)


async def _config(ui: Ui, repository: str, digest: str | None) -> ImageConfig | None:
    if not digest:
        return None
    try:
        location = await ui.registry.blobs.locate(repository, Digest.parse(digest))
    except RegistryError:
        return None
    if location.size > MAX_CONFIG:
        return None
    data = b"".join([chunk async for chunk in ui.registry.blobs.read(location, 0, location.size)])
    return parse_config(data)


@dataclass(frozen=True, slots=True)
class TagRow:
    name: str
    digest: str
    media_type: str
    size: int
    platforms: list[str]
    pushed_at: datetime | None
    pushed_by: str | None = None
    pulls: int = 0
    last_pulled_at: datetime | None = None


async def _row(
    ui: Ui, repository: str, name: str, record: ManifestRecord, pushed: datetime | None
) -> TagRow:
    view = parse_manifest(record.media_type, record.payload)
    if view.is_index:
        size = 0
        for child in view.children[:MAX_CHILDREN]:
            found = await ui.registry.metadata.get_manifest(repository, child.digest)
            if found is not None:
                size += parse_manifest(found.media_type, found.payload).size
        platforms = [c.platform for c in view.children if c.platform]
    else:
        config = await _config(ui, repository, view.config_digest)
        size = view.size
        platforms = [config.platform] if config and config.platform else []
    return TagRow(name, record.digest, view.media_type, size, platforms, pushed)


async def _usage(request: Request, ui: Ui, viewer: Viewer, name: str) -> RepositoryUsageOut:
    """The repository's usage, its tags' pushers and pulls, as the management API gives them."""
    lifecycle = Lifecycle(request.app.state.lifecycle)
    return await lifecycle.repository_usage(ui.management(viewer.principal, viewer.client), name)


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


async def repository(request: Request, ui: Ui, viewer: Viewer) -> Response:
    name = request.path_params["name"]
    repo = await _visible(ui, viewer, name)
    times = await ui.discovery.search.tag_times(name)
    rows = []
    for tag_name in await ui.registry.metadata.list_tags(name, MAX_TAGS):
        record = await ui.registry.metadata.get_tagged_manifest(name, tag_name)
        if record is not None:
            rows.append(await _row(ui, name, tag_name, record, times.get(tag_name)))
    usage = await _usage(request, ui, viewer, name)
    pulled = {t.tag: t for t in usage.tags}
    rows = [
        replace(
            row,
            pushed_by=pulled[row.name].pushed_by,
            pulls=pulled[row.name].pulls,
            last_pulled_at=pulled[row.name].last_pulled_at,
        )
        if row.name in pulled
        else row
        for row in rows
    ]
    rows.sort(
        key=lambda r: (
            r.pushed_at is None,
            -(r.pushed_at.timestamp() if r.pushed_at else 0),
            r.name,
        )
    )
    summary = (await ui.discovery.search.summarize(viewer.principal, [name]))[0]
    manage = ui.management(viewer.principal, viewer.client)
    readme = (await ui.discovery.readmes.read(manage, name)).markdown
    return render(
        request,
        viewer,
        "repository.html",
        {
            "repo": repo,
            "summary": summary,
            "tags": rows,
            "readme": markdown(readme) if readme else None,
            "host": _host(request, ui),
            "may_admin": repo.permission == "admin",
        },
    )


@dataclass(frozen=True, slots=True)
class PlatformView:
    digest: str
    platform: str
    manifest: ManifestView
    config: ImageConfig | None
    layers: list[Any]
    referrers: list[ManifestRecord]


async def _platform(ui: Ui, repository: str, record: ManifestRecord, platform: str) -> PlatformView:
    view = parse_manifest(record.media_type, record.payload)
    config = await _config(ui, repository, view.config_digest)
    referrers = await ui.registry.metadata.list_referrers(repository, record.digest)
    label = platform or (config.platform if config else "")
    return PlatformView(
        record.digest, label, view, config, with_commands(view.layers, config), referrers
    )


async def tag(request: Request, ui: Ui, viewer: Viewer) -> Response:
    name, tag_name = request.path_params["name"], request.path_params["tag"]
    repo = await _visible(ui, viewer, name)
    if not is_tag(tag_name):
        raise PageError(404, "No such tag.")
    record = await ui.registry.metadata.get_tagged_manifest(name, tag_name)
    if record is None:
        raise PageError(404, f"No tag {tag_name} in {name}.")
    top = parse_manifest(record.media_type, record.payload)
    platforms: list[PlatformView] = []
    if top.is_index:
        for child in top.children[:MAX_CHILDREN]:
            found = await ui.registry.metadata.get_manifest(name, child.digest)
            if found is not None and not child.artifact_type:
                platforms.append(await _platform(ui, name, found, child.platform))
    else:
        platforms.append(await _platform(ui, name, record, ""))
    referrers = (
        await ui.registry.metadata.list_referrers(name, record.digest) if top.is_index else []
    )
    return render(
        request,
        viewer,
        "tag.html",
        {
            "repo": repo,
            "tag": tag_name,
            "record": record,
            "top": top,
            "payload": record.payload.decode("utf-8", "replace"),
            "platforms": platforms,
            "referrers": referrers,
            "host": _host(request, ui),
            "may_delete": repo.permission == "admin",
        },
    )


async def _deletable(request: Request, ui: Ui, viewer: Viewer) -> tuple[str, str]:
    require_user(request, viewer)
    name, tag_name = request.path_params["name"], request.path_params["tag"]
    repo = await _visible(ui, viewer, name)
    if repo.permission != "admin":
        raise PageError(403, f"Only admins of {name} may delete its tags.")
    if not is_tag(tag_name):
        raise PageError(404, "No such tag.")
    return name, tag_name


async def tag_delete_form(request: Request, ui: Ui, viewer: Viewer) -> Response:
    name, tag_name = await _deletable(request, ui, viewer)
    return render(
        request,
        viewer,
        "confirm.html",
        {
            "title": f"Delete {name}:{tag_name}?",
            "message": f"The tag {tag_name} will no longer be pullable. "
            "The image stays if other tags point at it.",
            "action": f"{_path(name)}/-/tags/{tag_name}/delete",
            "button": "Delete tag",
            "back": f"{_path(name)}/-/tags/{tag_name}",
        },
    )


async def tag_delete(request: Request, ui: Ui, viewer: Viewer) -> Response:
    name, tag_name = await _deletable(request, ui, viewer)
    data = await form(request, viewer)
    if field_text(data, "confirm") != "yes":
        raise PageError(400, "Confirm the deletion.")
    # The deletion's event (notifications, the audit log) names who did it.
    bind(request, viewer.user)
    await ui.registry.manifests.delete(name, Reference(tag_name, None))
    return redirect(request, viewer, _path(name))


async def star(request: Request, ui: Ui, viewer: Viewer) -> Response:
    principal = require_user(request, viewer)
    name = request.path_params["name"]
    await _visible(ui, viewer, name)
    data = await form(request, viewer)
    if field_text(data, "star") == "no":
        await ui.discovery.stars.unstar(principal.name, name)
    else:
        await ui.discovery.stars.star(principal.name, name)
    if request.headers.get("hx-request") == "true":
        summary = (await ui.discovery.search.summarize(principal, [name]))[0]
        return render(request, viewer, "_star.html", {"summary": summary})
    return redirect(request, viewer, _path(name))


# -- creating and administering ----------------------------------------------------------------


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
            visibility=_visibility(values["visibility"]),
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
    return redirect(request, viewer, _path(full))


async def _administered(request: Request, ui: Ui, viewer: Viewer) -> RepositoryOut:
    require_user(request, viewer)
    repo = await _visible(ui, viewer, request.path_params["name"])
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
            "usage": await _usage(request, ui, viewer, repo.name),
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
        visibility=_visibility(visibility),
        description=field_text(data, "description", 4096),
    )
    await ui.discovery.readmes.write(manage, repo.name, field_text(data, "readme", MAX_README))
    return redirect(request, viewer, f"{_path(repo.name)}/-/settings")


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
    return redirect(request, viewer, f"{_path(repo.name)}/-/settings")


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
