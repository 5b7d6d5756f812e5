"""The repository page (README, pull command, tags with who pushed them and when they were
last pulled), and starring a repository."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from starlette.requests import Request
from starlette.responses import Response

from dockyard.metadata.base import ManifestRecord
from dockyard.ui.images import parse_manifest
from dockyard.ui.markdown import render as markdown
from dockyard.ui.pages.repository_common import (
    MAX_CHILDREN,
    image_config,
    pull_host,
    repository_path,
    repository_usage,
    visible_repository,
)
from dockyard.ui.state import Ui
from dockyard.ui.web import Viewer, field_text, form, redirect, render, require_user

__all__ = ["repository", "star"]

MAX_TAGS = 100


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
        config = await image_config(ui, repository, view.config_digest)
        size = view.size
        platforms = [config.platform] if config and config.platform else []
    return TagRow(name, record.digest, view.media_type, size, platforms, pushed)


async def repository(request: Request, ui: Ui, viewer: Viewer) -> Response:
    name = request.path_params["name"]
    repo = await visible_repository(ui, viewer, name)
    times = await ui.discovery.search.tag_times(name)
    rows = []
    for tag_name in await ui.registry.metadata.list_tags(name, MAX_TAGS):
        record = await ui.registry.metadata.get_tagged_manifest(name, tag_name)
        if record is not None:
            rows.append(await _row(ui, name, tag_name, record, times.get(tag_name)))
    usage = await repository_usage(request, ui, viewer, name)
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
            "host": pull_host(request, ui),
            "may_admin": repo.permission == "admin",
        },
    )


async def star(request: Request, ui: Ui, viewer: Viewer) -> Response:
    principal = require_user(request, viewer)
    name = request.path_params["name"]
    await visible_repository(ui, viewer, name)
    data = await form(request, viewer)
    if field_text(data, "star") == "no":
        await ui.discovery.stars.unstar(principal.name, name)
    else:
        await ui.discovery.stars.star(principal.name, name)
    if request.headers.get("hx-request") == "true":
        summary = (await ui.discovery.search.summarize(principal, [name]))[0]
        return render(request, viewer, "_star.html", {"summary": summary})
    return redirect(request, viewer, repository_path(name))
