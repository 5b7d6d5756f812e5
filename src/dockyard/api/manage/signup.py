"""``POST /api/v1/signup``: an account of one's own, without credentials, when the site
allows signing up (``ui.signup``; 404 ``NOT_FOUND`` otherwise), under the same rules as the
sign-up page (:func:`dockyard.hub.signup.sign_up`)."""

from __future__ import annotations

from dockyard.api.manage.base import Call, Operation
from dockyard.hub.models import SignUpIn, UserOut
from dockyard.hub.signup import sign_up as sign_up_service
from dockyard.ui.state import Ui

__all__ = ["OPERATIONS"]


def _allowed(call: Call) -> bool:
    # The setting belongs to the UI: with the UI off, nobody signs up.
    ui: Ui | None = getattr(call.request.app.state, "ui", None)
    return ui is not None and ui.signup


async def sign_up(call: Call) -> UserOut:
    body = call.model(SignUpIn)
    return await sign_up_service(
        call.hub.store,
        call.hub.passwords,
        body.name,
        body.password,
        allowed=_allowed(call),
        client_address=call.hub.client_address,
    )


OPERATIONS = [
    Operation(
        "POST",
        "/signup",
        sign_up,
        "Make an account of one's own, without credentials (where ui.signup allows it)",
        "users",
        SignUpIn,
        UserOut,
        201,
        anonymous=True,
    ),
]
