"""Signing in and out, signing up, and personal access tokens."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from dockyard.auth.issuer import BadCredentials, TooManyFailures
from dockyard.errors import RegistryError
from dockyard.hub.models import ScopeName
from dockyard.hub.signup import sign_up
from dockyard.ui.sessions import Session
from dockyard.ui.state import Ui
from dockyard.ui.web import PageError, Viewer, field_text, form, redirect, render, require_user

__all__ = [
    "login",
    "login_form",
    "logout",
    "signup",
    "signup_form",
    "token_create",
    "token_revoke",
    "tokens",
]

_SCOPES: tuple[ScopeName, ...] = ("read", "write", "delete")


def _next(value: str) -> str:
    """Where to go after signing in: a path on this site only."""
    if value.startswith("/") and not value.startswith("//") and "\\" not in value:
        return value
    return "/"


async def login_form(request: Request, ui: Ui, viewer: Viewer) -> Response:
    return render(
        request,
        viewer,
        "login.html",
        {"next": _next(request.query_params.get("next", "/")), "error": None},
    )


def _signed_in(request: Request, ui: Ui, viewer: Viewer, user: str, after: str) -> Response:
    # A new session, with a new CSRF token: nothing of the anonymous one carries over.
    viewer.session = Session.new(user)
    viewer.set_cookie = True
    return redirect(request, viewer, after)


async def login(request: Request, ui: Ui, viewer: Viewer) -> Response:
    data = await form(request, viewer)
    user = field_text(data, "username", 256)
    password = field_text(data, "password", 1024)
    after = _next(field_text(data, "next", 2048) or "/")
    error = "Wrong user name or password."
    status = 401
    if user and password:
        try:
            login = await ui.issuer.authenticate(user, password, viewer.client)
        except BadCredentials:
            pass
        except TooManyFailures as busy:
            error = f"Too many failed sign-ins. Try again in {busy.retry_after} seconds."
            status = 429
        else:
            if login.cap is None:
                return _signed_in(request, ui, viewer, login.subject, after)
            # An access token is for clients: signing in with it would escape its scopes.
            error = "Sign in with your password, not an access token."
    return render(
        request,
        viewer,
        "login.html",
        {"next": after, "error": error, "username": user},
        status=status,
    )


async def logout(request: Request, ui: Ui, viewer: Viewer) -> Response:
    viewer.session = Session.new()
    viewer.principal = None
    viewer.set_cookie = True
    return redirect(request, viewer, "/")


async def signup_form(request: Request, ui: Ui, viewer: Viewer) -> Response:
    if not ui.signup:
        raise PageError(404, "Sign-up is closed on this registry.")
    return render(request, viewer, "signup.html", {"error": None, "username": ""})


async def signup(request: Request, ui: Ui, viewer: Viewer) -> Response:
    if not ui.signup:
        raise PageError(404, "Sign-up is closed on this registry.")
    data = await form(request, viewer)
    user = field_text(data, "username", 64)
    password = field_text(data, "password", 1024)
    error = "The two passwords differ."
    if password == field_text(data, "confirm", 1024):
        try:
            await sign_up(
                ui.identity,
                ui.passwords,
                user,
                password,
                allowed=ui.signup,
                client_address=viewer.client,
            )
        except RegistryError as failed:
            error = failed.text
        else:
            return _signed_in(request, ui, viewer, user, "/")
    return render(request, viewer, "signup.html", {"error": error, "username": user}, status=400)


async def tokens(request: Request, ui: Ui, viewer: Viewer) -> Response:
    principal = require_user(request, viewer)
    manage = ui.management(principal, viewer.client)
    return render(
        request,
        viewer,
        "tokens.html",
        {"tokens": await manage.tokens(), "created": None, "error": None},
    )


async def token_create(request: Request, ui: Ui, viewer: Viewer) -> Response:
    principal = require_user(request, viewer)
    data = await form(request, viewer)
    manage = ui.management(principal, viewer.client)
    scopes: list[ScopeName] = [s for s in _SCOPES if s in data.getlist("scopes")]
    expires = field_text(data, "expires", 16) or None
    created = error = None
    status = 200
    try:
        created = await manage.create_token(field_text(data, "name", 64), scopes, expires=expires)
    except RegistryError as failed:
        error, status = failed.text, failed.status
    return render(
        request,
        viewer,
        "tokens.html",
        {"tokens": await manage.tokens(), "created": created, "error": error},
        status=status,
    )


async def token_revoke(request: Request, ui: Ui, viewer: Viewer) -> Response:
    principal = require_user(request, viewer)
    await ui.management(principal, viewer.client).revoke_token(request.path_params["token"])
    return redirect(request, viewer, "/settings/tokens")
