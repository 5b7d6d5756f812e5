"""Managing users: listing, creating, disabling, promoting, and passwords."""

from __future__ import annotations

from dockyard.errors import Denied, RequestInvalid, ResourceUnknown
from dockyard.hub.manage_base import ManagementBase, translated, valid_name
from dockyard.hub.models import UserOut
from dockyard.identity.base import ROBOT_SEPARATOR, User

__all__ = ["UserManagement"]


def _user_out(user: User, *, private: bool) -> UserOut:
    """``user`` with its account flags when ``private`` (the caller may see them)."""
    return UserOut(
        name=user.name,
        is_admin=user.is_admin if private else None,
        disabled=user.disabled if private else None,
        robot=ROBOT_SEPARATOR in user.name,
        created_at=user.created_at,
    )


class UserManagement(ManagementBase):
    """User operations of :class:`~dockyard.hub.management.Management`."""

    async def list_users(self) -> list[UserOut]:
        """Every user, robots included (site administrators only)."""
        self._require_admin()
        return [_user_out(user, private=True) for user in await self.store.list_users()]

    async def get_user(self, name: str) -> UserOut:
        """Any user (names are public: they are namespaces); whether it is an administrator
        or disabled only for a site administrator or the user itself."""
        found = await self.store.get_user(name)
        if found is None:
            raise ResourceUnknown(message=f"no user {name[:100]!r}")
        return _user_out(found, private=self.actor.is_admin or self.actor.name == found.name)

    async def create_user(self, name: str, password: str, *, is_admin: bool = False) -> UserOut:
        """A new user (site administrators only); ``Conflict`` if the name is a user's or an
        organization's."""
        self._require_admin()
        valid_name(name)
        with translated():
            created = await self.store.create_user(
                name, self.passwords.hash(password), is_admin=is_admin
            )
        await self.record_action("user.create", f"user {name}{' (admin)' if is_admin else ''}")
        return _user_out(created, private=True)

    async def update_user(
        self, name: str, *, disabled: bool | None = None, is_admin: bool | None = None
    ) -> UserOut:
        """Disable or enable a user, make it a site administrator or not (site
        administrators only)."""
        self._require_admin()
        if name == self.actor.name and (disabled or is_admin is False):
            raise Denied(message="administrators cannot disable or demote themselves")
        with translated():
            if disabled is not None:
                await self.store.set_disabled(name, disabled)
                await self.record_action(
                    "user.disable" if disabled else "user.enable", f"user {name}"
                )
            if is_admin is not None:
                await self.store.set_admin(name, is_admin)
                await self.record_action(
                    "user.admin" if is_admin else "user.unadmin", f"user {name}"
                )
        return await self.get_user(name)

    async def change_password(self, current: str, new: str, *, user: str | None = None) -> None:
        """Change the actor's password, given the current one; a site administrator may set
        another ``user``'s without it."""
        self._require_person()
        target = user or self.actor.name
        if target != self.actor.name:
            self._require_admin()
        else:
            credentials = await self.store.credentials(target)
            stored = credentials.password_hash if credentials is not None else None
            if not await self.passwords.averify(stored, current):
                raise Denied(message="the current password is wrong")
        if not new:
            raise RequestInvalid(message="the new password must not be empty")
        with translated():
            await self.store.set_password(target, self.passwords.hash(new))
        await self.record_action("user.password", f"user {target}")
