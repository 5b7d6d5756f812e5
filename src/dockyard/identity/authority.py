"""What a subject may do, decided: the identity store's facts read in bulk, then the pure
policy (:mod:`dockyard.identity.policy`) applied to each resource asked for.

The answer to a request for several scopes is, for each resource, the intersection of the
actions asked for with the actions allowed. Asking for more yields less, never an error, and
a private repository the subject may not see yields the same empty answer as a repository
that does not exist.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from dockyard.auth.base import Access
from dockyard.auth.scope import merge
from dockyard.errors import NameInvalid
from dockyard.identity.base import IdentityStore, Namespace, Principal, Visibility
from dockyard.identity.policy import actions, namespace_of
from dockyard.reference import validate_name

__all__ = ["Authority"]


def _valid(name: str) -> bool:
    try:
        validate_name(name)
    except NameInvalid:
        return False
    return True


class Authority:
    def __init__(self, store: IdentityStore, default_visibility: Visibility) -> None:
        self.store = store
        self.default_visibility = default_visibility

    async def principal(self, subject: str | None) -> Principal | None:
        """The subject's roles and grants; None for anonymous, an unknown or a disabled user."""
        if subject is None:
            return None
        return await self.store.principal(subject)

    async def _facts(
        self, repositories: Sequence[str]
    ) -> tuple[dict[str, Namespace], dict[str, Visibility]]:
        owners = {ns for ns in map(namespace_of, repositories) if ns is not None}
        return await self.store.namespaces(sorted(owners)), await self.store.visibilities(
            repositories
        )

    async def decide(self, principal: Principal | None, wanted: Iterable[Access]) -> list[Access]:
        """The granted part of each resource asked for, in the order asked (one entry per
        resource, possibly with no actions). Granting ``push`` on a repository that has no
        visibility yet gives it the default one: the first push creates it."""
        asked = merge(wanted)
        repositories = [name for (kind, name) in asked if kind == "repository" and _valid(name)]
        namespaces, visibilities = await self._facts(repositories)
        granted: list[Access] = []
        for (kind, name), requested in asked.items():
            allowed: frozenset[str] = frozenset()
            if kind == "repository" and _valid(name):
                owner = namespace_of(name)
                visibility = visibilities.get(name)
                allowed = actions(
                    principal, name, namespaces.get(owner) if owner else None, visibility
                )
                if "push" in allowed & requested and visibility is None:
                    await self.store.claim_repository(name, self.default_visibility)
            elif kind == "registry" and name == "catalog":
                # Anyone may list; the listing holds only what the subject may pull.
                allowed = frozenset({"*"})
            granted.append(Access(kind, name, requested & allowed))
        return granted

    async def visible(self, principal: Principal | None, repositories: Sequence[str]) -> list[str]:
        """Those of ``repositories`` the subject may pull, in the order given."""
        if principal is not None and principal.is_admin:
            return list(repositories)
        namespaces, visibilities = await self._facts(repositories)
        out = []
        for name in repositories:
            owner = namespace_of(name)
            namespace = namespaces.get(owner) if owner else None
            if "pull" in actions(principal, name, namespace, visibilities.get(name)):
                out.append(name)
        return out
