"""``/api/v1/repositories``: create, read, list, change, delete. A repository the caller
may not see is answered 404 ``NAME_UNKNOWN``, as if it did not exist."""

from __future__ import annotations

from dockyard.api.manage.base import Call, Operation, Query
from dockyard.hub.models import RepositoryCreate, RepositoryOut, RepositoryPage, RepositoryUpdate
from dockyard.hub.search import Discovery

__all__ = ["OPERATIONS"]

ONE = "/repositories/{name:path}"


async def create_repository(call: Call) -> RepositoryOut:
    body = call.model(RepositoryCreate)
    return await call.hub.create_repository(
        body.name, visibility=body.visibility, description=body.description
    )


async def list_repositories(call: Call) -> RepositoryPage:
    return await call.hub.list_repositories(
        after=call.text("after"),
        limit=call.integer("limit", 100, minimum=1, maximum=1000) or 100,
        namespace=call.text("namespace", limit=64),
    )


async def get_repository(call: Call) -> RepositoryOut:
    return await call.hub.get_repository(call.path("name"))


async def update_repository(call: Call) -> RepositoryOut:
    body = call.model(RepositoryUpdate)
    return await call.hub.update_repository(
        call.path("name"), visibility=body.visibility, description=body.description
    )


async def delete_repository(call: Call) -> None:
    name = call.path("name")
    await call.hub.delete_repository(name)
    # As the settings page does: a repository made again under this name starts bare.
    found: Discovery | None = getattr(call.request.app.state, "discovery", None)
    if found is not None:
        await found.stars.forget(name)
        await found.readmes.forget(name)


OPERATIONS = [
    Operation(
        "POST",
        "/repositories",
        create_repository,
        "Create a repository (admins of its namespace)",
        "repositories",
        RepositoryCreate,
        RepositoryOut,
        201,
    ),
    Operation(
        "GET",
        "/repositories",
        list_repositories,
        "List the repositories the caller may see",
        "repositories",
        None,
        RepositoryPage,
        200,
        (
            Query("after", description="The last name of the previous page."),
            Query("limit", "integer", "At most this many (default 100).", 1, 1000),
            Query("namespace", description="Only the repositories of this namespace."),
        ),
    ),
    Operation("GET", ONE, get_repository, "Get a repository", "repositories", None, RepositoryOut),
    Operation(
        "PATCH",
        ONE,
        update_repository,
        "Change visibility or description (repository admins)",
        "repositories",
        RepositoryUpdate,
        RepositoryOut,
    ),
    Operation(
        "DELETE",
        ONE,
        delete_repository,
        "Delete a repository with its tags and manifests (repository admins)",
        "repositories",
        None,
        None,
        204,
    ),
]
