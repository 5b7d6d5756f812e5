"""Build the one access controller a config's ``auth`` section names."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dockyard.auth.base import AccessController
from dockyard.auth.builtin import BuiltinAccess, BuiltinSettings
from dockyard.auth.htpasswd import HtpasswdAccess
from dockyard.auth.open import OpenAccess
from dockyard.auth.options import AuthConfigError
from dockyard.auth.token import TokenAccess
from dockyard.identity.sql import SqlIdentityStore
from dockyard.metadata.engine import Database

__all__ = ["PROVIDERS", "access_controller"]

PROVIDERS = ("builtin", "htpasswd", "token")


def access_controller(
    auth: Mapping[str, Any] | None,
    database: Database | None = None,
    *,
    host: str | None = None,
    data_directory: str | None = None,
) -> AccessController:
    """The controller for ``auth`` (provider name -> parameters): none or ``none`` leaves the
    registry open; ``htpasswd`` and ``token`` work as in Distribution; ``builtin`` keeps its
    accounts in ``database`` (the metadata's) and derives its token realm from ``host``
    (``http.host``) when it has none; anything else, ``silly`` included, raises
    :class:`AuthConfigError` (a :class:`ValueError`) naming ``auth.<name>``.
    Files named by the parameters are read now, so that a bad one stops the start-up.
    Without ``database`` (checking a config), ``builtin`` verifies tokens but issues none.
    ``data_directory`` keeps ``builtin``'s generated signing key when none is configured."""
    if not auth:
        return OpenAccess()
    if len(auth) != 1:
        names = ", ".join(sorted(auth))
        raise AuthConfigError("auth", f"exactly one provider may be configured, found {names}")
    ((name, params),) = auth.items()
    if params is None:
        params = {}
    if name == "none":
        return OpenAccess()
    if name == "silly":
        raise AuthConfigError(
            "auth.silly",
            "not supported: it lets in any request with an Authorization header; "
            f"use one of {', '.join(PROVIDERS)}",
        )
    if name not in PROVIDERS:
        raise AuthConfigError(
            f"auth.{name}", f"unknown auth provider (supported: {', '.join(PROVIDERS)})"
        )
    if not isinstance(params, Mapping):
        raise AuthConfigError(f"auth.{name}", "parameters must be a mapping")
    if name == "htpasswd":
        return HtpasswdAccess.from_options(params)
    if name == "builtin":
        identity = SqlIdentityStore(database) if database is not None else None
        settings = BuiltinSettings.from_options(params, data_directory)
        return BuiltinAccess(settings, identity, host=host)
    return TokenAccess.from_options(params)
