"""Accounts whose password lives in an external directory (LDAP), kept as local users.

A user who logs in through the directory gets a local account of the name the directory
gives it, so that grants, tokens and the audit log name it as any other user. The account is
marked as the directory's by its password hash, :data:`EXTERNAL_PASSWORD`, which no password
matches (it is no Argon2 hash), so it never logs in with a local password. A local account of
that name that is not the directory's (one with a local password, a robot) is never taken
over: the directory's user of the same name is refused, and the refusal is logged.

At each login the user's team memberships are brought in line with its directory groups, for
the teams the group map names (``group DN -> organization/team``); teams it does not name are
left alone. A user added to a team also becomes a member of the team's organization, if it
was not one; it stays one when it leaves the team (its organization role may have been given
by hand).

    DirectoryUnavailable   the directory could not answer (down, slow, TLS, service bind)
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from dockyard.identity.base import (
    AlreadyExists,
    AuditEvent,
    Credentials,
    IdentityStore,
    InvalidName,
    NotFound,
    Role,
    check_name,
)

__all__ = [
    "EXTERNAL_PASSWORD",
    "Directory",
    "DirectoryAccounts",
    "DirectoryUnavailable",
    "DirectoryUser",
    "Team",
    "is_external",
]

log = logging.getLogger("dockyard.identity.external")

# "!" as in /etc/shadow: a hash no password matches.
EXTERNAL_PASSWORD = "!ldap"


class DirectoryUnavailable(Exception):
    """The directory could not be asked: unreachable, too slow, TLS refused, or the
    service account's bind failed."""


@dataclass(frozen=True, slots=True)
class DirectoryUser:
    dn: str
    name: str
    """The value of the naming attribute, as the directory spells it."""
    groups: frozenset[str]
    """The normalized DNs of the user's groups (see ``dockyard.identity.ldap.normalize_dn``)."""


@dataclass(frozen=True, slots=True)
class Team:
    organization: str
    name: str

    def __str__(self) -> str:
        return f"{self.organization}/{self.name}"


class Directory(Protocol):
    async def authenticate(self, login: str, password: str) -> DirectoryUser | None:
        """The user ``login`` names if ``password`` is its password; None if not (or no such
        user); :class:`DirectoryUnavailable` if the directory cannot tell."""
        ...


def is_external(credentials: Credentials | None) -> bool:
    """Whether a login under this name is the directory's to check: no local account yet,
    or an account the directory made."""
    return credentials is None or credentials.password_hash == EXTERNAL_PASSWORD


class DirectoryAccounts:
    """Logs users in through ``directory`` and keeps their local accounts and teams."""

    def __init__(
        self,
        store: IdentityStore,
        directory: Directory,
        teams: Mapping[str, Team],
    ) -> None:
        self.store = store
        self.directory = directory
        self.teams = teams

    async def login(self, login: str, password: str) -> str | None:
        """The local name of the user, its account created or brought up to date; None if
        the directory refuses the password or the account cannot be the directory's."""
        found = await self.directory.authenticate(login, password)
        if found is None:
            return None
        try:
            name = check_name(found.name.lower())
        except InvalidName:
            log.warning(
                "directory user %s refused: %r cannot be a user name here", found.dn, found.name
            )
            return None
        credentials = await self._account(name)
        if credentials is None or not is_external(credentials):
            log.warning(
                "directory user %s refused: the name %r belongs to a local account or an "
                "organization",
                found.dn,
                name,
            )
            return None
        if credentials.user.disabled:
            return None
        await self._sync_teams(name, found.groups)
        return name

    async def _account(self, name: str) -> Credentials | None:
        credentials = await self.store.credentials(name)
        if credentials is not None:
            return credentials
        try:
            await self.store.create_user(name, EXTERNAL_PASSWORD)
        except AlreadyExists:
            # Created by a concurrent login (read it back), or an organization's name (None).
            pass
        else:
            log.info("created the account %r for a directory user", name)
        return await self.store.credentials(name)

    async def _sync_teams(self, user: str, groups: frozenset[str]) -> None:
        wanted: dict[Team, bool] = {}
        for group, team in self.teams.items():
            wanted[team] = wanted.get(team, False) or group in groups
        principal = None
        for team, member in wanted.items():
            current = user in await self.store.team_members(team.organization, team.name)
            if member == current:
                continue
            try:
                if member:
                    if principal is None:
                        principal = await self.store.principal(user)
                    if principal is not None and team.organization not in principal.organizations:
                        await self.store.set_member(team.organization, user, Role.MEMBER)
                    await self._ensure_team(team)
                    await self.store.add_team_member(team.organization, team.name, user)
                else:
                    await self.store.remove_team_member(team.organization, team.name, user)
            except NotFound as exc:
                log.warning("directory group map: cannot sync the team %s: %s", team, exc)
                continue
            await self._audit(user, team, added=member)

    async def _ensure_team(self, team: Team) -> None:
        try:
            await self.store.create_team(team.organization, team.name)
        except AlreadyExists:
            return
        log.info("created the team %s for the directory group map", team)

    async def _audit(self, user: str, team: Team, *, added: bool) -> None:
        verb = "added to" if added else "removed from"
        await self.store.add_audit_event(
            AuditEvent(
                time=datetime.now(UTC),
                action="team.member",
                outcome="success",
                actor=user,
                detail=f"{verb} {team} by its directory groups",
            )
        )
