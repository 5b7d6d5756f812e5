"""The ``dockyard immutable``, ``dockyard quota``, ``dockyard retention`` and ``dockyard usage``
commands (registered on the main command by :func:`register`); the work is in
:class:`~dockyard.lifecycle.service.LifecycleService`."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import Callable, Coroutine
from typing import Any, NoReturn, TypeVar

import click

from dockyard.identity.cli import config_option
from dockyard.lifecycle import sizes

__all__ = ["parse_period", "parse_size", "register"]

T = TypeVar("T")
FAILED = 1


def parse_size(text: str) -> int:
    """Bytes in ``500MB``, ``10GiB``, ``1.5T``, ``2048`` (see :mod:`dockyard.lifecycle.sizes`)."""
    try:
        return sizes.parse_size(text)
    except ValueError as error:
        raise click.BadParameter(str(error)) from None


def parse_period(text: str) -> float:
    """Seconds in ``30d``, ``2w``, or a Go duration (``12h``, ``90m``)."""
    try:
        return sizes.parse_period(text)
    except ValueError as error:
        raise click.BadParameter(str(error)) from None


def _fail(message: str) -> NoReturn:
    click.echo(f"dockyard: {message}", err=True)
    sys.exit(FAILED)


def _run(config: str | None, work: Callable[[Any], Coroutine[Any, Any, T]]) -> T:
    """``work(service)`` on the database the config names (with the Redis cache to
    invalidate, when configured); refusals and database errors are one line on stderr and
    exit status 1."""
    from dockyard.cli import _database_failed, _database_url
    from dockyard.lifecycle.service import LifecycleError

    url = _database_url(config)

    async def run() -> T:
        from dockyard.cache.factory import open_cache
        from dockyard.config import read_config
        from dockyard.lifecycle.service import LifecycleService
        from dockyard.metadata.cached import CachedMetadataStore
        from dockyard.metadata.factory import open_store

        store = await open_store(url)
        loaded = read_config(config or None, os.environ)
        cache = await open_cache(loaded.config.redis or None)
        try:
            changed = None if cache is None else CachedMetadataStore(store, cache).invalidate
            return await work(LifecycleService(store.database, changed))
        finally:
            await store.close()
            if cache is not None:
                await cache.close()

    try:
        return asyncio.run(run())
    except LifecycleError as error:
        _fail(str(error))
    except Exception as error:
        _database_failed(error)


def _when(moment: Any) -> str:
    return moment.isoformat().replace("+00:00", "Z") if moment is not None else "-"


# -- dockyard immutable -------------------------------------------------------------------


@click.group()
def immutable() -> None:
    """Manage rules that make tags immutable: once set, a matching tag cannot be moved to
    another manifest or deleted (pushing the same digest again is fine)."""


@immutable.command("add")
@click.argument("repository_pattern")
@click.argument("tag_pattern")
@config_option
def immutable_add(repository_pattern: str, tag_pattern: str, config: str | None) -> None:
    """Protect tags matching TAG_PATTERN in repositories matching REPOSITORY_PATTERN.
    Patterns: * matches anything (/ included: library/* is a namespace), ? one character."""
    rule = _run(config, lambda s: s.add_immutable_rule(repository_pattern, tag_pattern))
    click.echo(f"added rule {rule.id}: {rule.repository_pattern} {rule.tag_pattern}")


@immutable.command("list")
@config_option
def immutable_list(config: str | None) -> None:
    """List the rules: id, repository pattern, tag pattern, created."""
    for rule in _run(config, lambda s: s.list_immutable_rules()):
        click.echo(
            f"{rule.id}\t{rule.repository_pattern}\t{rule.tag_pattern}\t{_when(rule.created_at)}"
        )


@immutable.command("remove")
@click.argument("rule_id", type=int)
@config_option
def immutable_remove(rule_id: int, config: str | None) -> None:
    """Remove the rule RULE_ID (its tags may move and go again)."""
    if not _run(config, lambda s: s.remove_immutable_rule(rule_id)):
        _fail(f"no immutability rule {rule_id}")
    click.echo(f"removed rule {rule_id}")


# -- dockyard quota -------------------------------------------------------------------------

_scope_option = click.option(
    "--repository",
    "per_repository",
    is_flag=True,
    help="NAME is a repository, not a namespace.",
)


@click.group()
def quota() -> None:
    """Manage storage quotas: limits on the blob bytes a namespace (each blob counted once,
    however many of its repositories hold it) or a repository holds."""


@quota.command("set")
@click.argument("name")
@click.argument("limit")
@_scope_option
@config_option
def quota_set(name: str, limit: str, per_repository: bool, config: str | None) -> None:
    """Limit namespace NAME (or with --repository, repository NAME) to LIMIT bytes
    (e.g. 500MB, 10GiB). Pushes that would exceed it are refused; nothing is removed."""
    scope = "repository" if per_repository else "namespace"
    size = parse_size(limit)
    set_quota = _run(config, lambda s: s.set_quota(scope, name, size))
    click.echo(f"{set_quota.scope} {set_quota.name}: limit {set_quota.limit_bytes} bytes")


@quota.command("list")
@config_option
def quota_list(config: str | None) -> None:
    """List quotas: scope, name, limit in bytes."""
    for entry in _run(config, lambda s: s.list_quotas()):
        click.echo(f"{entry.scope}\t{entry.name}\t{entry.limit_bytes}")


@quota.command("remove")
@click.argument("name")
@_scope_option
@config_option
def quota_remove(name: str, per_repository: bool, config: str | None) -> None:
    """Remove the quota of namespace (or repository) NAME."""
    scope = "repository" if per_repository else "namespace"
    if not _run(config, lambda s: s.remove_quota(scope, name)):
        _fail(f"no quota on {scope} {name}")
    click.echo(f"removed the quota of {scope} {name}")


# -- dockyard retention ---------------------------------------------------------------------


@click.group()
def retention() -> None:
    """Manage retention policies, which remove the tags they do not keep (the manifests they
    leave untagged go with garbage collection when gc.deleteuntagged is on)."""


@retention.command("add")
@click.argument("repository_pattern")
@click.option("--tags", "tag_pattern", default="*", show_default=True, help="Tags it governs.")
@click.option("--keep-last", type=click.IntRange(min=1), help="Keep the N most recently pushed.")
@click.option("--keep-within", help="Keep tags pushed or pulled within this long (30d, 12h).")
@click.option("--keep-pattern", help="Always keep tags matching this pattern.")
@config_option
def retention_add(
    repository_pattern: str,
    tag_pattern: str,
    keep_last: int | None,
    keep_within: str | None,
    keep_pattern: str | None,
    config: str | None,
) -> None:
    """Add a policy for repositories matching REPOSITORY_PATTERN (library/* for a
    namespace). Governed tags that no keep rule keeps are removed when retention runs."""
    within = None if keep_within is None else parse_period(keep_within)
    policy = _run(
        config,
        lambda s: s.add_retention_policy(
            repository_pattern, tag_pattern, keep_last, within, keep_pattern
        ),
    )
    click.echo(f"added policy {policy.id}")


@retention.command("list")
@config_option
def retention_list(config: str | None) -> None:
    """List policies: id, repositories, tags, keep-last, keep-within (s), keep-pattern."""
    for p in _run(config, lambda s: s.list_retention_policies()):
        fields = (p.keep_last, None if p.keep_within is None else int(p.keep_within))
        shown = [str(f) if f is not None else "-" for f in fields]
        click.echo(
            "\t".join([str(p.id), p.repository_pattern, p.tag_pattern, *shown])
            + f"\t{p.keep_pattern or '-'}"
        )


@retention.command("remove")
@click.argument("policy_id", type=int)
@config_option
def retention_remove(policy_id: int, config: str | None) -> None:
    """Remove the policy POLICY_ID."""
    if not _run(config, lambda s: s.remove_retention_policy(policy_id)):
        _fail(f"no retention policy {policy_id}")
    click.echo(f"removed policy {policy_id}")


@retention.command("run")
@click.option("--dry-run", is_flag=True, help="Only print what would be removed.")
@config_option
def retention_run(dry_run: bool, config: str | None) -> None:
    """Apply every policy now and print each tag removed (recorded in the audit log)."""
    report = _run(config, lambda s: s.run_retention(dry_run))
    verb = "would remove" if dry_run else "removed"
    for removal in report.removed:
        policies = ",".join(map(str, removal.policies))
        click.echo(f"{verb} {removal.repository}:{removal.tag} {removal.digest} policy {policies}")
    click.echo(f"{verb} {len(report.removed)} tag(s), kept {report.kept}")


# -- dockyard usage -------------------------------------------------------------------------


@click.command()
@click.option("--namespace", help="Only this namespace.")
@click.option("--repository", help="Only this repository (and its namespace's total).")
@click.option("--tags", "with_tags", is_flag=True, help="Also each tag's pulls.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (always with tags).")
@config_option
def usage(
    namespace: str | None,
    repository: str | None,
    with_tags: bool,
    as_json: bool,
    config: str | None,
) -> None:
    """Storage used (blob bytes; a namespace counts each blob once) and quotas, per namespace
    and repository; pull counts and last pulls per tag."""
    spaces = _run(config, lambda s: s.usage(namespace, repository, with_tags or as_json))
    if as_json:
        click.echo(json.dumps([space.as_json() for space in spaces], indent=2))
        return
    for space in spaces:
        limit = "-" if space.quota is None else str(space.quota)
        click.echo(f"namespace {space.namespace}\t{space.bytes}\t{space.blobs} blob(s)\t{limit}")
        for repo in space.repositories:
            limit = "-" if repo.quota is None else str(repo.quota)
            click.echo(f"  {repo.repository}\t{repo.bytes}\t{repo.blobs} blob(s)\t{limit}")
            for tag in repo.tags:
                click.echo(
                    f"    {tag.tag}\t{tag.digest}\tpulls {tag.pulls}\t"
                    f"last {_when(tag.last_pulled_at)}"
                )


def register(main: click.Group) -> None:
    for command in (immutable, quota, retention, usage):
        main.add_command(command)
