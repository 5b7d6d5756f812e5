"""``/api/v1/stars``: star a repository, take the star back, read a repository's stars, list
what the caller starred. A repository the caller may not see is answered 404
``NAME_UNKNOWN``, as if it did not exist (it is looked up through the management service)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict
from starlette.requests import Request
from starlette.routing import Route

from dockyard.api.manage.base import Call, Operation, routes_of
from dockyard.errors import EndpointUnknown
from dockyard.hub.search import Discovery

__all__ = ["OPERATIONS", "StarOut", "routes"]

ONE = "/stars/{name:path}"


class StarOut(BaseModel):
    model_config = ConfigDict(frozen=True)

    repository: str
    star_count: int
    starred: bool
    """Whether the caller starred it."""


def discovery_of(request: Request) -> Discovery:
    found: Discovery | None = getattr(request.app.state, "discovery", None)
    if found is None:
        raise EndpointUnknown()
    return found


async def _star_out(call: Call, name: str) -> StarOut:
    stars = discovery_of(call.request).stars
    counts = await stars.counts([name])
    mine = await stars.starred(call.hub.actor.name, [name])
    return StarOut(repository=name, star_count=counts[name], starred=name in mine)


async def get_stars(call: Call) -> StarOut:
    repository = await call.hub.get_repository(call.path("name"))
    return await _star_out(call, repository.name)


async def star(call: Call) -> StarOut:
    repository = await call.hub.get_repository(call.path("name"))
    await discovery_of(call.request).stars.star(call.hub.actor.name, repository.name)
    return await _star_out(call, repository.name)


async def unstar(call: Call) -> StarOut:
    repository = await call.hub.get_repository(call.path("name"))
    await discovery_of(call.request).stars.unstar(call.hub.actor.name, repository.name)
    return await _star_out(call, repository.name)


async def list_starred(call: Call) -> list[StarOut]:
    """What the caller starred and may still see, by name."""
    found = discovery_of(call.request)
    names = sorted(await found.stars.starred(call.hub.actor.name))
    principal = await found.authority.principal(call.hub.actor.name)
    visible = await found.authority.visible(principal, names)
    counts = await found.stars.counts(visible)
    return [StarOut(repository=n, star_count=counts[n], starred=True) for n in visible]


OPERATIONS = [
    Operation(
        "GET",
        "/stars",
        list_starred,
        "Repositories the caller starred",
        "stars",
        None,
        list[StarOut],
    ),
    Operation("GET", ONE, get_stars, "A repository's star count", "stars", None, StarOut),
    Operation("PUT", ONE, star, "Star a repository", "stars", None, StarOut),
    Operation("DELETE", ONE, unstar, "Take a star back", "stars", None, StarOut),
]


def routes() -> list[Route]:
    return routes_of(OPERATIONS)
