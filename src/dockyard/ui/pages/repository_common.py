"""What the repository pages share: finding a repository the viewer may see, its path and
pull host, an image's config, and the repository's usage.

What a repository holds is read through the registry core; who may see or change it is the
management service's decision, which answers a private repository the viewer may not see
exactly as one that does not exist.
"""

from __future__ import annotations

from starlette.requests import Request

from dockyard.digest import Digest
from dockyard.errors import RegistryError
from dockyard.hub.lifecycle import Lifecycle
from dockyard.hub.models import RepositoryOut, RepositoryUsageOut, VisibilityName
from dockyard.ui.images import ImageConfig, parse_config
from dockyard.ui.state import Ui
from dockyard.ui.web import Viewer

__all__ = [
    "MAX_CHILDREN",
    "MAX_CONFIG",
    "image_config",
    "pull_host",
    "repository_path",
    "repository_usage",
    "visibility_name",
    "visible_repository",
]

MAX_CHILDREN = 16
MAX_CONFIG = 1 << 20


def visibility_name(text: str) -> VisibilityName | None:
    return "public" if text == "public" else "private" if text == "private" else None


def repository_path(repository: str) -> str:
    return f"/r/{repository}"


def pull_host(request: Request, ui: Ui) -> str:
    if ui.host:
        return ui.host.split("://", 1)[-1].rstrip("/")
    return request.headers.get("host", "localhost")


async def visible_repository(ui: Ui, viewer: Viewer, name: str) -> RepositoryOut:
    return await ui.management(viewer.principal, viewer.client).get_repository(name)


async def image_config(ui: Ui, repository: str, digest: str | None) -> ImageConfig | None:
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


async def repository_usage(
    request: Request, ui: Ui, viewer: Viewer, name: str
) -> RepositoryUsageOut:
    """The repository's usage, its tags' pushers and pulls, as the management API gives them."""
    lifecycle = Lifecycle(request.app.state.lifecycle)
    return await lifecycle.repository_usage(ui.management(viewer.principal, viewer.client), name)
