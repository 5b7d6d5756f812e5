"""Managing repositories: creating, listing what the actor may see, settings, deletion."""

from __future__ import annotations

from dockyard.errors import Denied, NameInvalid
from dockyard.hub.manage_base import MAX_PAGE, ManagementBase, translated
from dockyard.hub.models import PermissionName, RepositoryOut, RepositoryPage, VisibilityName
from dockyard.identity.base import Namespace, Permission, RepositorySettings, Visibility
from dockyard.identity.policy import namespace_of, permission
from dockyard.reference import validate_name

__all__ = ["RepositoryManagement"]


class RepositoryManagement(ManagementBase):
    """Repository operations of :class:`~dockyard.hub.management.Management`."""

    async def _administered(self, repository: str) -> RepositorySettings:
        found, level = await self._visible(repository)
        if level is not Permission.ADMIN:
            raise Denied(message=f"only admins of {repository!r} may do this")
        return found

    def _repository_out(self, found: RepositorySettings, level: Permission) -> RepositoryOut:
        namespace = namespace_of(found.name)
        visibility: VisibilityName = found.visibility.value
        label: PermissionName = level.label  # type: ignore[assignment]
        return RepositoryOut(
            name=found.name,
            namespace=namespace,
            official=namespace is None,
            visibility=visibility,
            description=found.description,
            created_at=found.created_at,
            permission=label,
        )

    async def create_repository(
        self,
        name: str,
        *,
        visibility: VisibilityName | None = None,
        description: str | None = None,
    ) -> RepositoryOut:
        """A repository, empty until pushed to. The actor must be admin where it would be:
        its own namespace, an organization it owns, or (site administrators) anywhere."""
        try:
            validate_name(name)
        except NameInvalid as error:
            raise NameInvalid(detail={"name": name[:255]}, message=error.text) from None
        level = await self._permission(name)
        if level is not Permission.ADMIN:
            raise Denied(message=f"you may not create repositories in {name[:255]!r}")
        chosen = Visibility(visibility) if visibility else self.settings.default_visibility
        with translated():
            created = await self.store.create_repository(name, chosen, description)
        await self.record_action("repository.create", f"visibility {chosen.value}", repository=name)
        return self._repository_out(created, level)

    async def get_repository(self, name: str) -> RepositoryOut:
        found, level = await self._visible(name)
        return self._repository_out(found, level)

    async def list_repositories(
        self, *, after: str | None = None, limit: int = 100, namespace: str | None = None
    ) -> RepositoryPage:
        """The repositories the actor may see, by name, after ``after``; with
        ``namespace``, only those in it."""
        limit = max(1, min(limit, MAX_PAGE))
        if namespace is not None and after is None:
            after = f"{namespace}/"  # names in it sort after this
        shown: list[RepositoryOut] = []
        owners: dict[str, Namespace | None] = {}
        cursor = after
        while len(shown) < limit:
            batch = await self.store.repositories(after=cursor, limit=limit * 2)
            if not batch:
                break
            wanted = {namespace_of(r.name) for r in batch} - set(owners) - {None}
            found = await self.store.namespaces(sorted(n for n in wanted if n))
            owners.update({n: found.get(n) for n in wanted if n})
            for item in batch:
                cursor = item.name
                if namespace is not None and namespace_of(item.name) != namespace:
                    if item.name > f"{namespace}/\U0010ffff":
                        return RepositoryPage(repositories=shown, next=None)
                    continue
                space = namespace_of(item.name)
                level = permission(self.actor, item.name, owners.get(space) if space else None)
                if level is Permission.NONE:
                    if item.visibility is not Visibility.PUBLIC:
                        continue
                    level = Permission.READ
                shown.append(self._repository_out(item, level))
                if len(shown) == limit:
                    return RepositoryPage(repositories=shown, next=item.name)
        return RepositoryPage(repositories=shown, next=None)

    async def update_repository(
        self,
        name: str,
        *,
        visibility: VisibilityName | None = None,
        description: str | None = None,
    ) -> RepositoryOut:
        """Change visibility and/or description (repository admins)."""
        before = await self._administered(name)
        with translated():
            changed = await self.store.update_repository(
                name,
                visibility=Visibility(visibility) if visibility else None,
                description=description,
            )
        if changed.visibility is not before.visibility:
            await self.record_action(
                "repository.visibility",
                f"{before.visibility.value} -> {changed.visibility.value}",
                repository=name,
            )
        if description is not None and changed.description != before.description:
            await self.record_action("repository.description", None, repository=name)
        return self._repository_out(changed, Permission.ADMIN)

    async def delete_repository(self, name: str) -> int:
        """Delete the repository: its manifests and tags (garbage collection then reclaims
        the bytes), its settings and the grants naming it. How many manifests went."""
        await self._administered(name)
        deleted = await self.content.delete(name) if self.content is not None else 0
        await self.store.forget_repository(name)
        await self.record_action("repository.delete", f"{deleted} manifest(s)", repository=name)
        return deleted
