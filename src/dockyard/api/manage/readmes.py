"""``/api/v1/readmes``: a repository's README in Markdown, read by whoever may see the
repository and replaced by its admins, through the same service as the repository's pages
(:class:`dockyard.hub.readmes.Readmes`). A repository the caller may not see is answered
404 ``NAME_UNKNOWN``, as if it did not exist."""

from __future__ import annotations

from dockyard.api.manage.base import Call, Operation
from dockyard.api.manage.stars import discovery_of
from dockyard.hub.models import ReadmeOut, ReadmeSet
from dockyard.hub.readmes import MAX_README

__all__ = ["OPERATIONS"]

ONE = "/readmes/{name:path}"
# A README is JSON-escaped in the body: allow for every character needing six bytes.
MAX_BODY = 6 * MAX_README + 1024


async def get_readme(call: Call) -> ReadmeOut:
    return await discovery_of(call.request).readmes.read(call.hub, call.path("name"))


async def set_readme(call: Call) -> ReadmeOut:
    body = call.model(ReadmeSet)
    return await discovery_of(call.request).readmes.write(
        call.hub, call.path("name"), body.markdown
    )


OPERATIONS = [
    Operation(
        "GET",
        ONE,
        get_readme,
        "A repository's README, in Markdown (whoever may see the repository)",
        "repositories",
        None,
        ReadmeOut,
    ),
    Operation(
        "PUT",
        ONE,
        set_readme,
        "Replace a repository's README; an empty one removes it (repository admins)",
        "repositories",
        ReadmeSet,
        ReadmeOut,
        max_body=MAX_BODY,
    ),
]
