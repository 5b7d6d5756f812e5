"""A tag's page (manifest, platforms, layers with the commands that made them, config,
referrers), and deleting a tag."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from dockyard.core.manifests import Reference
from dockyard.events.context import bind
from dockyard.metadata.base import ManifestRecord
from dockyard.reference import is_tag
from dockyard.ui.images import ImageConfig, ManifestView, parse_manifest, with_commands
from dockyard.ui.pages.repository_common import (
    MAX_CHILDREN,
    image_config,
    pull_host,
    repository_path,
    visible_repository,
)
from dockyard.ui.state import Ui
from dockyard.ui.web import PageError, Viewer, field_text, form, redirect, render, require_user

__all__ = ["tag", "tag_delete", "tag_delete_form"]


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
    config = await image_config(ui, repository, view.config_digest)
    referrers = await ui.registry.metadata.list_referrers(repository, record.digest)
    label = platform or (config.platform if config else "")
    return PlatformView(
        record.digest, label, view, config, with_commands(view.layers, config), referrers
    )


async def tag(request: Request, ui: Ui, viewer: Viewer) -> Response:
    name, tag_name = request.path_params["name"], request.path_params["tag"]
    repo = await visible_repository(ui, viewer, name)
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
            "host": pull_host(request, ui),
            "may_delete": repo.permission == "admin",
        },
    )


async def _deletable(request: Request, ui: Ui, viewer: Viewer) -> tuple[str, str]:
    require_user(request, viewer)
    name, tag_name = request.path_params["name"], request.path_params["tag"]
    repo = await visible_repository(ui, viewer, name)
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
            "action": f"{repository_path(name)}/-/tags/{tag_name}/delete",
            "button": "Delete tag",
            "back": f"{repository_path(name)}/-/tags/{tag_name}",
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
    return redirect(request, viewer, repository_path(name))
