"""Storage lifecycle in the management API (see :mod:`dockyard.hub.lifecycle` for who may do
what): ``/immutable-rules``, ``/quotas``, ``/retention-policies``, ``/retention/run`` and
``/usage``."""

from __future__ import annotations

from dockyard.api.manage.base import Call, Operation
from dockyard.hub.lifecycle import Lifecycle
from dockyard.hub.models import (
    ImmutableRuleCreate,
    ImmutableRuleOut,
    NamespaceUsageOut,
    QuotaOut,
    QuotaSet,
    RepositoryUsageOut,
    RetentionPolicyCreate,
    RetentionPolicyOut,
    RetentionReportOut,
    RetentionRun,
)

__all__ = ["OPERATIONS"]

RULE = "/immutable-rules/{rule}"
POLICY = "/retention-policies/{policy}"
NAMESPACE_QUOTA = "/quotas/namespaces/{namespace}"
REPOSITORY_QUOTA = "/quotas/repositories/{name:path}"
TAG = "lifecycle"


def _lifecycle(call: Call) -> Lifecycle:
    return Lifecycle(call.request.app.state.lifecycle)


async def list_immutable_rules(call: Call) -> list[ImmutableRuleOut]:
    return await _lifecycle(call).rules(call.hub)


async def create_immutable_rule(call: Call) -> ImmutableRuleOut:
    return await _lifecycle(call).add_rule(call.hub, call.model(ImmutableRuleCreate))


async def delete_immutable_rule(call: Call) -> None:
    await _lifecycle(call).remove_rule(call.hub, call.path("rule"))


async def list_quotas(call: Call) -> list[QuotaOut]:
    return await _lifecycle(call).quotas(call.hub)


async def set_namespace_quota(call: Call) -> QuotaOut:
    return await _lifecycle(call).set_quota(
        call.hub, "namespace", call.path("namespace"), call.model(QuotaSet)
    )


async def delete_namespace_quota(call: Call) -> None:
    await _lifecycle(call).remove_quota(call.hub, "namespace", call.path("namespace"))


async def set_repository_quota(call: Call) -> QuotaOut:
    return await _lifecycle(call).set_quota(
        call.hub, "repository", call.path("name"), call.model(QuotaSet)
    )


async def delete_repository_quota(call: Call) -> None:
    await _lifecycle(call).remove_quota(call.hub, "repository", call.path("name"))


async def list_retention_policies(call: Call) -> list[RetentionPolicyOut]:
    return await _lifecycle(call).policies(call.hub)


async def create_retention_policy(call: Call) -> RetentionPolicyOut:
    return await _lifecycle(call).add_policy(call.hub, call.model(RetentionPolicyCreate))


async def delete_retention_policy(call: Call) -> None:
    await _lifecycle(call).remove_policy(call.hub, call.path("policy"))


async def run_retention(call: Call) -> RetentionReportOut:
    return await _lifecycle(call).run_retention(call.hub, call.model(RetentionRun))


async def get_namespace_usage(call: Call) -> NamespaceUsageOut:
    return await _lifecycle(call).namespace_usage(call.hub, call.path("namespace"))


async def get_repository_usage(call: Call) -> RepositoryUsageOut:
    return await _lifecycle(call).repository_usage(call.hub, call.path("name"))


OPERATIONS = [
    Operation(
        "GET",
        "/immutable-rules",
        list_immutable_rules,
        "List the immutable tag rules (site administrators)",
        TAG,
        None,
        list[ImmutableRuleOut],
    ),
    Operation(
        "POST",
        "/immutable-rules",
        create_immutable_rule,
        "Make matching tags immutable: once set, never moved or deleted (site administrators)",
        TAG,
        ImmutableRuleCreate,
        ImmutableRuleOut,
        201,
    ),
    Operation(
        "DELETE",
        RULE,
        delete_immutable_rule,
        "Remove an immutable tag rule (site administrators)",
        TAG,
        None,
        None,
        204,
    ),
    Operation(
        "GET",
        "/quotas",
        list_quotas,
        "List storage quotas (site administrators: all; namespace owners: theirs)",
        TAG,
        None,
        list[QuotaOut],
    ),
    Operation(
        "PUT",
        NAMESPACE_QUOTA,
        set_namespace_quota,
        "Set a namespace's storage quota; each blob counts once (site administrators)",
        TAG,
        QuotaSet,
        QuotaOut,
    ),
    Operation(
        "DELETE",
        NAMESPACE_QUOTA,
        delete_namespace_quota,
        "Remove a namespace's storage quota (site administrators)",
        TAG,
        None,
        None,
        204,
    ),
    Operation(
        "PUT",
        REPOSITORY_QUOTA,
        set_repository_quota,
        "Set a repository's storage quota (site administrators)",
        TAG,
        QuotaSet,
        QuotaOut,
    ),
    Operation(
        "DELETE",
        REPOSITORY_QUOTA,
        delete_repository_quota,
        "Remove a repository's storage quota (site administrators)",
        TAG,
        None,
        None,
        204,
    ),
    Operation(
        "GET",
        "/retention-policies",
        list_retention_policies,
        "List the retention policies (site administrators)",
        TAG,
        None,
        list[RetentionPolicyOut],
    ),
    Operation(
        "POST",
        "/retention-policies",
        create_retention_policy,
        "Add a retention policy (site administrators)",
        TAG,
        RetentionPolicyCreate,
        RetentionPolicyOut,
        201,
    ),
    Operation(
        "DELETE",
        POLICY,
        delete_retention_policy,
        "Remove a retention policy (site administrators)",
        TAG,
        None,
        None,
        204,
    ),
    Operation(
        "POST",
        "/retention/run",
        run_retention,
        "Apply the retention policies now, or with dry_run only report what would go "
        "(site administrators)",
        TAG,
        RetentionRun,
        RetentionReportOut,
    ),
    Operation(
        "GET",
        "/usage/namespaces/{namespace}",
        get_namespace_usage,
        "Storage used by a namespace (each blob once) and its repositories (site "
        "administrators and the namespace's owners)",
        TAG,
        None,
        NamespaceUsageOut,
    ),
    Operation(
        "GET",
        "/usage/repositories/{name:path}",
        get_repository_usage,
        "Storage used by a repository, and its tags with who pushed them, pull counts and "
        "last pull times (whoever may read it)",
        TAG,
        None,
        RepositoryUsageOut,
    ),
]
