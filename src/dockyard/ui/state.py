"""What the pages share, built once per worker by the composition root (``app.state.ui``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
)

from dockyard.auth.builtin import BuiltinAccess
from dockyard.auth.issuer import TokenIssuer
from dockyard.config import Config
from dockyard.core.registry import Registry
from dockyard.hub.content import CoreContent
from dockyard.hub.management import Management, ManagementSettings
from dockyard.hub.search import Discovery
from dockyard.identity.base import IdentityStore, Principal
from dockyard.identity.passwords import Passwords
from dockyard.metadata.engine import Database
from dockyard.ui.sessions import SessionCodec, session_secret

if TYPE_CHECKING:
    from jinja2 import Environment

__all__ = ["ANONYMOUS", "Ui", "build_ui", "ui_enabled"]

# Acts for visitors who did not sign in: no roles, no grants, so it sees public repositories
# only (a "+" is in no user's name, so it is nobody's namespace either).
ANONYMOUS = Principal(name="+anonymous", is_admin=False, organizations={}, grants=())


def ui_enabled(config: Config) -> bool:
    """The UI is served with Dockyard's own accounts only: it has nobody to sign in else."""
    return "builtin" in config.auth and config.ui.enabled


@dataclass(frozen=True)
class Ui:
    templates: Environment
    sessions: SessionCodec
    signup: bool
    host: str | None
    identity: IdentityStore
    issuer: TokenIssuer
    registry: Registry
    discovery: Discovery
    passwords: Passwords
    settings: ManagementSettings
    content: CoreContent

    def management(self, principal: Principal | None, address: str | None) -> Management:
        """The management service acting as ``principal`` (None: an anonymous visitor)."""
        return Management(
            self.identity,
            principal or ANONYMOUS,
            content=self.content,
            settings=self.settings,
            passwords=self.passwords,
            client_address=address,
        )


def _key_bytes(access: BuiltinAccess) -> bytes:
    """The token signing key's private bytes: every worker and replica has the same (the
    configured file, or the one generated in the data directory). Rotating the key that
    signs ends the sessions signed with one derived from it."""
    private = access.settings.keys.signer.private
    return private.private_bytes(Encoding.DER, PrivateFormat.PKCS8, NoEncryption())


def build_ui(
    config: Config,
    database: Database,
    access: BuiltinAccess,
    registry: Registry,
    discovery: Discovery,
) -> Ui:
    # Jinja2 (some 10 MiB) is loaded only by workers that serve the UI.
    from dockyard.ui.templates import environment

    assert access.issuer is not None
    assert access.authority is not None
    secret = session_secret(config.ui.sessionsecret, config.http.secret, _key_bytes(access))
    passwords = access.issuer.passwords
    return Ui(
        templates=environment(),
        sessions=SessionCodec(secret, config.ui.sessionlifetime),
        signup=config.ui.signup,
        host=config.http.host,
        identity=access.authority.store,
        issuer=access.issuer,
        registry=registry,
        discovery=discovery,
        passwords=passwords,
        settings=ManagementSettings(default_visibility=access.settings.default_visibility),
        content=CoreContent(database, registry.manifests, registry.policy),
    )
