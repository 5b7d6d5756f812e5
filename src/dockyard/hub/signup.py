"""Signing up: anyone makes an account of its own, when the site allows it (``ui.signup``),
from the sign-up page or ``POST /api/v1/signup``. Both call :func:`sign_up`, so the same
rules hold: a name of the namespace grammar that nobody (user or organization) has, a
password of at least :data:`MIN_PASSWORD` characters, and an audit event."""

from __future__ import annotations

from datetime import UTC, datetime

from dockyard.errors import Conflict, EndpointUnknown, RequestInvalid
from dockyard.hub.management import Management
from dockyard.hub.models import UserOut
from dockyard.identity.base import AlreadyExists, AuditEvent, IdentityStore, InvalidName, check_name
from dockyard.identity.passwords import Passwords

__all__ = ["MIN_PASSWORD", "sign_up"]

MIN_PASSWORD = 8


async def sign_up(
    store: IdentityStore,
    passwords: Passwords,
    name: str,
    password: str,
    *,
    allowed: bool,
    client_address: str | None,
) -> UserOut:
    """The new user; ``EndpointUnknown`` when sign-up is closed, ``RequestInvalid`` for a
    bad name or a short password, ``Conflict`` for a name that is taken."""
    if not allowed:
        raise EndpointUnknown(message="Sign-up is closed on this registry.")
    if len(password) < MIN_PASSWORD:
        raise RequestInvalid(message=f"Choose a password of at least {MIN_PASSWORD} characters.")
    try:
        check_name(name)
        await store.create_user(name, passwords.hash(password))
    except InvalidName as bad:
        raise RequestInvalid(message=str(bad)) from None
    except AlreadyExists:
        raise Conflict(message="That name is taken.") from None
    await store.add_audit_event(
        AuditEvent(
            time=datetime.now(UTC),
            action="user.signup",
            outcome="success",
            actor=name,
            client_address=client_address,
        )
    )
    principal = await store.principal(name)
    assert principal is not None  # made just now, enabled
    return await Management(store, principal).get_user(name)
