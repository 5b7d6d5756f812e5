"""What every part of :class:`~dockyard.hub.management.Management` shares: the actor and
its store, the audit log, the checks of who the actor is, and the store's errors translated
into the registry's."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

from dockyard.errors import (
    Conflict,
    Denied,
    NameInvalid,
    NameUnknown,
    RequestInvalid,
    ResourceUnknown,
)
from dockyard.hub.content import RepositoryContent
from dockyard.identity.base import (
    ROBOT_SEPARATOR,
    AlreadyExists,
    AuditEvent,
    IdentityStore,
    InvalidName,
    Namespace,
    NotFound,
    Organization,
    Permission,
    Principal,
    RepositorySettings,
    Role,
    Visibility,
    check_name,
)
from dockyard.identity.passwords import Passwords
from dockyard.identity.policy import namespace_of, permission
from dockyard.reference import validate_name

__all__ = ["MAX_PAGE", "ManagementBase", "ManagementSettings", "translated", "valid_name"]

MAX_PAGE = 1000


@dataclass(frozen=True, slots=True)
class ManagementSettings:
    """What is configured, not acted upon: shared by every ``Management``."""

    default_visibility: Visibility = Visibility.PRIVATE


@contextlib.contextmanager
def translated() -> Iterator[None]:
    """The identity store's errors as the registry's."""
    try:
        yield
    except AlreadyExists as error:
        raise Conflict(message=str(error)) from None
    except NotFound as error:
        raise ResourceUnknown(message=str(error)) from None
    except InvalidName as error:
        raise RequestInvalid(message=str(error)) from None


def valid_name(text: str) -> str:
    """:func:`~dockyard.identity.base.check_name`, refusing with ``RequestInvalid``."""
    with translated():
        return check_name(text)


class ManagementBase:
    """The state of a management service acting as ``actor``, and the checks its parts
    share."""

    def __init__(
        self,
        store: IdentityStore,
        actor: Principal,
        *,
        content: RepositoryContent | None = None,
        settings: ManagementSettings | None = None,
        passwords: Passwords | None = None,
        client_address: str | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.store = store
        self.actor = actor
        self.content = content
        self.settings = settings or ManagementSettings()
        self.passwords = passwords or Passwords()
        self.client_address = client_address
        self.clock = clock

    # -- helpers -----------------------------------------------------------------------------
    async def record_action(
        self,
        action: str,
        detail: str | None = None,
        *,
        repository: str | None = None,
        time: datetime | None = None,
    ) -> None:
        """Adds a successful ``action`` of the actor to the audit log, at ``time`` (by default
        now on this object's clock)."""
        await self.store.add_audit_event(
            AuditEvent(
                time=self.clock() if time is None else time,
                action=action,
                outcome="success",
                actor=self.actor.name,
                client_address=self.client_address,
                repository=repository,
                detail=detail,
            )
        )

    @property
    def is_robot(self) -> bool:
        return ROBOT_SEPARATOR in self.actor.name

    def _require_admin(self) -> None:
        if not self.actor.is_admin:
            raise Denied(message="only site administrators may do this")

    def _require_person(self) -> None:
        if self.is_robot:
            raise Denied(message="robots cannot do this")

    def _require_self_or_admin(self, user: str) -> None:
        if user != self.actor.name and not self.actor.is_admin:
            raise Denied(message="only the user itself or a site administrator may do this")

    async def _organization(self, name: str) -> Organization:
        found = await self.store.get_organization(name)
        if found is None:
            raise ResourceUnknown(message=f"no organization {name[:100]!r}")
        return found

    async def _require_owner(self, organization: str) -> Organization:
        found = await self._organization(organization)
        if not self.actor.is_admin and self.actor.organizations.get(organization) is not Role.OWNER:
            raise Denied(message=f"only owners of {organization!r} may do this")
        return found

    async def _require_member(self, organization: str) -> Organization:
        found = await self._organization(organization)
        if not self.actor.is_admin and organization not in self.actor.organizations:
            raise Denied(message=f"only members of {organization!r} may see this")
        return found

    async def _namespace(self, repository: str) -> Namespace | None:
        owner = namespace_of(repository)
        if owner is None:
            return None
        return (await self.store.namespaces([owner])).get(owner)

    async def _permission(self, repository: str) -> Permission:
        return permission(self.actor, repository, await self._namespace(repository))

    async def _visible(self, repository: str) -> tuple[RepositorySettings, Permission]:
        """The repository if the actor may see it, else ``NameUnknown`` as if absent."""
        unknown = NameUnknown(detail={"name": repository[:255]})
        try:
            validate_name(repository)
        except NameInvalid:
            raise unknown from None
        found = await self.store.repository(repository)
        if found is None:
            raise unknown
        level = await self._permission(repository)
        if level is Permission.NONE:
            if found.visibility is not Visibility.PUBLIC:
                raise unknown
            level = Permission.READ  # anyone may pull a public repository
        return found, level
