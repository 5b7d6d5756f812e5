"""The audit log, for site administrators."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from dockyard.identity.base import AuditFilter
from dockyard.ui.state import Ui
from dockyard.ui.web import PageError, Viewer, render, require_user

__all__ = ["audit"]

PAGE = 100


async def audit(request: Request, ui: Ui, viewer: Viewer) -> Response:
    principal = require_user(request, viewer)
    if not principal.is_admin:
        raise PageError(403, "Only site administrators may read the audit log.")
    params = request.query_params
    after_text = params.get("after", "")
    if after_text and not after_text.isdigit():
        raise PageError(400, "Bad page.")
    where = AuditFilter(
        actor=params.get("actor") or None,
        action=params.get("action") or None,
        repository=params.get("repository") or None,
    )
    page = await ui.management(principal, viewer.client).audit(
        where, after=int(after_text) if after_text else None, limit=PAGE
    )
    return render(request, viewer, "audit.html", {"page": page, "where": where})
