"""``/v2/<name>/referrers/<digest>``: manifests that refer to a subject."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from dockyard.api.base import authorize, context, digest_param, repository
from dockyard.auth.base import Access
from dockyard.core.referrers import referrers_index
from dockyard.mediatypes import OCI_INDEX

__all__ = ["get_referrers"]


async def get_referrers(request: Request) -> Response:
    name = repository(request)
    subject = digest_param(request.path_params["digest"])
    await authorize(request, [Access.repository(name, "pull")])
    artifact_type = request.query_params.get("artifactType") or None
    index = await referrers_index(context(request).registry.metadata, name, subject, artifact_type)
    headers = {"OCI-Filters-Applied": "artifactType"} if artifact_type else {}
    return JSONResponse(index, headers=headers, media_type=OCI_INDEX)
