"""The token server's endpoints, served when ``auth.builtin`` is configured (else 404).

- ``GET /token?service=&scope=...&scope=...[&offline_token=true][&client_id=]``, with Basic
  credentials or none (anonymous), as the Docker token specification describes;
- ``POST /token``, an ``application/x-www-form-urlencoded`` form with ``grant_type=password``
  (``username``, ``password``) or ``grant_type=refresh_token`` (``refresh_token``), and
  ``service``, ``scope``, ``client_id``, ``access_type=offline`` (OAuth2, as the
  specification's OAuth2 page describes);
- ``GET /token/jwks.json``: the public signing keys, as a JSON Web Key Set.

A token response is ``{"token", "access_token", "expires_in", "issued_at"}``, with
``refresh_token`` when one was asked for and ``scope`` (the granted scopes) for the OAuth2
form. Wrong credentials are answered ``401`` in the registry's JSON error format; a scope
asked for beyond what the caller may have is granted in part or not at all, never refused.
A personal access token is taken in place of a password. Past the limit of failed logins
(see :mod:`dockyard.identity.limits`) a login is answered ``429 TOOMANYREQUESTS`` with
``Retry-After``, whatever its credentials.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from urllib.parse import parse_qs

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from dockyard.api.base import context
from dockyard.auth.base import Access
from dockyard.auth.builtin import BuiltinAccess
from dockyard.auth.challenge import basic_challenge, basic_credentials
from dockyard.auth.issuer import (
    BadCredentials,
    IssuedToken,
    Login,
    TokenIssuer,
    TooManyFailures,
)
from dockyard.auth.scope import format_scope, parse_scope
from dockyard.errors import EndpointUnknown, TokenRequestInvalid, TooManyRequests, Unauthorized

__all__ = ["get_jwks", "get_token", "post_token"]

log = logging.getLogger("dockyard.auth.builtin")

MAX_FORM = 64 * 1024
_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def _builtin(request: Request) -> tuple[BuiltinAccess, TokenIssuer]:
    access = context(request).access
    if not isinstance(access, BuiltinAccess) or access.issuer is None:
        raise EndpointUnknown()
    return access, access.issuer


def _check_service(service: str, issuer: TokenIssuer) -> None:
    # Absent: the client means this registry (the specification requires it; clients send it).
    if service and service != issuer.service:
        raise TokenRequestInvalid(message=f"unknown service {service[:100]!r}")


def _scopes(values: Iterable[str]) -> list[Access]:
    wanted: list[Access] = []
    for value in values:
        try:
            wanted.extend(parse_scope(value))
        except ValueError as exc:
            raise TokenRequestInvalid(message=str(exc)[:300]) from None
    return wanted


def _refused(issuer: TokenIssuer, who: str, client: str | None) -> Unauthorized:
    log.info("token request refused for %r from %s", who[:100], client)
    return Unauthorized(
        message="invalid username or password",
        headers={"WWW-Authenticate": basic_challenge(issuer.service)},
    )


async def _login(issuer: TokenIssuer, user: str, password: str, client: str | None) -> Login:
    try:
        return await issuer.authenticate(user, password, client)
    except TooManyFailures as exc:
        log.info("login throttled for %r from %s", user[:100], client)
        raise TooManyRequests(
            message="too many failed logins; try again later",
            headers={"Retry-After": str(exc.retry_after)},
        ) from None


def _respond(token: IssuedToken, *, oauth: bool) -> Response:
    body: dict[str, object] = {
        "token": token.token,
        "access_token": token.token,
        "expires_in": token.expires_in,
        "issued_at": token.issued_at.isoformat().replace("+00:00", "Z"),
    }
    if token.refresh_token is not None:
        body["refresh_token"] = token.refresh_token
    if oauth:
        body["scope"] = format_scope(token.access)
    return JSONResponse(body, headers=_NO_STORE)


async def get_token(request: Request) -> Response:
    _, issuer = _builtin(request)
    params = request.query_params
    client = request.client.host if request.client else None
    _check_service(params.get("service", ""), issuer)
    wanted = _scopes(params.getlist("scope"))
    subject: str | None = None
    cap: frozenset[str] | None = None
    authorization = request.headers.get("authorization", "")
    # Another scheme (a bearer token sent along) is not a login: the caller is anonymous.
    if authorization.strip().lower().startswith("basic"):
        credentials = basic_credentials(request.headers)
        if credentials is None:
            raise _refused(issuer, "(malformed credentials)", client)
        try:
            login = await _login(issuer, *credentials, client)
        except BadCredentials:
            raise _refused(issuer, credentials[0], client) from None
        subject, cap = login.subject, login.cap
    offline = params.get("offline_token", "").lower() == "true"
    try:
        token = await issuer.issue(
            subject,
            wanted,
            offline=offline,
            client_id=params.get("client_id", ""),
            cap=cap,
            address=client,
        )
    except BadCredentials:
        raise _refused(issuer, subject or "", client) from None
    return _respond(token, oauth=False)


async def _form(request: Request) -> dict[str, list[str]]:
    media_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if media_type != "application/x-www-form-urlencoded":
        raise TokenRequestInvalid(message="expected an application/x-www-form-urlencoded form")
    data = bytearray()
    async for chunk in request.stream():
        data += chunk
        if len(data) > MAX_FORM:
            raise TokenRequestInvalid(message=f"form larger than {MAX_FORM} bytes")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise TokenRequestInvalid(message="form is not UTF-8") from None
    return parse_qs(text, keep_blank_values=True)


async def post_token(request: Request) -> Response:
    _, issuer = _builtin(request)
    form = await _form(request)
    client = request.client.host if request.client else None

    def field(name: str) -> str:
        values = form.get(name)
        return values[0] if values else ""

    _check_service(field("service"), issuer)
    wanted = _scopes(form.get("scope", []))
    grant_type = field("grant_type")
    refresh_token: str | None = None
    cap: frozenset[str] | None = None
    try:
        if grant_type == "password":
            login = await _login(issuer, field("username"), field("password"), client)
            subject, cap = login.subject, login.cap
        elif grant_type == "refresh_token":
            refresh_token = field("refresh_token")
            subject = await issuer.redeem(refresh_token)
        else:
            raise TokenRequestInvalid(
                message=f"unsupported grant_type {grant_type[:50]!r} "
                "(supported: password, refresh_token)"
            )
        token = await issuer.issue(
            subject,
            wanted,
            offline=field("access_type") == "offline",
            client_id=field("client_id"),
            refresh_token=refresh_token,
            cap=cap,
            address=client,
        )
    except BadCredentials:
        who = field("username") if grant_type == "password" else "(refresh token)"
        raise _refused(issuer, who, client) from None
    return _respond(token, oauth=True)


async def get_jwks(request: Request) -> Response:
    access, _ = _builtin(request)
    return JSONResponse(
        access.settings.keys.jwks(), headers={"Cache-Control": "public, max-age=300"}
    )
