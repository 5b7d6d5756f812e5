"""Storage lifecycle for the management API and the UI: immutable tag rules, quotas, retention
policies and usage, each call authorized for the acting principal, over
:class:`~dockyard.lifecycle.service.LifecycleService`.

=======================================  ===============================================
site administrators                      rules, quotas and policies everywhere; running
                                         retention; any usage
owners of a namespace (the user itself,  its usage, and its quotas and those of its
an organization's owners)                repositories
whoever may read a repository            its usage and its tags' pushes and pulls
=======================================  ===============================================

A repository the caller may not see is ``NAME_UNKNOWN``, as if absent. Namespaces are public
names (users and organizations), so a namespace that exists but is not the caller's is
``DENIED``. Every change is written to the audit log.

Who pushed a tag comes from the audit log's ``push`` entries (written from the event outbox,
so they appear a moment after the push). They are looked up through the log's time index, in
a window of :data:`PUSH_WINDOW` around the time the tag was written, so the cost grows with
the tags shown and the push rate, not with the log's length; a purged entry
(``auth.builtin.auditretention``) leaves the pusher unknown.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta

from sqlalchemy import and_, or_, select

from dockyard.errors import Conflict, Denied, RequestInvalid, ResourceUnknown
from dockyard.hub.management import Management
from dockyard.hub.models import (
    ImmutableRuleCreate,
    ImmutableRuleOut,
    NamespaceUsageOut,
    QuotaOut,
    QuotaScopeName,
    QuotaSet,
    RemovalOut,
    RepositoryUsageOut,
    RepositoryUsageSummary,
    RetentionPolicyCreate,
    RetentionPolicyOut,
    RetentionReportOut,
    RetentionRun,
    TagUsageOut,
)
from dockyard.identity.base import Namespace, Permission, Principal
from dockyard.identity.policy import permission
from dockyard.lifecycle.immutable import ImmutableRule
from dockyard.lifecycle.patterns import namespace_of
from dockyard.lifecycle.quotas import NAMESPACE, REPOSITORY, Quota
from dockyard.lifecycle.retention import RetentionPolicy
from dockyard.lifecycle.service import LifecycleError, LifecycleService
from dockyard.lifecycle.sizes import parse_period, parse_size
from dockyard.lifecycle.usage import RepositoryUsage, TagUsage
from dockyard.metadata.engine import Database
from dockyard.metadata.schema import audit_events

__all__ = ["Lifecycle", "pushers"]

# A component of a repository name (the spec's grammar): what a namespace is.
_NAMESPACE = re.compile(r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*")
# The audit entry of a push is stamped when its event is made, in the request that writes the
# tag: well within this of the tag's time.
PUSH_WINDOW = timedelta(minutes=1)
_CHUNK = 50


def _rule_out(rule: ImmutableRule) -> ImmutableRuleOut:
    return ImmutableRuleOut(
        id=rule.id,
        repository_pattern=rule.repository_pattern,
        tag_pattern=rule.tag_pattern,
        created_at=rule.created_at,
    )


def _quota_out(quota: Quota) -> QuotaOut:
    scope: QuotaScopeName = "namespace" if quota.scope == NAMESPACE else "repository"
    return QuotaOut(
        scope=scope, name=quota.name, limit_bytes=quota.limit_bytes, created_at=quota.created_at
    )


def _policy_out(policy: RetentionPolicy) -> RetentionPolicyOut:
    return RetentionPolicyOut(
        id=policy.id,
        repository_pattern=policy.repository_pattern,
        tag_pattern=policy.tag_pattern,
        keep_last=policy.keep_last,
        keep_within=None if policy.keep_within is None else int(policy.keep_within),
        keep_pattern=policy.keep_pattern,
        created_at=policy.created_at,
    )


def _summary(usage: RepositoryUsage) -> RepositoryUsageSummary:
    return RepositoryUsageSummary(
        repository=usage.repository, bytes=usage.bytes, blobs=usage.blobs, quota=usage.quota
    )


def _id(text: str, what: str) -> int:
    """An id from a path; anything else is unknown (as an absent id is)."""
    if not text.isascii() or not text.isdigit() or len(text) > 18:
        raise ResourceUnknown(message=f"no {what} {text[:40]!r}")
    return int(text)


async def pushers(database: Database, repository: str, tags: Sequence[TagUsage]) -> dict[str, str]:
    """Who pushed each of ``tags`` (of ``repository``) as it is now, from the audit log's push
    entries naming the tag and its digest; tags without one are left out."""
    found: dict[str, tuple[timedelta, str]] = {}
    t = audit_events.c
    for start in range(0, len(tags), _CHUNK):
        chunk = tags[start : start + _CHUNK]
        near = or_(
            *(
                and_(
                    t.time.between(tag.pushed_at - PUSH_WINDOW, tag.pushed_at + PUSH_WINDOW),
                    t.tag == tag.tag,
                    t.digest == tag.digest,
                )
                for tag in chunk
            )
        )
        rows = await database.read(
            select(t.tag, t.actor, t.time).where(
                near, t.action == "push", t.repository == repository, t.actor.is_not(None)
            )
        )
        written = {tag.tag: tag.pushed_at for tag in chunk}
        for row in rows:
            distance = abs(row.time - written[row.tag])
            if row.tag not in found or distance < found[row.tag][0]:
                found[row.tag] = (distance, row.actor)
    return {tag: actor for tag, (_, actor) in found.items()}


class Lifecycle:
    """Lifecycle management as ``hub``'s actor (each method takes the caller's
    :class:`~dockyard.hub.management.Management`)."""

    def __init__(
        self,
        service: LifecycleService,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.service = service
        self._clock = clock

    # -- helpers -----------------------------------------------------------------------------
    async def _audit(
        self, hub: Management, action: str, detail: str, repository: str | None = None
    ) -> None:
        await hub.record_action(action, detail, repository=repository, time=self._clock())

    @staticmethod
    def _require_admin(hub: Management) -> None:
        if not hub.actor.is_admin:
            raise Denied(message="only site administrators may manage storage lifecycle")

    @staticmethod
    def _owns(actor: Principal, namespace: Namespace) -> bool:
        # Ownership only: a grant on some repositories of it makes nobody its owner.
        owner = Principal(actor.name, False, actor.organizations, grants=())
        return permission(owner, f"{namespace.name}/x", namespace) is Permission.ADMIN

    async def _owned_namespaces(self, hub: Management) -> set[str]:
        candidates = [hub.actor.name, *hub.actor.organizations]
        found = await hub.store.namespaces(candidates)
        return {name for name, space in found.items() if self._owns(hub.actor, space)}

    async def _known_namespace(self, hub: Management, namespace: str) -> Namespace | None:
        """The user or organization named ``namespace``; ``RequestInvalid`` for a name that
        cannot be one, ``ResourceUnknown`` when there is none (for site administrators, a
        namespace holding repositories also counts: the official ones are nobody's)."""
        if len(namespace) > 255 or not _NAMESPACE.fullmatch(namespace):
            raise RequestInvalid(message=f"invalid namespace {namespace[:100]!r}")
        found = (await hub.store.namespaces([namespace])).get(namespace)
        if found is not None:
            return found
        if hub.actor.is_admin:
            spaces = await self.service.usage(namespace)
            if spaces and (spaces[0].repositories or spaces[0].blobs):
                return None
        raise ResourceUnknown(message=f"no namespace {namespace[:100]!r}")

    @staticmethod
    def _refused(error: LifecycleError) -> RequestInvalid:
        return RequestInvalid(message=str(error)[:500])

    # -- immutable tags ----------------------------------------------------------------------
    async def rules(self, hub: Management) -> list[ImmutableRuleOut]:
        self._require_admin(hub)
        return [_rule_out(rule) for rule in await self.service.list_immutable_rules()]

    async def add_rule(self, hub: Management, spec: ImmutableRuleCreate) -> ImmutableRuleOut:
        self._require_admin(hub)
        wanted = (spec.repository_pattern, spec.tag_pattern)
        existing = await self.service.list_immutable_rules()
        if any((r.repository_pattern, r.tag_pattern) == wanted for r in existing):
            raise Conflict(
                message=f"an immutability rule for {wanted[0]} {wanted[1]} exists already"
            )
        try:
            rule = await self.service.add_immutable_rule(*wanted)
        except LifecycleError as error:
            raise self._refused(error) from None
        await self._audit(
            hub, "immutable.create", f"rule {rule.id}: {rule.repository_pattern} {rule.tag_pattern}"
        )
        return _rule_out(rule)

    async def remove_rule(self, hub: Management, rule: str) -> None:
        self._require_admin(hub)
        rule_id = _id(rule, "immutability rule")
        if not await self.service.remove_immutable_rule(rule_id):
            raise ResourceUnknown(message=f"no immutability rule {rule_id}")
        await self._audit(hub, "immutable.delete", f"rule {rule_id}")

    # -- quotas ------------------------------------------------------------------------------
    async def quotas(self, hub: Management) -> list[QuotaOut]:
        """Every quota (site administrators), else those of the namespaces the caller owns
        and of their repositories."""
        found = await self.service.list_quotas()
        if hub.actor.is_admin:
            return [_quota_out(q) for q in found]
        owned = await self._owned_namespaces(hub)

        def readable(quota: Quota) -> bool:
            if quota.scope == NAMESPACE:
                return quota.name in owned
            # A name without "/" is an official repository: nobody's namespace.
            return "/" in quota.name and namespace_of(quota.name) in owned

        return [_quota_out(q) for q in found if readable(q)]

    async def _quota_target(self, hub: Management, scope: QuotaScopeName, name: str) -> str:
        self._require_admin(hub)
        if scope == NAMESPACE:
            await self._known_namespace(hub, name)
            return name
        return (await hub.get_repository(name)).name  # NAME_UNKNOWN when absent

    async def set_quota(
        self, hub: Management, scope: QuotaScopeName, name: str, spec: QuotaSet
    ) -> QuotaOut:
        """Limit a namespace (or a repository), which must exist, to ``spec.limit`` bytes."""
        target = await self._quota_target(hub, scope, name)
        try:
            limit = spec.limit if isinstance(spec.limit, int) else parse_size(spec.limit)
            quota = await self.service.set_quota(scope, target, limit)
        except LifecycleError as error:
            raise self._refused(error) from None
        except ValueError as error:
            raise RequestInvalid(message=str(error), detail={"field": "limit"}) from None
        await self._audit(
            hub,
            "quota.set",
            f"{scope} {target}: {quota.limit_bytes} bytes",
            target if scope == REPOSITORY else None,
        )
        return _quota_out(quota)

    async def remove_quota(self, hub: Management, scope: QuotaScopeName, name: str) -> None:
        target = await self._quota_target(hub, scope, name)
        if not await self.service.remove_quota(scope, target):
            raise ResourceUnknown(message=f"no quota on {scope} {target[:255]!r}")
        await self._audit(
            hub, "quota.delete", f"{scope} {target}", target if scope == REPOSITORY else None
        )

    # -- retention ---------------------------------------------------------------------------
    async def policies(self, hub: Management) -> list[RetentionPolicyOut]:
        self._require_admin(hub)
        return [_policy_out(p) for p in await self.service.list_retention_policies()]

    async def add_policy(self, hub: Management, spec: RetentionPolicyCreate) -> RetentionPolicyOut:
        self._require_admin(hub)
        within: float | None = None
        if isinstance(spec.keep_within, str):
            try:
                within = parse_period(spec.keep_within)
            except ValueError as error:
                raise RequestInvalid(message=str(error), detail={"field": "keep_within"}) from None
        elif spec.keep_within is not None:
            within = float(spec.keep_within)
        try:
            policy = await self.service.add_retention_policy(
                spec.repository_pattern, spec.tag_pattern, spec.keep_last, within, spec.keep_pattern
            )
        except LifecycleError as error:
            raise self._refused(error) from None
        await self._audit(
            hub,
            "retention.create",
            f"policy {policy.id}: {policy.repository_pattern} {policy.tag_pattern}",
        )
        return _policy_out(policy)

    async def remove_policy(self, hub: Management, policy: str) -> None:
        self._require_admin(hub)
        policy_id = _id(policy, "retention policy")
        if not await self.service.remove_retention_policy(policy_id):
            raise ResourceUnknown(message=f"no retention policy {policy_id}")
        await self._audit(hub, "retention.remove", f"policy {policy_id}")

    async def run_retention(self, hub: Management, spec: RetentionRun) -> RetentionReportOut:
        """Apply every policy (or ``spec.policy``) now; a dry run removes nothing."""
        self._require_admin(hub)
        chosen: list[RetentionPolicy] | None = None
        if spec.policy is not None:
            chosen = [
                p for p in await self.service.list_retention_policies() if p.id == spec.policy
            ]
            if not chosen:
                raise ResourceUnknown(message=f"no retention policy {spec.policy}")
        report = await self.service.run_retention(spec.dry_run, chosen)
        if not spec.dry_run:
            # Each removal is in the log already (action retention.delete); this says who ran.
            which = "every policy" if spec.policy is None else f"policy {spec.policy}"
            await self._audit(
                hub, "retention.run", f"{which}: removed {len(report.removed)} tag(s)"
            )
        return RetentionReportOut(
            dry_run=report.dry_run,
            removed=[
                RemovalOut(
                    repository=r.repository, tag=r.tag, digest=r.digest, policies=list(r.policies)
                )
                for r in report.removed
            ],
            kept=report.kept,
            skipped=report.skipped,
        )

    # -- usage -------------------------------------------------------------------------------
    async def namespace_usage(self, hub: Management, namespace: str) -> NamespaceUsageOut:
        """Bytes of the namespace (each blob once) and of each of its repositories (site
        administrators and the namespace's owners)."""
        found = await self._known_namespace(hub, namespace)
        if not hub.actor.is_admin and (found is None or not self._owns(hub.actor, found)):
            raise Denied(message=f"only owners of {namespace!r} may see its usage")
        space = (await self.service.usage(namespace))[0]
        return NamespaceUsageOut(
            namespace=space.namespace,
            bytes=space.bytes,
            blobs=space.blobs,
            quota=space.quota,
            repositories=[_summary(r) for r in space.repositories],
        )

    async def repository_usage(self, hub: Management, name: str) -> RepositoryUsageOut:
        """Bytes of the repository, and its tags with who pushed them and their pulls
        (whoever may read it)."""
        repository = (await hub.get_repository(name)).name  # NAME_UNKNOWN unless visible
        spaces = await self.service.usage(repository=repository, with_tags=True)
        usage = next(
            (r for s in spaces for r in s.repositories if r.repository == repository), None
        )
        if usage is None:
            # Created but never pushed to: nothing stored, though a quota may be set already.
            quota = next(
                (
                    q.limit_bytes
                    for q in await self.service.list_quotas()
                    if q.scope == REPOSITORY and q.name == repository
                ),
                None,
            )
            usage = RepositoryUsage(repository, 0, 0, quota)
        by = await pushers(self.service.database, repository, usage.tags)
        return RepositoryUsageOut(
            repository=repository,
            namespace=namespace_of(repository),
            bytes=usage.bytes,
            blobs=usage.blobs,
            quota=usage.quota,
            tags=[
                TagUsageOut(
                    tag=t.tag,
                    digest=t.digest,
                    pushed_at=t.pushed_at,
                    pushed_by=by.get(t.tag),
                    pulls=t.pulls,
                    last_pulled_at=t.last_pulled_at,
                )
                for t in usage.tags
            ],
        )
