"""Sessions: a signed cookie holding who signed in and the session's CSRF token.

Nothing is kept on the server, so any worker or replica reads any session; the cookie is
signed (itsdangerous, HMAC-SHA256) and carries its age, refused past the lifetime. Signing
out drops the cookie; a disabled user's session stops working at its next request, since
each request reads the user's principal afresh.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from typing import Any

from itsdangerous import BadSignature, URLSafeTimedSerializer

__all__ = ["COOKIE", "Session", "SessionCodec", "session_secret"]

COOKIE = "dockyard_session"
_SALT = "dockyard.ui.session"


@dataclass(frozen=True, slots=True)
class Session:
    user: str | None
    csrf: str

    @classmethod
    def new(cls, user: str | None = None) -> Session:
        """A fresh session: signing in gets a new CSRF token too (no session fixation)."""
        return cls(user, secrets.token_urlsafe(24))


def session_secret(*sources: bytes | str | None) -> bytes:
    """A signing secret from the first configured source (``ui.sessionsecret``,
    ``http.secret``, the token signing key's bytes), the same in every process; a random one
    when none is (sessions then last one process's life)."""
    for source in sources:
        if source:
            data = source.encode() if isinstance(source, str) else source
            return hashlib.sha256(b"dockyard-ui-session\0" + data).digest()
    return secrets.token_bytes(32)


class SessionCodec:
    def __init__(self, secret: bytes, lifetime: float) -> None:
        self._serializer = URLSafeTimedSerializer(secret, salt=_SALT)
        self.lifetime = lifetime

    def dump(self, session: Session) -> str:
        return str(self._serializer.dumps({"u": session.user, "c": session.csrf}))

    def load(self, cookie: str | None) -> Session | None:
        """The session in a cookie, or None if absent, forged, malformed or expired."""
        if not cookie or len(cookie) > 4096:
            return None
        try:
            data: Any = self._serializer.loads(cookie, max_age=int(self.lifetime))
        except BadSignature:
            return None
        if not isinstance(data, dict):
            return None
        user, csrf = data.get("u"), data.get("c")
        if not isinstance(csrf, str) or not (user is None or isinstance(user, str)):
            return None
        return Session(user, csrf)
