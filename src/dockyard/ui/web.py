"""Request plumbing of the pages: who is viewing, rendering with security headers, forms
checked for their CSRF token, and errors shown as pages.

CSRF: each session (anonymous visitors' too) holds a random token; every form carries it in
a hidden ``csrf`` field (htmx sends it as ``X-CSRF-Token``, from the ``hx-headers`` of the
page's body), and every POST whose token is missing or wrong is refused with 403 before
anything is read or changed. The session cookie is ``SameSite=Lax`` as a second line.
"""

from __future__ import annotations

import functools
import hmac
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from dockyard.errors import RegistryError
from dockyard.identity.base import Principal
from dockyard.ui.sessions import COOKIE, Session
from dockyard.ui.state import Ui

__all__ = [
    "MAX_FORM",
    "PageError",
    "Viewer",
    "check_csrf",
    "form",
    "page",
    "redirect",
    "render",
    "require_user",
    "ui_of",
]

log = logging.getLogger("dockyard.ui")

MAX_FORM = 512 * 1024

# Scripts and styles from this origin only: htmx and ui.js are files, nothing is inline, so
# an injected <script> or on* attribute would not run even if it got past the escaping.
_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' https: data:; "
        "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


class PageError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class Viewer:
    """Who is looking: the session and, when signed in, the user's principal."""

    session: Session
    principal: Principal | None
    client: str | None
    set_cookie: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def user(self) -> str | None:
        return self.principal.name if self.principal else None

    @property
    def is_admin(self) -> bool:
        return self.principal is not None and self.principal.is_admin


def ui_of(request: Request) -> Ui:
    ui: Ui = request.app.state.ui
    return ui


async def _viewer(request: Request, ui: Ui) -> Viewer:
    client = request.client.host if request.client else None
    session = ui.sessions.load(request.cookies.get(COOKIE))
    if session is None:
        return Viewer(Session.new(), None, client, set_cookie=True)
    if session.user is None:
        return Viewer(session, None, client)
    principal = await ui.issuer.authority.principal(session.user)
    if principal is None:
        # Disabled or deleted since signing in: the session ends here.
        return Viewer(Session.new(), None, client, set_cookie=True)
    return Viewer(session, principal, client)


def _secure(request: Request) -> bool:
    # The scheme is the one the client used: behind a trusted proxy (http.trustedproxies),
    # the proxy's X-Forwarded-Proto has already been applied to it.
    return request.url.scheme == "https"


def _finish(request: Request, ui: Ui, viewer: Viewer, response: Response) -> Response:
    for name, value in _HEADERS.items():
        response.headers.setdefault(name, value)
    if viewer.set_cookie:
        response.set_cookie(
            COOKIE,
            ui.sessions.dump(viewer.session),
            max_age=int(ui.sessions.lifetime),
            path="/",
            httponly=True,
            samesite="lax",
            secure=_secure(request),
        )
    return response


def render(
    request: Request,
    viewer: Viewer,
    template: str,
    context: Mapping[str, Any] | None = None,
    *,
    status: int = 200,
) -> HTMLResponse:
    ui = ui_of(request)
    values = {
        "viewer": viewer,
        "csrf": viewer.session.csrf,
        "signup": ui.signup,
        "path": request.url.path,
        "query": request.url.query,
        **(context or {}),
    }
    html = ui.templates.get_template(template).render(values)
    response = HTMLResponse(html, status_code=status)
    _finish(request, ui, viewer, response)
    return response


def redirect(request: Request, viewer: Viewer, url: str) -> Response:
    """After a POST: see the result with a GET (htmx follows ``HX-Redirect``)."""
    if request.headers.get("hx-request") == "true":
        response: Response = Response(status_code=204, headers={"HX-Redirect": url})
    else:
        response = RedirectResponse(url, status_code=303)
    return _finish(request, ui_of(request), viewer, response)


def check_csrf(viewer: Viewer, presented: str | None) -> None:
    if not presented or not hmac.compare_digest(presented, viewer.session.csrf):
        raise PageError(
            403,
            "This form has expired or did not come from this site. Reload the page and try again.",
        )


async def form(request: Request, viewer: Viewer) -> FormData:
    """The POSTed form, once its CSRF token is checked."""
    length = request.headers.get("content-length")
    if length is not None and (not length.isdigit() or int(length) > MAX_FORM):
        raise PageError(413, "The form is too large.")
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type not in ("application/x-www-form-urlencoded", "multipart/form-data"):
        check_csrf(viewer, request.headers.get("x-csrf-token"))
        return FormData()
    data = await request.form(max_files=0, max_fields=64, max_part_size=MAX_FORM)
    token = data.get("csrf")
    check_csrf(
        viewer, request.headers.get("x-csrf-token") or (token if isinstance(token, str) else None)
    )
    return data


def field_text(data: FormData, name: str, limit: int = 1024) -> str:
    value = data.get(name)
    if not isinstance(value, str):
        return ""
    if len(value) > limit:
        raise PageError(400, f"{name} is longer than {limit} characters.")
    return value.strip()


def require_user(request: Request, viewer: Viewer) -> Principal:
    if viewer.principal is None:
        raise _SignIn(request.url.path)
    return viewer.principal


class _SignIn(Exception):
    def __init__(self, after: str) -> None:
        super().__init__(after)
        self.after = after


Handler = Callable[[Request, Ui, Viewer], Awaitable[Response]]

_STATUS_TITLES = {400: "Bad request", 403: "Not allowed", 404: "Not found", 409: "Conflict"}


def page(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    """An endpoint: the viewer found, errors shown as pages (a private repository the
    viewer may not see is "Not found", as one that does not exist)."""

    @functools.wraps(handler)
    async def endpoint(request: Request) -> Response:
        ui = ui_of(request)
        viewer = await _viewer(request, ui)
        try:
            if request.method == "POST":
                # Before the handler reads anything (the parsed form is kept for it).
                await form(request, viewer)
            return await handler(request, ui, viewer)
        except _SignIn as signin:
            return redirect(request, viewer, f"/login?next={quote(signin.after)}")
        except PageError as error:
            status, message = error.status, error.message
        except RegistryError as error:
            status = error.status if 400 <= error.status < 500 else 500
            message = error.text
            if status == 500:
                log.exception("page %s failed", request.url.path)
                message = "Something went wrong."
        title = _STATUS_TITLES.get(status, "Error")
        if request.headers.get("hx-request") == "true":
            # htmx swaps nothing on an error status; the fragment says why for those who look.
            return _finish(request, ui, viewer, HTMLResponse(message, status_code=status))
        return render(
            request, viewer, "error.html", {"title": title, "message": message}, status=status
        )

    return endpoint
